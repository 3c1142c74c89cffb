"""Registration, lookup and compatibility tests, with Confluent's semantics, on top of the plain
rows of :mod:`sync.registry.store` and the parser processes of
:mod:`sync.registry.parser_pool`.

No schema is parsed inside a transaction and none under the registry-wide write lock, so a slow
parse delays only its own request. A registration is decided optimistically: it reads the
subject, parses and checks outside the lock, then takes the lock and writes only if the
subject, its level and mode and the references are as they were when it read them; otherwise
it reads and checks again. After a few lost races it decides under the lock, so it always ends.
Two registry processes on one store therefore never both add a version the other did not
check against, and ids and versions come out in one order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sync.registry.admin import effective_compatibility, effective_mode
from sync.registry.audit import Action, Actor
from sync.registry.model import (
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
from sync.registry.parser_pool import ParserPool
from sync.registry.parsing import Earlier, Prepared
from sync.registry.store import PgStore, StoreTx

log = logging.getLogger(__name__)

OPTIMISTIC_ATTEMPTS = 3  # registrations checked outside the lock before one is checked inside


@dataclass(frozen=True, slots=True)
class Registration:
    """The result of a registration; ``created`` is false when the schema was already there."""

    version: SubjectVersion
    created: bool


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A schema to register, parsed; ``normalize``: store its canonical text."""

    body: SchemaInput
    prepared: Prepared
    normalize: bool


@dataclass(frozen=True, slots=True)
class _State:
    """What a registration's verdict depends on, cheap to read again under the lock: the live
    versions (number, schema id), the level, the mode, and the schema ids references name."""

    live: tuple[tuple[int, int], ...]
    level: Compatibility
    mode: Mode
    references: tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a registration read: the version holding the schema already, or what to check
    the schema against, and the state that must not change before the write."""

    state: _State
    existing: SubjectVersion | None = None
    history: tuple[Earlier, ...] = ()


class Registry:
    """Registration and the reads that parse. Errors are RegistryErrors with Confluent's codes."""

    def __init__(self, store: PgStore, parser: ParserPool) -> None:
        self.store = store
        self.parser = parser

    async def register(
        self, subject: str, body: SchemaInput, *, actor: Actor, normalize: bool = False
    ) -> Registration:
        """Register ``body`` under ``subject`` (``normalize``: store its canonical text)."""
        async with self.store.transaction() as tx:
            _refuse_writes(subject, body, await effective_mode(tx, subject))
            dependencies = await self._dependency_texts(tx, body.references)
        prepared = await self.parser.prepare(body.schema, dependencies, body.references)
        candidate = _Candidate(body, prepared, normalize)
        for _ in range(OPTIMISTIC_ATTEMPTS):
            async with self.store.transaction() as tx:
                plan = await self._plan(tx, subject, body, prepared)
            if plan.existing is not None:
                return Registration(plan.existing, created=False)
            messages = await self._verdict(plan, body, dependencies)
            async with self.store.transaction(write=True) as tx:
                if await _state(tx, subject, body.references) == plan.state:
                    return await _write(tx, subject, candidate, actor, messages)
            log.debug("registration under %s raced another; checking again", subject)
        async with self.store.transaction(write=True) as tx:
            plan = await self._plan(tx, subject, body, prepared)
            if plan.existing is not None:
                return Registration(plan.existing, created=False)
            messages = await self._verdict(plan, body, dependencies)
            return await _write(tx, subject, candidate, actor, messages)

    async def lookup(self, subject: str, body: SchemaInput, *, deleted: bool) -> SubjectVersion:
        """The version of ``subject`` holding this schema: newest first, 40401/40403 if none."""
        lookup = Lookup.of(deleted)
        async with self.store.transaction() as tx:
            if not await tx.version_ids(subject, lookup):
                raise subject_not_found(subject)
            dependencies = await self._dependency_texts(tx, body.references)
        prepared = await self.parser.prepare(body.schema, dependencies, body.references)
        async with self.store.transaction() as tx:
            known = await tx.schema_by_fingerprint(prepared.fingerprint)
            for version, schema_id in reversed(await tx.version_ids(subject, lookup)):
                if known is not None and schema_id == known.id:
                    found = await tx.version(subject, version, lookup)
                    if found is not None:
                        return found
        raise schema_not_found()

    async def test_compatibility(
        self, subject: str, version: int | None, body: SchemaInput
    ) -> list[str]:
        """Why ``body`` may not be registered: against one version under the subject's level
        (made non-transitive), or against the versions the level names when ``version`` is
        None. An unknown subject or ``latest`` of an empty one accepts anything."""
        async with self.store.transaction() as tx:
            dependencies = await self._dependency_texts(tx, body.references)
            level = await effective_compatibility(tx, subject)
            if version is None:
                history = await _history(tx, subject, level)
            else:
                history = [await _version_to_check(tx, subject, version)]
                level = Compatibility(level.value.removesuffix("_TRANSITIVE"))
            earlier = await self._earlier(tx, history)
        return await self.parser.check(level, body.schema, dependencies, earlier)

    async def _plan(
        self, tx: StoreTx, subject: str, body: SchemaInput, prepared: Prepared
    ) -> _Plan:
        state = await _state(tx, subject, body.references)
        _refuse_writes(subject, body, state.mode)
        known = await tx.schema_by_fingerprint(prepared.fingerprint)
        for version, schema_id in reversed(state.live):
            if known is not None and schema_id == known.id:
                return _Plan(state, existing=await tx.version(subject, version, Lookup.ACTIVE))
        if state.mode is Mode.IMPORT or state.level is Compatibility.NONE or not state.live:
            return _Plan(state)
        history = await _history(tx, subject, state.level)
        return _Plan(state, history=tuple(await self._earlier(tx, history)))

    async def _verdict(
        self, plan: _Plan, body: SchemaInput, dependencies: Sequence[str]
    ) -> list[str]:
        if not plan.history:
            return []
        return await self.parser.check(plan.state.level, body.schema, dependencies, plan.history)

    async def _earlier(
        self, tx: StoreTx, versions: Sequence[SubjectVersion | None]
    ) -> list[Earlier]:
        out = []
        for version in filter(None, versions):
            texts = await self._dependency_texts(tx, version.schema.references)
            out.append(Earlier(version.version, version.schema.schema, tuple(texts)))
        return out

    async def _dependency_texts(self, tx: StoreTx, references: Sequence[Reference]) -> list[str]:
        found = await dependencies(tx, references, limit=self.parser.limits.max_references)
        return [schema.schema for schema in found]


async def dependencies(
    tx: StoreTx, references: Sequence[Reference], *, limit: int
) -> list[StoredSchema]:
    """The referenced schemas, transitively, each after the schemas it depends on (at most
    ``limit`` of them; walked without recursion, so no chain of references is too long)."""
    out: list[StoredSchema] = []
    seen: set[tuple[str, int]] = set()
    # (reference, its schema once fetched): a schema is emitted after those it references
    stack: list[tuple[Reference, StoredSchema | None]] = [(r, None) for r in reversed(references)]
    while stack:
        ref, fetched = stack.pop()
        if fetched is not None:
            out.append(fetched)
            continue
        if (ref.subject, ref.version) in seen:
            continue
        seen.add((ref.subject, ref.version))
        if len(seen) > limit:
            raise invalid_schema(f"the schema depends on more than {limit} schemas")
        found = await tx.version(ref.subject, ref.version, Lookup.ALL)
        if found is None or ref.version == LATEST:
            raise invalid_schema(f"reference {ref.name!r}: {ref.subject} v{ref.version} not found")
        stack.append((ref, found.schema))
        stack.extend((r, None) for r in reversed(found.schema.references))
    return out


def _refuse_writes(subject: str, body: SchemaInput, mode: Mode) -> None:
    if not mode.writable:
        raise not_permitted(f"Subject {subject} is in read-only mode")
    if mode is not Mode.IMPORT and (body.id is not None or body.version is not None):
        raise not_permitted(f"Subject {subject} is not in import mode")


async def _state(tx: StoreTx, subject: str, references: Sequence[Reference]) -> _State:
    refs = []
    for ref in references:
        found = await tx.version(ref.subject, ref.version, Lookup.ALL)
        refs.append(found.schema.id if found else None)
    return _State(
        live=tuple(await tx.version_ids(subject, Lookup.ACTIVE)),
        level=await effective_compatibility(tx, subject),
        mode=await effective_mode(tx, subject),
        references=tuple(refs),
    )


async def _history(tx: StoreTx, subject: str, level: Compatibility) -> list[SubjectVersion | None]:
    """The live versions ``level`` checks a new schema against, newest first."""
    if level.transitive:
        return list(reversed(await tx.versions(subject, Lookup.ACTIVE)))
    return [await tx.version(subject, LATEST, Lookup.ACTIVE)]


async def _version_to_check(tx: StoreTx, subject: str, version: int) -> SubjectVersion | None:
    """The live version a compatibility test names; None for ``latest`` of an empty subject."""
    found = await tx.version(subject, version, Lookup.ACTIVE)
    if found is not None or version == LATEST:
        return found
    if not await tx.version_ids(subject, Lookup.ACTIVE):
        raise subject_not_found(subject)
    raise version_not_found(version)


async def _write(
    tx: StoreTx, subject: str, candidate: _Candidate, actor: Actor, messages: list[str]
) -> Registration:
    """Add the checked schema as the subject's next version (under the write lock)."""
    body = candidate.body
    if body.version is not None and await tx.version(subject, body.version, Lookup.ALL):
        raise id_conflict(f"Overwrite new schema with version {body.version} is not permitted.")
    if messages:
        raise incompatible(subject, messages)
    stored = await _store_schema(tx, candidate)
    number = await tx.insert_version(subject, stored.id, body.version)
    await tx.record(actor, Action.REGISTER, subject, version=number, id=stored.id)
    log.info("registered %s version %d as schema id %d", subject, number, stored.id)
    return Registration(SubjectVersion(subject, number, stored), created=True)


async def _store_schema(tx: StoreTx, candidate: _Candidate) -> StoredSchema:
    """The stored schema for the candidate: the existing one, or a new one under a new id."""
    body, prepared = candidate.body, candidate.prepared
    existing = await tx.schema_by_fingerprint(prepared.fingerprint)
    if existing is not None:
        if body.id is not None and body.id != existing.id:
            text = f"Schema already registered with id {existing.id} instead of {body.id}"
            raise id_conflict(text)
        return existing
    if body.id is not None and await tx.schema_by_id(body.id) is not None:
        raise id_conflict(f"Overwrite new schema with id {body.id} is not permitted.")
    return await tx.insert_schema(
        fingerprint=prepared.fingerprint,
        schema_type=body.schema_type,
        canonical=prepared.canonical,
        text=prepared.canonical if candidate.normalize else body.schema,
        references=body.references,
        schema_id=body.id,
    )
