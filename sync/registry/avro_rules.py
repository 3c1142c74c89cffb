"""Avro for the registry: parsing with Confluent's error codes, the identity of a registration,
and compatibility under a subject's level.

The rules themselves (canonical JSON, Apache Avro's ``ReaderWriterCompatibilityChecker``) live
in :mod:`sync.contracts.compatibility`, so contract review tooling decides exactly as the
registry does without depending on it. This module maps their failures to the registry's
error codes: a schema Avro cannot parse is a 42201 invalid-schema error carrying Avro's message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from avro.schema import Schema

from sync.contracts import compatibility
from sync.contracts.compatibility import InvalidSchema, ParsedSchema, canonical_json
from sync.registry.limits import DEFAULT_LIMITS, SchemaLimits, check_schema_text
from sync.registry.model import AVRO, Compatibility, Reference, invalid_schema

__all__ = ["ParsedSchema", "canonical_json", "check", "fingerprint", "is_avro", "parse"]


def parse(
    text: str, dependencies: Sequence[str] = (), limits: SchemaLimits = DEFAULT_LIMITS
) -> ParsedSchema:
    """Parse ``text``; ``dependencies`` are the texts of referenced schemas, dependencies first.

    Each text is first held to ``limits``. Any failure is a 42201 invalid-schema error
    carrying Avro's message or the limit broken; never a ``RecursionError``.
    """
    if len(dependencies) > limits.max_references:
        raise invalid_schema(
            f"the schema depends on {len(dependencies)} schemas, more than {limits.max_references}"
        )
    for dependency in dependencies:
        check_schema_text(dependency, limits)
    check_schema_text(text, limits)
    try:
        return compatibility.parse(text, dependencies)
    except InvalidSchema as exc:
        raise invalid_schema(exc.detail) from None
    except RecursionError:  # the limits keep Avro well inside the stack; this is a last guard
        raise invalid_schema("the schema nests too deeply") from None


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
    try:
        return compatibility.check(level, candidate, history)
    except RecursionError:
        raise invalid_schema("the schemas nest too deeply to compare") from None


def is_avro(schema_type: str) -> bool:
    return schema_type.upper() == AVRO
