"""The processor's side of the audit: append an agency's disclosures to its hash chain, one
transaction and one COPY per batch.

Called after the replica commit and before the Kafka offset commit, so after a crash the same
events come again: :meth:`AuditTrail.record` skips event ids the chain already holds, and
never chains an event twice.

With a signing key, the last entry of each batch carries the worker's signature over the new
head, and after the commit that signed head is offered to a :class:`Checkpointer`, which
publishes it outside the database. The writer connects as a role that may only append to its
agency's chain (:mod:`.roles`); it never creates the store, unless it is a superuser (an
embedded stack before ``govsync audit init``), when it does what ``init`` would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType

import psycopg
from psycopg import sql

from sync.audit.chain import Entry, Head, extend
from sync.audit.checkpoints import Checkpointer, CheckpointPublisher
from sync.audit.disclosure import Disclosure
from sync.audit.roles import create_store
from sync.audit.schema import COLUMNS, COPY_TYPES, ENTRIES, EXISTS, HEADS, WRITERS, row_of
from sync.audit.signing import Signer
from sync.audit.timestamp import TimeStampAuthority
from sync.config import AuditSettings
from sync.errors import AuditError

log = logging.getLogger(__name__)

_LOCK_HEAD = sql.SQL("SELECT seq, hash FROM {} WHERE agency = %s FOR UPDATE").format(HEADS)
# A statement of its own, after the lock: under READ COMMITTED it then takes a snapshot that
# sees what a writer who held the lock before us committed. (Folded into the locking
# statement, it would use that statement's older snapshot and chain those events twice.)
_KNOWN = sql.SQL("SELECT event_id FROM {} WHERE agency = %s AND event_id = ANY(%s)").format(ENTRIES)
_NEW_HEAD = sql.SQL(
    "INSERT INTO {} (agency, seq, hash) VALUES (%s, 0, %s) ON CONFLICT (agency) DO NOTHING"
).format(HEADS)
_MOVE_HEAD = sql.SQL(
    "UPDATE {} SET seq = %s, hash = %s, updated_at = now() WHERE agency = %s"
).format(HEADS)
_MAY_WRITE = sql.SQL(
    "SELECT EXISTS (SELECT 1 FROM {} WHERE role_name = current_user AND agency = %s)"
).format(WRITERS)
_WHO = "SELECT current_setting('is_superuser') = 'on', current_user"
# Row-level security refuses COPY into the entries, so a batch is copied into a temporary
# table of the connection and moved with one INSERT, which the policies check.
_BATCH = sql.Identifier("govsync_audit_batch")
_COLUMN_LIST = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
_CREATE_BATCH = sql.SQL(
    "CREATE TEMPORARY TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS"
).format(
    _BATCH,
    sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
        for c, t in zip(COLUMNS, COPY_TYPES, strict=True)
    ),
)
_COPY = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(_BATCH, _COLUMN_LIST)
_MOVE_BATCH = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
    ENTRIES, _COLUMN_LIST, _COLUMN_LIST, _BATCH
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditTrail:
    """One agency's audit writer on its own connection to the audit store."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[tuple[object, ...]],
        agency: str,
        signer: Signer | None = None,
        checkpointer: Checkpointer | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.conn = conn
        self.agency = agency
        self.signer = signer
        self.checkpointer = checkpointer
        self._clock = clock
        self._lock = asyncio.Lock()  # one transaction at a time on the connection

    @classmethod
    async def open(
        cls,
        dsn: str,
        agency: str,
        settings: AuditSettings | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> AuditTrail:
        """Connect and create the agency's chain if new. ``settings`` name the signing key
        and where checkpoints go; without them they are read from the process's
        ``GOVSYNC_*`` variables. ``{agency}`` in ``dsn`` stands for the agency's code (a
        worker hosting several agencies connects as each one's role)."""
        settings = settings if settings is not None else AuditSettings()
        signer = _signer(settings)
        conn = await psycopg.AsyncConnection.connect(
            dsn.replace("{agency}", agency), autocommit=True
        )
        checkpointer = None
        try:
            await _ready(conn, dsn, agency)
            await conn.execute(_NEW_HEAD, (agency, Head(agency).hash))
            await conn.execute(_CREATE_BATCH)
            if signer is not None:
                checkpointer = await _checkpointer(settings)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, agency, signer, checkpointer, clock)

    async def record(self, disclosures: Sequence[Disclosure]) -> int:
        """Append the disclosures not yet in the chain, in one transaction; returns how many
        entries were written (duplicates, in the batch or already stored, are skipped)."""
        batch = self._first_of_each(disclosures)
        if not batch:
            return 0
        async with self._lock:
            entries = await self._append(batch)
            signed = entries[-1].checkpoint if entries else None
            if signed is not None and self.checkpointer is not None:
                await self.checkpointer.offer(signed)
        return len(entries)

    async def close(self) -> None:
        """Publish the last signed head still pending, then close; idempotent."""
        checkpointer, self.checkpointer = self.checkpointer, None
        try:
            if checkpointer is not None:
                await checkpointer.close()
        finally:
            await self.conn.close()

    async def __aenter__(self) -> AuditTrail:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _append(self, batch: list[Disclosure]) -> list[Entry]:
        async with self.conn.transaction():
            head = await self._locked_head()
            known = await self._known([d.event_id for d in batch])
            fresh = [d for d in batch if d.event_id not in known]
            if not fresh:
                return []
            entries = extend(head, fresh, self._clock(), self.signer)
            await self._copy(entries)
            last = entries[-1]
            await self.conn.execute(_MOVE_HEAD, (last.seq, last.hash, self.agency))
        return entries

    def _first_of_each(self, disclosures: Sequence[Disclosure]) -> list[Disclosure]:
        batch: dict[str, Disclosure] = {}
        for d in disclosures:
            if d.agency != self.agency:
                raise ValueError(
                    f"a disclosure to {d.agency!r} given to {self.agency!r}'s audit trail"
                )
            batch.setdefault(d.event_id, d)
        return list(batch.values())

    async def _locked_head(self) -> Head:
        """The agency's chain head, locked until commit."""
        cursor = await self.conn.execute(_LOCK_HEAD, (self.agency,))
        row = await cursor.fetchone()
        if row is None:
            raise AuditError(
                f"agency {self.agency}: the audit chain head is missing; run "
                "`govsync audit verify` and restore it before writing",
                agency=self.agency,
            )
        seq, digest = row
        assert isinstance(seq, int) and isinstance(digest, bytes)
        return Head(self.agency, seq, digest)

    async def _known(self, event_ids: list[str]) -> set[str]:
        cursor = await self.conn.execute(_KNOWN, (self.agency, event_ids))
        return {str(row[0]) for row in await cursor.fetchall()}

    async def _copy(self, entries: Sequence[Entry]) -> None:
        async with self.conn.cursor().copy(_COPY) as copy:
            copy.set_types(list(COPY_TYPES))
            for entry in entries:
                await copy.write_row(row_of(entry))
        await self.conn.execute(_MOVE_BATCH)


def _signer(settings: AuditSettings) -> Signer | None:
    path = settings.audit_signing_key_file
    return None if path is None else Signer.from_file(path)


async def _checkpointer(settings: AuditSettings) -> Checkpointer | None:
    if not settings.bootstrap:
        return None
    kafka = settings.client_config()
    publisher = await asyncio.to_thread(
        CheckpointPublisher.create, kafka, settings.checkpoint_topic
    )
    tsa = TimeStampAuthority(settings.audit_tsa_url) if settings.audit_tsa_url else None
    return Checkpointer(
        publisher, tsa, settings.audit_checkpoint_seconds, settings.audit_tsa_seconds
    )


async def _ready(conn: psycopg.AsyncConnection[tuple[object, ...]], dsn: str, agency: str) -> None:
    """Refuse to write until the store exists and this role may append to ``agency``."""
    cursor = await conn.execute(_WHO)
    who = await cursor.fetchone()
    assert who is not None
    superuser, role = bool(who[0]), str(who[1])
    cursor = await conn.execute(EXISTS)
    found = await cursor.fetchone()
    if not (found and found[0]):
        if not superuser:
            raise AuditError(
                "the audit store is not initialised (or predates roles and signatures): "
                f"run `govsync audit init --writer {role} --agency {agency}` as its owner",
                agency=agency,
            )
        log.warning("audit store missing: creating it as `govsync audit init` would")
        await asyncio.to_thread(_create_store, dsn)
        return
    if superuser:
        log.warning("agency %s: the audit is written by a superuser, not a writer role", agency)
        return
    try:
        cursor = await conn.execute(_MAY_WRITE, (agency,))
        allowed = await cursor.fetchone()
    except psycopg.errors.InsufficientPrivilege:
        allowed = None
    if not (allowed and allowed[0]):
        raise AuditError(
            f"role {role} may not append to agency {agency}'s audit chain: run "
            f"`govsync audit init --writer {role} --agency {agency}`",
            agency=agency,
        )


def _create_store(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        create_store(conn)
