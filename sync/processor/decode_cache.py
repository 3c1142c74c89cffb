"""Decoding each message once for all the agencies a worker hosts.

Every agency has its own consumer group and reads the same topics, so a worker hosting many
agencies receives each message once per agency. Agencies reading in step decode it once: the
first decodes it and keeps the event here, keyed by topic, partition and offset, and the others
take it from here, then each projects it for itself. The cache is bounded: the oldest entries
go first, so an agency lagging further behind than the cache holds decodes for itself.

An entry is served only for the same key and value bytes read through the same codec. The
bytes are compared in full (a memory comparison, cheap beside decoding), so a different message
at the same coordinates, after a topic was deleted and created again, is decoded anew. Only
events are kept: a message that does not decode is decoded again by every agency, which each
dead-letters it in its own topic. Agencies share the events, never a mutable copy: nothing
downstream changes an event or its rows (projections build new ones).

Every call runs on the worker's event loop, one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from sync.contracts import Contract, EventCodec
from sync.contracts.serde import SchemaLookup
from sync.types import ChangeEvent

Coordinates = tuple[str, int, int]  # topic, partition, offset
_Entry = tuple[bytes | None, bytes | None, EventCodec, ChangeEvent]


class DecodeCache:
    """Decoded events of one worker, at most ``max_events`` of them, and the codecs the
    agencies share (one per contract)."""

    def __init__(self, max_events: int, lookups: Counter | None = None) -> None:
        if max_events < 0:
            raise ValueError("a cache cannot hold fewer than no events")
        self.max_events = max_events
        self.hits = 0
        self.misses = 0
        # the metric of lookups by result (hit, miss), when the worker exports it
        self._hit = None if lookups is None else lookups.labels("hit")
        self._miss = None if lookups is None else lookups.labels("miss")
        self._events: dict[Coordinates, _Entry] = {}
        self._codecs: dict[tuple[str, str], EventCodec] = {}

    def __len__(self) -> int:
        return len(self._events)

    def codec(self, contract: Contract) -> EventCodec:
        """The worker's codec of ``contract``: agencies reading a topic through the same
        contract share it (and its events); another contract of a topic gets its own."""
        fingerprint = _fingerprint(contract.row_schema, contract.key_schema)
        found = self._codecs.get((contract.topic, fingerprint))
        if found is None:
            found = self._codecs[(contract.topic, fingerprint)] = EventCodec(contract)
        return found

    def decode(
        self,
        coordinates: Coordinates,
        key: bytes | None,
        value: bytes | None,
        codec: EventCodec,
        lookup: SchemaLookup,
    ) -> ChangeEvent:
        """The event of the message at ``coordinates``: kept from another agency's decoding of
        the same bytes through the same codec, or decoded now (and kept). Raises what
        :meth:`EventCodec.decode` raises."""
        entry = self._events.get(coordinates)
        if entry is not None and entry[2] is codec and entry[1] == value and entry[0] == key:
            self.hits += 1
            if self._hit is not None:
                self._hit.inc()
            return entry[3]
        self.misses += 1
        if self._miss is not None:
            self._miss.inc()
        event = codec.decode(key, value, lookup)
        if self.max_events:
            self._keep(coordinates, (key, value, codec, event))
        return event

    def _keep(self, coordinates: Coordinates, entry: _Entry) -> None:
        events = self._events
        if events.pop(coordinates, None) is None and len(events) >= self.max_events:
            del events[next(iter(events))]  # the oldest kept: dicts keep insertion order
        events[coordinates] = entry


def _fingerprint(*schemas: Mapping[str, Any]) -> str:
    return json.dumps(schemas, sort_keys=True, default=str)
