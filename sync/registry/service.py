"""What the registry means: registration, lookups, deletes, config and mode, with Confluent's
semantics, on top of the plain rows of :mod:`sync.registry.store`.

Each public method is one store transaction. Writes run under the store's advisory lock, and
the compatibility check of a registration happens inside that same transaction, so two
registry processes can never both add a version the other did not check against.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sync.registry import avro_rules
from sync.registry.model import (
    DEFAULT_COMPATIBILITY,
    DEFAULT_MODE,
    LATEST,
    Compatibility,
    Lookup,
    Mode,
    Reference,
    SchemaInput,
    StoredSchema,
    SubjectVersion,
    id_conflict,
    incompatible,
    invalid_schema,
    not_permitted,
    schema_not_found,
    subject_not_found,
    version_not_found,
)
from sync.registry.store import GLOBAL, PgStore, StoreTx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Registration:
    """The result of a registration; ``created`` is false when the schema was already there."""

    version: SubjectVersion
    created: bool


@dataclass(frozen=True, slots=True)
class _Candidate:
    parsed: avro_rules.ParsedSchema
    fingerprint: str


class Registry:
    """The registry's operations. Errors are :class:`~sync.errors.RegistryError` with codes."""

    def __init__(self, store: PgStore) -> None:
        self.store = store

    # -- registration and lookup --------------------------------------------------------------

    async def register(self, subject: str, body: SchemaInput) -> Registration:
        async with self.store.transaction(write=True) as tx:
            mode = await effective_mode(tx, subject)
            if mode is Mode.READONLY:
                raise not_permitted(f"Subject {subject} is in read-only mode")
            if mode is not Mode.IMPORT and (body.id is not None or body.version is not None):
                raise not_permitted(f"Subject {subject} is not in import mode")
            candidate = await _prepare(tx, body)
            live = await tx.versions(subject, Lookup.ACTIVE)
            known = await _known_id(tx, candidate)
            for existing in live:
                if existing.schema.id == known:
                    return Registration(existing, created=False)
            if body.version is not None and await tx.version(subject, body.version, Lookup.ALL):
                text = f"Overwrite new schema with version {body.version} is not permitted."
                raise id_conflict(text)
            if mode is not Mode.IMPORT:
                messages = await _check(tx, subject, candidate, list(reversed(live)))
                if messages:
                    raise incompatible(subject, messages)
            stored = await _store_schema(tx, body, candidate)
            number = await tx.insert_version(subject, stored.id, body.version)
            log.info("registered %s version %d as schema id %d", subject, number, stored.id)
            return Registration(SubjectVersion(subject, number, stored), created=True)

    async def lookup(self, subject: str, body: SchemaInput, *, deleted: bool) -> SubjectVersion:
        """The version of ``subject`` holding this schema: newest first, 40401/40403 if none."""
        async with self.store.transaction() as tx:
            versions = await tx.versions(subject, Lookup.of(deleted))
            if not versions:
                raise subject_not_found(subject)
            candidate = await _prepare(tx, body)
            schema_id = await _known_id(tx, candidate)
            for version in reversed(versions):
                if version.schema.id == schema_id:
                    return version
            raise schema_not_found()

    async def test_compatibility(
        self, subject: str, version: int | None, body: SchemaInput
    ) -> list[str]:
        """Why ``body`` may not be registered (against one version, or the subject's level)."""
        async with self.store.transaction() as tx:
            candidate = await _prepare(tx, body)
            if version is None:
                history = list(reversed(await tx.versions(subject, Lookup.ACTIVE)))
                return await _check(tx, subject, candidate, history)
            found = await tx.version(subject, version, Lookup.ACTIVE)
            if found is None:
                if version == LATEST:
                    return []  # nothing registered yet: anything is compatible
                if not await tx.versions(subject, Lookup.ACTIVE):
                    raise subject_not_found(subject)
                raise version_not_found(version)
            return await _check(tx, subject, candidate, [found], transitive=False)

    # -- reads --------------------------------------------------------------------------------

    async def schema(self, schema_id: int) -> StoredSchema:
        async with self.store.transaction() as tx:
            found = await tx.schema_by_id(schema_id)
        if found is None:
            raise schema_not_found(schema_id)
        return found

    async def schema_by_guid(self, guid: str) -> StoredSchema:
        async with self.store.transaction() as tx:
            found = await tx.schema_by_guid(guid)
        if found is None:
            raise schema_not_found(guid)
        return found

    async def usages(self, schema_id: int, *, deleted: bool) -> list[tuple[str, int]]:
        async with self.store.transaction() as tx:
            if await tx.schema_by_id(schema_id) is None:
                raise schema_not_found(schema_id)
            return await tx.usages(schema_id, Lookup.of(deleted))

    async def subjects(self, prefix: str, lookup: Lookup) -> list[str]:
        async with self.store.transaction() as tx:
            return await tx.subjects(prefix, lookup)

    async def versions(self, subject: str, lookup: Lookup) -> list[int]:
        async with self.store.transaction() as tx:
            found = await tx.versions(subject, lookup)
            # deletedOnly on a subject with only live versions is an empty list, not a 40401
            if not found and (
                lookup is not Lookup.DELETED_ONLY or not await tx.versions(subject, Lookup.ALL)
            ):
                raise subject_not_found(subject)
        return [v.version for v in found]

    async def version(self, subject: str, version: int, *, deleted: bool) -> SubjectVersion:
        async with self.store.transaction() as tx:
            return await _existing_version(tx, subject, version, Lookup.of(deleted))

    async def referenced_by(self, subject: str, version: int) -> list[int]:
        async with self.store.transaction() as tx:
            found = await _existing_version(tx, subject, version, Lookup.ALL)
            return await tx.referenced_by(subject, found.version)


async def _existing_version(
    tx: StoreTx, subject: str, version: int, lookup: Lookup
) -> SubjectVersion:
    found = await tx.version(subject, version, lookup)
    if found is not None:
        return found
    if not await tx.versions(subject, lookup):
        raise subject_not_found(subject)
    raise version_not_found(version)


async def effective_mode(tx: StoreTx, subject: str) -> Mode:
    _, mode = await tx.config(subject)
    if mode is None:
        _, mode = await tx.config(GLOBAL)
    return mode or DEFAULT_MODE


async def effective_compatibility(tx: StoreTx, subject: str) -> Compatibility:
    level, _ = await tx.config(subject)
    if level is None:
        level, _ = await tx.config(GLOBAL)
    return level or DEFAULT_COMPATIBILITY


async def _prepare(tx: StoreTx, body: SchemaInput) -> _Candidate:
    """Parse ``body`` with its references resolved; 42201 when it is not a valid schema."""
    if not avro_rules.is_avro(body.schema_type):
        raise invalid_schema(f"schemaType {body.schema_type} is not supported (only AVRO)")
    dependencies = await _dependencies(tx, body.references, seen=set())
    parsed = avro_rules.parse(body.schema, [s.schema for s in dependencies])
    fingerprint = avro_rules.fingerprint(body.schema_type, parsed.canonical, body.references)
    return _Candidate(parsed, fingerprint)


async def _dependencies(
    tx: StoreTx, references: Sequence[Reference], *, seen: set[tuple[str, int]]
) -> list[StoredSchema]:
    """The referenced schemas, transitively, each after the schemas it depends on."""
    out: list[StoredSchema] = []
    for ref in references:
        if (ref.subject, ref.version) in seen:
            continue
        seen.add((ref.subject, ref.version))
        found = await tx.version(ref.subject, ref.version, Lookup.ALL)
        if found is None or ref.version == LATEST:
            raise invalid_schema(f"reference {ref.name!r}: {ref.subject} v{ref.version} not found")
        out += await _dependencies(tx, found.schema.references, seen=seen)
        out.append(found.schema)
    return out


async def _known_id(tx: StoreTx, candidate: _Candidate) -> int | None:
    found = await tx.schema_by_fingerprint(candidate.fingerprint)
    return found.id if found else None


async def _check(
    tx: StoreTx,
    subject: str,
    candidate: _Candidate,
    history: Sequence[SubjectVersion],
    *,
    transitive: bool | None = None,
) -> list[str]:
    """Compatibility messages for ``candidate`` against ``history`` (newest first)."""
    level = await effective_compatibility(tx, subject)
    if level is Compatibility.NONE or not history:
        return []
    if transitive is False and level.transitive:
        level = Compatibility(level.value.removesuffix("_TRANSITIVE"))
    if not level.transitive:
        history = history[:1]
    parsed = []
    for version in history:
        dependencies = await _dependencies(tx, version.schema.references, seen=set())
        old = avro_rules.parse(version.schema.schema, [s.schema for s in dependencies])
        parsed.append((version.version, old.schema))
    return avro_rules.check(level, candidate.parsed.schema, parsed)


async def _store_schema(tx: StoreTx, body: SchemaInput, candidate: _Candidate) -> StoredSchema:
    """The stored schema for ``candidate``: the existing one, or a new one under a new id."""
    existing = await tx.schema_by_fingerprint(candidate.fingerprint)
    if existing is not None:
        if body.id is not None and body.id != existing.id:
            text = f"Schema already registered with id {existing.id} instead of {body.id}"
            raise id_conflict(text)
        return existing
    if body.id is not None and await tx.schema_by_id(body.id) is not None:
        raise id_conflict(f"Overwrite new schema with id {body.id} is not permitted.")
    return await tx.insert_schema(
        fingerprint=candidate.fingerprint,
        schema_type=body.schema_type,
        canonical=candidate.parsed.canonical,
        text=body.schema,
        references=body.references,
        schema_id=body.id,
    )
