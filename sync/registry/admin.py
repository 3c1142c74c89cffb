"""The registry's administrative operations: soft and permanent deletes, compatibility config
and modes, with Confluent's semantics (a permanent delete needs a soft delete first, a version
another schema references cannot be deleted, subject settings fall back to global ones).

Each public method is one store transaction; those that write take the store's lock.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from sync.registry.audit import Action, Actor
from sync.registry.model import (
    DEFAULT_COMPATIBILITY,
    DEFAULT_MODE,
    Compatibility,
    Lookup,
    Mode,
    compatibility_not_configured,
    mode_not_configured,
    not_permitted,
    reference_exists,
    subject_not_found,
    subject_not_soft_deleted,
    subject_soft_deleted,
    version_not_found,
    version_not_soft_deleted,
    version_soft_deleted,
)
from sync.registry.store import GLOBAL, PgStore, StoreTx

log = logging.getLogger(__name__)


class Admin:
    """Deletes, config and mode. Errors are :class:`~sync.errors.RegistryError` with codes."""

    def __init__(self, store: PgStore) -> None:
        self.store = store

    # -- deletes ------------------------------------------------------------------------------

    async def delete_subject(self, subject: str, *, permanent: bool, actor: Actor) -> list[int]:
        """Soft-delete the live versions, or permanently remove soft-deleted ones."""
        async with self.store.transaction(write=True) as tx:
            await _refuse_if_readonly(tx, subject)
            every = [v for v, _ in await tx.version_ids(subject, Lookup.ALL)]
            if not every:
                raise subject_not_found(subject)
            live = [v for v, _ in await tx.version_ids(subject, Lookup.ACTIVE)]
            if permanent and live:
                raise subject_not_soft_deleted(subject)
            if not permanent and not live:
                raise subject_soft_deleted(subject)
            numbers = every if permanent else live
            for number in numbers:
                await _refuse_if_referenced(tx, subject, number)
            if permanent:
                await tx.hard_delete(subject, numbers)
            else:
                await tx.soft_delete(subject, numbers)
                await tx.set_compatibility(subject, None)
                await tx.set_mode(subject, None)
            await tx.record(
                actor, Action.DELETE_SUBJECT, subject, versions=numbers, permanent=permanent
            )
        log.info("deleted %s versions %s (permanent=%s)", subject, numbers, permanent)
        return numbers

    async def delete_version(
        self, subject: str, version: int, *, permanent: bool, actor: Actor
    ) -> int:
        async with self.store.transaction(write=True) as tx:
            await _refuse_if_readonly(tx, subject)
            found = await tx.version(subject, version, Lookup.ALL if permanent else Lookup.ACTIVE)
            if found is None:
                await _explain_missing(tx, subject, version)
            if permanent and not found.deleted:
                raise version_not_soft_deleted(subject, found.version)
            await _refuse_if_referenced(tx, subject, found.version)
            if permanent:
                await tx.hard_delete(subject, [found.version])
            else:
                await tx.soft_delete(subject, [found.version])
            await tx.record(
                actor,
                Action.DELETE_VERSION,
                subject,
                version=found.version,
                id=found.schema.id,
                permanent=permanent,
            )
        log.info("deleted %s version %d (permanent=%s)", subject, found.version, permanent)
        return found.version

    # -- compatibility config -----------------------------------------------------------------

    async def compatibility(self, subject: str | None, *, default_to_global: bool) -> Compatibility:
        async with self.store.transaction() as tx:
            level, _ = await tx.config(subject or GLOBAL)
            if level is None and subject and default_to_global:
                level, _ = await tx.config(GLOBAL)
        if level is None and subject and not default_to_global:
            raise compatibility_not_configured(subject)
        return level or DEFAULT_COMPATIBILITY

    async def set_compatibility(
        self, subject: str | None, level: Compatibility, *, actor: Actor
    ) -> None:
        async with self.store.transaction(write=True) as tx:
            await tx.set_compatibility(subject or GLOBAL, level)
            await tx.record(actor, Action.SET_COMPATIBILITY, subject, compatibility=level.value)
        log.info("compatibility of %s set to %s", subject or "the registry", level.value)

    async def delete_compatibility(self, subject: str | None, *, actor: Actor) -> Compatibility:
        """Remove a setting, returning the old one; the global one falls back to the default."""
        async with self.store.transaction(write=True) as tx:
            level, _ = await tx.config(subject or GLOBAL)
            if level is None and subject:
                raise subject_not_found(subject)
            await tx.set_compatibility(subject or GLOBAL, None)
            old = level.value if level else None
            await tx.record(actor, Action.DELETE_COMPATIBILITY, subject, compatibility=old)
        return level or DEFAULT_COMPATIBILITY

    # -- mode ---------------------------------------------------------------------------------

    async def mode(self, subject: str | None, *, default_to_global: bool) -> Mode:
        async with self.store.transaction() as tx:
            _, mode = await tx.config(subject or GLOBAL)
            if mode is None and subject and default_to_global:
                _, mode = await tx.config(GLOBAL)
        if mode is None and subject and not default_to_global:
            raise mode_not_configured(subject)
        return mode or DEFAULT_MODE

    async def set_mode(self, subject: str | None, mode: Mode, *, force: bool, actor: Actor) -> None:
        """IMPORT needs an empty registry (or subject) unless ``force``, as in Confluent."""
        async with self.store.transaction(write=True) as tx:
            if mode is Mode.IMPORT and not force:
                found = (
                    await tx.version_ids(subject, Lookup.ALL)
                    if subject
                    else await tx.subjects("", Lookup.ALL)
                )
                if found:
                    raise not_permitted("Cannot import since found existing subjects")
            await tx.set_mode(subject or GLOBAL, mode)
            await tx.record(actor, Action.SET_MODE, subject, mode=mode.value, force=force)
        log.info("mode of %s set to %s", subject or "the registry", mode.value)

    async def delete_mode(self, subject: str | None, *, actor: Actor) -> Mode:
        async with self.store.transaction(write=True) as tx:
            _, mode = await tx.config(subject or GLOBAL)
            if mode is None and subject:
                raise subject_not_found(subject)
            await tx.set_mode(subject or GLOBAL, None)
            await tx.record(actor, Action.DELETE_MODE, subject, mode=mode.value if mode else None)
        return mode or DEFAULT_MODE


async def effective_mode(tx: StoreTx, subject: str) -> Mode:
    """The subject's mode, else the global one; a global READONLY_OVERRIDE wins over both."""
    _, registry_wide = await tx.config(GLOBAL)
    if registry_wide is Mode.READONLY_OVERRIDE:
        return registry_wide
    _, mode = await tx.config(subject)
    return mode or registry_wide or DEFAULT_MODE


async def effective_compatibility(tx: StoreTx, subject: str) -> Compatibility:
    level, _ = await tx.config(subject)
    if level is None:
        level, _ = await tx.config(GLOBAL)
    return level or DEFAULT_COMPATIBILITY


async def _refuse_if_readonly(tx: StoreTx, subject: str) -> None:
    if not (await effective_mode(tx, subject)).writable:
        raise not_permitted(f"Subject {subject} is in read-only mode")


async def _refuse_if_referenced(tx: StoreTx, subject: str, version: int) -> None:
    if await tx.referenced_by(subject, version):
        raise reference_exists(
            f"One or more references exist to the schema {{subject={subject}, version={version}}}."
        )


async def _explain_missing(tx: StoreTx, subject: str, version: int) -> NoReturn:
    """Raise the right error for a version a soft delete cannot find."""
    deleted = await tx.version(subject, version, Lookup.DELETED_ONLY)
    if deleted is not None:
        raise version_soft_deleted(subject, deleted.version)
    if not await tx.version_ids(subject, Lookup.ALL):
        raise subject_not_found(subject)
    raise version_not_found(version)
