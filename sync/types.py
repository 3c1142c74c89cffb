"""The core types every stage speaks.

Only the edges translate: pgoutput bytes become a :class:`ChangeEvent` in the connector, a
:class:`ChangeEvent` becomes Avro bytes in the contracts layer, and rows in the replica sink.
This module imports nothing else of ours.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Op(StrEnum):
    """What happened to a row. Values are the Debezium envelope's ``op`` codes."""

    CREATE = "c"
    UPDATE = "u"
    DELETE = "d"
    READ = "r"  # a row read by a snapshot, not a change
    TRUNCATE = "t"


_LSN_TEXT = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


class Lsn(int):
    """A PostgreSQL WAL position. Printed the way PostgreSQL prints it: ``16/B374D848``."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> Lsn:
        match = _LSN_TEXT.fullmatch(text)
        if match is None:
            raise ValueError(f"not an LSN: {text!r} (expected the form 16/B374D848)")
        return cls((int(match[1], 16) << 32) | int(match[2], 16))

    def __str__(self) -> str:
        return f"{self >> 32:X}/{self & 0xFFFFFFFF:X}"

    def __repr__(self) -> str:
        return f"Lsn('{self}')"


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a change sits in its source's history: the commit LSN of its transaction and its
    index inside that transaction. Totally ordered; a snapshot row has index 0 and every
    streamed change an index from 1, so a change committed at the snapshot's point wins."""

    lsn: Lsn
    index: int

    def as_version(self) -> tuple[int, int]:
        return (int(self.lsn), self.index)


@dataclass(frozen=True, slots=True)
class TableRef:
    """A source table, schema-qualified."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One committed change of one row.

    ``key`` holds the primary key columns of the row the change applies to (for an update
    that changes the key, the *new* key; the connector emits a delete of the old key first).
    ``before`` is present for deletes and, where the source has it, for updates.
    A truncate empties its whole table: it has an empty ``key`` and no images.
    ``tx_events``: how many events the change's transaction published on each topic, so a
    consumer knows when it holds the whole transaction (empty when unknown, and for snapshot
    reads, which belong to no transaction).
    """

    op: Op
    table: TableRef
    key: Row
    before: Row | None
    after: Row | None
    position: Position
    txid: int
    commit_time: datetime
    event_id: str
    source: str
    tx_events: Mapping[str, int] = field(default_factory=dict)

    @staticmethod
    def make_event_id(source: str, position: Position, read_key: Row | None = None) -> str:
        """The same change always gets the same id, so sinks recognise a redelivery. The reads
        of a snapshot chunk share one position, so theirs also names the row by ``read_key``
        (hashed: ids end up in logs, dead letters and the audit; keys are personal data)."""
        event_id = f"{source}:{int(position.lsn):016X}:{position.index}"
        if read_key is None:
            return event_id
        canonical = json.dumps(list(read_key.values()), default=str, separators=(",", ":"))
        return f"{event_id}:{hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()}"
