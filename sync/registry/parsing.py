"""The registry's CPU work on schemas: decoding large request bodies, parsing a schema into its
identity, and judging compatibility. These functions run in the parser's worker processes
(:mod:`sync.registry.parser_pool`), never on the event loop, so they take and return only
plain, picklable values and raise only :class:`~sync.errors.RegistryError`.

Every text is held to :class:`~sync.registry.limits.SchemaLimits` before Avro sees it. Parsed
schemas are cached per worker, since a subject's history is parsed again on every check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sync.errors import RegistryError
from sync.registry import avro_rules
from sync.registry.limits import SchemaLimits
from sync.registry.model import AVRO, Compatibility, Reference, SchemaInput, invalid_schema


@dataclass(frozen=True, slots=True)
class Prepared:
    """A valid schema's identity: its canonical text and the fingerprint ids are found by."""

    canonical: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Earlier:
    """An earlier version to check against: its number, text and dependencies' texts."""

    version: int
    text: str
    dependencies: tuple[str, ...] = ()


def decode_schema_body(raw: bytes) -> SchemaInput:
    """The schema request in ``raw`` (a JSON object); 400 when it is not JSON."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise RegistryError(400, 400, "Unparseable request body: nested too deeply") from None
    except ValueError as exc:
        raise RegistryError(400, 400, f"Unparseable request body: {exc}") from None
    return SchemaInput.from_json(body)


def prepare(
    text: str,
    dependencies: tuple[str, ...],
    references: tuple[Reference, ...],
    limits: SchemaLimits,
) -> Prepared:
    """Parse ``text`` (42201 when invalid or beyond ``limits``) into its identity."""
    parsed = _parsed(text, dependencies, limits)
    return Prepared(parsed.canonical, avro_rules.fingerprint(AVRO, parsed.canonical, references))


def check(
    level: Compatibility,
    text: str,
    dependencies: tuple[str, ...],
    history: Sequence[Earlier],
    limits: SchemaLimits,
) -> list[str]:
    """Why ``text`` may not follow ``history`` (newest first) under ``level``.

    The candidate is parsed even when there is nothing to compare, so an invalid schema is
    always a 42201. A version with the same canonical text is compatible without asking
    Avro: its checker is slowest (quadratic) when reader and writer are the same object.
    """
    candidate = _parsed(text, dependencies, limits)
    earlier = []
    for entry in history:
        try:
            old = _parsed(entry.text, entry.dependencies, limits)
        except RegistryError as exc:
            detail = exc.message.removeprefix("Invalid schema: ")
            raise invalid_schema(f"version {entry.version} of the subject: {detail}") from None
        if old.canonical != candidate.canonical:
            earlier.append((entry.version, old.schema))
    return avro_rules.check(level, candidate.schema, earlier) if earlier else []


@lru_cache(maxsize=8)
def _parsed(
    text: str, dependencies: tuple[str, ...], limits: SchemaLimits
) -> avro_rules.ParsedSchema:
    return avro_rules.parse(text, dependencies, limits)


def ready() -> bool:
    """A no-op the pool runs once per worker at start, so the first request waits for none."""
    return True
