"""Avro for the registry: parsing, the canonical identity of a schema, and compatibility.

Two registrations are "the same schema" when their canonical JSON is equal: the schema parsed
by Apache Avro and written back with sorted keys and no whitespace. Unlike Avro's Parsing
Canonical Form this keeps defaults, docs, aliases and logical types, which all matter to
readers, so a schema that only adds a default is a new schema (as in Confluent's registry).

Compatibility is decided by Apache Avro's own ``ReaderWriterCompatibilityChecker`` so the
rules are Avro's schema-resolution rules and not a reimplementation of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.name import Names
from avro.schema import Schema, make_avsc_object

from sync.registry.model import AVRO, Compatibility, Reference, invalid_schema


@dataclass(frozen=True, slots=True)
class ParsedSchema:
    """A parsed Avro schema with its canonical JSON."""

    schema: Schema
    canonical: str


def parse(text: str, dependencies: Sequence[str] = ()) -> ParsedSchema:
    """Parse ``text``; ``dependencies`` are the texts of referenced schemas, dependencies first.

    Any failure is a 42201 invalid-schema error carrying Avro's message.
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
        raise invalid_schema(f"not JSON: {exc}") from None
    try:
        return make_avsc_object(data, names)
    except Exception as exc:  # noqa: BLE001 - Avro raises SchemaParseException, TypeError…
        raise invalid_schema(str(exc) or type(exc).__name__) from None


def canonical_json(schema: Schema) -> str:
    return json.dumps(schema.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(schema_type: str, canonical: str, references: Sequence[Reference]) -> str:
    """The identity of a schema across subjects: type, canonical text and references."""
    refs = json.dumps([r.to_json() for r in references], sort_keys=True)
    return hashlib.sha256(f"{schema_type}\n{canonical}\n{refs}".encode()).hexdigest()


def check(
    level: Compatibility, candidate: Schema, history: Sequence[tuple[int, Schema]]
) -> list[str]:
    """Why ``candidate`` may not follow ``history`` under ``level``; empty when it may.

    ``history`` is (version, schema), newest first. Non-transitive levels look at the newest
    version only; the transitive ones at every version.
    """
    if level is Compatibility.NONE or not history:
        return []
    targets = history if level.transitive else history[:1]
    messages: list[str] = []
    for version, old in targets:
        if level.backward:
            label = f"the new schema cannot read data written by version {version}"
            messages += _problems(label, reader=candidate, writer=old)
        if level.forward:
            label = f"version {version} cannot read data written by the new schema"
            messages += _problems(label, reader=old, writer=candidate)
    return messages


def _problems(label: str, *, reader: Schema, writer: Schema) -> list[str]:
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted({i.value for i in result.incompatibilities})) or "incompatible"
    where = ", ".join(sorted(result.locations))
    details = "; ".join(sorted(result.messages))
    return [f"{label}: {kinds} at {where}: {details}"]


def is_avro(schema_type: str) -> bool:
    return schema_type.upper() == AVRO
