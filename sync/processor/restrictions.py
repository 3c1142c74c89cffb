"""One agency's projections kept in step with the data subjects' restrictions register.

The active member reads the restrictions in force for its agency (and for every agency) from
the audit store, as its writer role may, every ``interval`` seconds between batches. Each
subscription on consent or legitimate interest then withholds those people's rows from every
later event (:meth:`sync.policy.Projection.withhold`), and the rows its replica already holds
of people newly restricted are deleted, by the personal-id columns the replica has (hashed
as the subscription hashes them). A person whose restriction is lifted is no longer withheld:
their rows come back with their next change at the source, or at once with ``govsync
snapshot`` of the table.

A register that cannot be read, or a replica that refuses the delete, is logged, counted and
tried again at the next interval; the withholding already in force stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from sync.audit.restrictions import WITHHELD_QUERY
from sync.metrics import ProcessorMetrics
from sync.policy import Projection
from sync.replica import ReplicaTable

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0


class RestrictionGuard:
    def __init__(
        self,
        agency: str,
        audit_dsn: str,
        replica_dsn: str,
        projections: Mapping[str, Projection],
        tables: Mapping[str, ReplicaTable],
        metrics: ProcessorMetrics,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.agency = agency
        self.audit_dsn = audit_dsn
        self.replica_dsn = replica_dsn
        # only subscriptions a person may object to, and which receive a personal-id column
        self.projections = {t: p for t, p in projections.items() if p.person_fields}
        self.tables = tables
        self.metrics = metrics
        self.interval = interval
        self._removed: frozenset[str] | None = None  # people whose rows are gone; None: none yet
        self._due = 0.0
        self._audit: psycopg.AsyncConnection[Any] | None = None  # kept between reads
        self._register_found = False  # once there, the register stays

    @property
    def needed(self) -> bool:
        return bool(self.projections)

    async def refresh(self, force: bool = False) -> None:
        """Read the register if due, withhold, and remove the newly restricted people's rows."""
        if not self.needed or (not force and time.monotonic() < self._due):
            return
        self._due = time.monotonic() + self.interval
        try:
            people = await self._read()
            for projection in self.projections.values():
                projection.withhold(people)
            self.metrics.restrictions_in_force.labels(self.agency).set(len(people))
            # on the first read every restricted person is new: the replica may hold rows
            # applied before this member started
            new = people - (self._removed or frozenset())
            if new:
                await self._remove(new)
            self._removed = people
        except psycopg.Error as exc:
            await self.close()  # a broken connection is made anew at the next read
            self.metrics.restriction_refresh_failures.labels(self.agency).inc()
            log.warning("agency %s: restrictions not brought up to date: %s", self.agency, exc)

    async def close(self) -> None:
        if self._audit is not None:
            await self._audit.close()
            self._audit = None

    async def _read(self) -> frozenset[str]:
        if self._audit is None or self._audit.closed:
            self._audit = await psycopg.AsyncConnection.connect(self.audit_dsn, autocommit=True)
        conn = self._audit
        if not self._register_found:
            exists = await conn.execute("SELECT to_regclass('govsync_audit.restriction')")
            found = await exists.fetchone()
            if found is None or found[0] is None:
                return frozenset()
            self._register_found = True
        cursor = await conn.execute(WITHHELD_QUERY, (self.agency,))
        return frozenset(str(row[0]) for row in await cursor.fetchall())

    async def _remove(self, people: frozenset[str]) -> None:
        removed: dict[str, int] = {}
        connecting = psycopg.AsyncConnection.connect(self.replica_dsn)
        async with await connecting as conn, conn.transaction():
            for topic, projection in self.projections.items():
                removed[topic] = await _delete_rows(conn, self.tables[topic], projection, people)
        for topic, count in removed.items():
            self.metrics.restricted_rows_removed.labels(self.agency, topic).inc(count)
            if count:
                log.info(
                    "agency %s: %d row(s) of %s removed for %d restricted person(s)",
                    self.agency,
                    count,
                    topic,
                    len(people),
                )


async def _delete_rows(
    conn: psycopg.AsyncConnection[Any],
    table: ReplicaTable,
    projection: Projection,
    people: frozenset[str],
) -> int:
    columns: dict[str, list[Any]] = {}
    for person in sorted(people):
        for column, value in projection.person_columns(person).items():
            columns.setdefault(column, []).append(value)
    if not columns:
        return 0
    condition = sql.SQL(" OR ").join(
        sql.SQL("{} = ANY(%s)").format(sql.Identifier(column)) for column in columns
    )
    cursor = await conn.execute(
        sql.SQL("DELETE FROM {} WHERE {}").format(table.live, condition), list(columns.values())
    )
    return cursor.rowcount
