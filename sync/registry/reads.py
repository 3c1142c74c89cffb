"""The registry's reads that parse nothing: schemas by id, subjects, versions, references.

Each method is one read-only store transaction and answers Confluent's not-found errors
(40401 subject, 40402 version, 40403 schema) the way Confluent's clients expect them.
"""

from __future__ import annotations

from sync.registry.model import (
    Lookup,
    StoredSchema,
    SubjectVersion,
    schema_not_found,
    subject_not_found,
    version_not_found,
)
from sync.registry.store import PgStore, StoreTx


class Reads:
    def __init__(self, store: PgStore) -> None:
        self.store = store

    async def schema(self, schema_id: int) -> StoredSchema:
        async with self.store.transaction() as tx:
            found = await tx.schema_by_id(schema_id)
        if found is None:
            raise schema_not_found(schema_id)
        return found

    async def max_schema_id(self) -> int:
        async with self.store.transaction() as tx:
            return await tx.max_schema_id()

    async def schema_by_guid(self, guid: str) -> StoredSchema:
        async with self.store.transaction() as tx:
            found = await tx.schema_by_guid(guid)
        if found is None:
            raise schema_not_found(guid)
        return found

    async def usages(self, schema_id: int, *, deleted: bool) -> list[tuple[str, int]]:
        """(subject, version) pairs holding ``schema_id``; 40403 for an unknown id."""
        async with self.store.transaction() as tx:
            if await tx.schema_by_id(schema_id) is None:
                raise schema_not_found(schema_id)
            return await tx.usages(schema_id, Lookup.of(deleted))

    async def schema_versions(
        self, prefix: str, lookup: Lookup, *, latest_only: bool, offset: int, limit: int
    ) -> list[SubjectVersion]:
        async with self.store.transaction() as tx:
            return await tx.schema_versions(
                prefix, lookup, latest_only=latest_only, offset=offset, limit=limit
            )

    async def subjects(self, prefix: str, lookup: Lookup) -> list[str]:
        async with self.store.transaction() as tx:
            return await tx.subjects(prefix, lookup)

    async def versions(self, subject: str, lookup: Lookup) -> list[int]:
        async with self.store.transaction() as tx:
            found = await tx.version_ids(subject, lookup)
            # deletedOnly on a subject with only live versions is an empty list, not a 40401
            if not found and (
                lookup is not Lookup.DELETED_ONLY or not await tx.version_ids(subject, Lookup.ALL)
            ):
                raise subject_not_found(subject)
        return [version for version, _ in found]

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
    if not await tx.version_ids(subject, lookup):
        raise subject_not_found(subject)
    raise version_not_found(version)
