"""The processor's side of the audit: append an agency's disclosures to its hash chain, one
transaction and one COPY per batch.

Called after the replica commit and before the Kafka offset commit, so after a crash the same
events come again: :meth:`AuditTrail.record` skips event ids the chain already holds, and
never chains an event twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType

import psycopg
from psycopg import sql

from sync.audit.chain import Entry, Head, extend
from sync.audit.disclosure import Disclosure
from sync.audit.schema import (
    COLUMNS,
    COPY_TYPES,
    DDL,
    DDL_LOCK,
    ENTRIES,
    EXISTS,
    HEADS,
    row_of,
)
from sync.errors import AuditError

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
_COPY = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
    ENTRIES, sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
)


class AuditTrail:
    """One agency's audit writer on its own connection to the audit store."""

    def __init__(self, conn: psycopg.AsyncConnection[tuple[object, ...]], agency: str) -> None:
        self.conn = conn
        self.agency = agency
        self._lock = asyncio.Lock()  # one transaction at a time on the connection

    @classmethod
    async def open(cls, dsn: str, agency: str) -> AuditTrail:
        """Connect, create the audit schema if missing and the agency's chain if new."""
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        try:
            await create_schema(conn)
            await conn.execute(_NEW_HEAD, (agency, Head(agency).hash))
        except BaseException:
            await conn.close()
            raise
        return cls(conn, agency)

    async def record(self, disclosures: Sequence[Disclosure]) -> int:
        """Append the disclosures not yet in the chain, in one transaction; returns how many
        entries were written (duplicates, in the batch or already stored, are skipped)."""
        batch = self._first_of_each(disclosures)
        if not batch:
            return 0
        async with self._lock, self.conn.transaction():
            head = await self._locked_head()
            known = await self._known([d.event_id for d in batch])
            fresh = [d for d in batch if d.event_id not in known]
            if not fresh:
                return 0
            entries = extend(head, fresh, datetime.now(UTC))
            await self._copy(entries)
            last = entries[-1]
            await self.conn.execute(_MOVE_HEAD, (last.seq, last.hash, self.agency))
        return len(entries)

    async def close(self) -> None:
        await self.conn.close()  # idempotent in psycopg

    async def __aenter__(self) -> AuditTrail:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

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


async def create_schema(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    """Create the audit tables unless they exist (then nothing is touched, so a writer role
    without DDL rights can open the store)."""
    async with conn.transaction():
        cursor = await conn.execute(EXISTS)
        row = await cursor.fetchone()
        if row is not None and row[0]:
            return
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
        await conn.execute(DDL)
