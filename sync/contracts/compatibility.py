"""Avro schema identity and compatibility, by Apache Avro's own rules.

Two schemas are "the same schema" when their canonical JSON is equal: the schema parsed by
Apache Avro and written back with sorted keys and no whitespace. Unlike Avro's Parsing
Canonical Form this keeps defaults, docs, aliases and logical types, which all matter to
readers, so a schema that only adds a default is a new schema (as in Confluent's registry).

Compatibility is decided by Apache Avro's own ``ReaderWriterCompatibilityChecker`` so the
rules are Avro's schema-resolution rules and not a reimplementation of them. The schema
registry and the reviewer tooling (``govsync schemas``) both decide with this module, so a
contract review predicts exactly what the registry will answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.name import Names
from avro.schema import (
    ArraySchema,
    MapSchema,
    RecordSchema,
    Schema,
    UnionSchema,
    make_avsc_object,
)

from sync.errors import ContractError


class Level(StrEnum):
    """A subject's evolution rule. BACKWARD: the new schema reads data written with the old."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        """Checked against every earlier version, not only the newest."""
        return self.value.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        """The new schema, as reader, must read what earlier versions wrote."""
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """Earlier versions, as readers, must read what the new schema writes."""
        return self.value.startswith(("FORWARD", "FULL"))


# every level, in the order reviewers read them
LEVELS: tuple[Level, ...] = (
    Level.BACKWARD,
    Level.BACKWARD_TRANSITIVE,
    Level.FORWARD,
    Level.FORWARD_TRANSITIVE,
    Level.FULL,
    Level.FULL_TRANSITIVE,
    Level.NONE,
)


class InvalidSchema(ContractError):
    """Text that is not a valid Avro schema; ``detail`` is the reason (Avro's own message)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Invalid schema: {detail}")
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ParsedSchema:
    """A parsed Avro schema with its canonical JSON."""

    schema: Schema
    canonical: str


def parse(text: str, dependencies: Sequence[str] = ()) -> ParsedSchema:
    """Parse ``text``; ``dependencies`` are the texts of referenced schemas, dependencies first.

    Any failure is an :class:`InvalidSchema` carrying Avro's message.
    """
    names = Names()
    for dependency in dependencies:
        _make(dependency, names)
    schema = _make(text, names)
    return ParsedSchema(schema, canonical_json(schema))


def _make(text: str, names: Names) -> Schema:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSchema(f"not JSON: {exc}") from None
    try:
        return make_avsc_object(data, names)
    except Exception as exc:  # noqa: BLE001 - Avro raises SchemaParseException, TypeError…
        raise InvalidSchema(str(exc) or type(exc).__name__) from None


def canonical_json(schema: Schema) -> str:
    return json.dumps(schema.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Whether a reader schema reads everything a writer schema writes, as Avro's checker says.

    ``kinds`` are Avro's incompatibility types (``reader_field_missing_default_value``…),
    ``locations`` JSON-pointer-like paths into the reader schema, ``messages`` Avro's details.
    """

    compatible: bool
    kinds: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()

    def describe(self) -> str:
        kinds = ", ".join(self.kinds) or "incompatible"
        return f"{kinds} at {', '.join(self.locations)}: {'; '.join(self.messages)}"


def can_read(reader: Schema, writer: Schema) -> ReadResult:
    """Can ``reader`` read all data written with ``writer``?"""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return ReadResult(True)
    return ReadResult(
        False,
        kinds=tuple(sorted({i.value for i in result.incompatibilities})),
        locations=tuple(sorted(result.locations)),
        messages=tuple(sorted(result.messages)),
    )


def check(
    level: Level,
    candidate: Schema,
    history: Sequence[tuple[int, Schema]],
    *,
    explain: bool = False,
) -> list[str]:
    """Why ``candidate`` may not follow ``history`` under ``level``; empty when it may.

    ``history`` is (version, schema), newest first. Non-transitive levels look at the newest
    version only; the transitive ones at every version. With ``explain``, each message also
    gives the reasons inside records that Avro reports only as a missing union branch (see
    :func:`inside_records`); the registry answers without them, as Confluent's does.
    """
    level = Level(level)
    if level is Level.NONE or not history:
        return []
    targets = history if level.transitive else history[:1]
    messages: list[str] = []
    for version, old in targets:
        if level.backward:
            label = f"the new schema cannot read data written by version {version}"
            messages += _problems(label, reader=candidate, writer=old, explain=explain)
        if level.forward:
            label = f"version {version} cannot read data written by the new schema"
            messages += _problems(label, reader=old, writer=candidate, explain=explain)
    return messages


def _problems(label: str, *, reader: Schema, writer: Schema, explain: bool) -> list[str]:
    result = can_read(reader, writer)
    if result.compatible:
        return []
    details = inside_records(reader, writer) if explain else []
    more = f" ({'; '.join(details)})" if details else ""
    return [f"{label}: {result.describe()}{more}"]


def inside_records(reader: Schema, writer: Schema) -> list[str]:
    """Why records nested in ``reader`` and ``writer`` do not match, pair by pair.

    When the reader is a union (``["null", Row]``, as in the change-event envelope) Avro's
    checker reports a writer record it cannot read only as "reader union lacking writer type:
    RECORD", without saying why. This asks the checker again for each pair of records with the
    same name, so a reviewer reads the field at fault.
    """
    readers, writers = _records(reader), _records(writer)
    out = []
    for name, inner in readers.items():
        other = writers.get(name)
        if other is None or (inner is reader and other is writer):
            continue
        result = can_read(inner, other)
        if not result.compatible and set(result.kinds) != {"missing_union_branch"}:
            out.append(f"inside record {name}: {result.describe()}")
    return out


def _records(schema: Schema) -> dict[str, RecordSchema]:
    """The records in ``schema`` by unqualified name, as Avro matches them."""
    found: dict[str, RecordSchema] = {}
    pending, seen = [schema], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, RecordSchema):
            found.setdefault(current.name, current)
            pending += [item.type for item in current.fields]
        elif isinstance(current, UnionSchema):
            pending += list(current.schemas)
        elif isinstance(current, ArraySchema):
            pending.append(current.items)
        elif isinstance(current, MapSchema):
            pending.append(current.values)
    return found
