"""One agency's connection to its replica, as a subscription uses it: made on first use and
its tables brought to the contracts then, dropped on any failure that may have left it
unusable, and the judge of which failures one event causes.

With a member lock (:mod:`sync.processor.membership`), the connection is made only by
:meth:`ReplicaSession.acquire`, which waits until it holds the lock, and every write through it
checks the lock. Once that connection is gone the term is over: :meth:`ReplicaSession.applier`
raises :class:`MembershipLost` rather than connecting again without the lock.

Database errors fall in three kinds. Transient ones (the replica unreachable) are raised for
the caller to retry. Errors one event's values can cause (a value out of range, a constraint,
a value psycopg cannot adapt, or any error from outside the database) are the event's: it is
dead-lettered. Any other database error (a column dropped by hand, a missing privilege) would
refuse every event, so the subscription stops.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import psycopg
from psycopg.pq import TransactionStatus

from sync.errors import ConfigError, ReplicaSchemaError, SubscriptionStopped, is_retryable
from sync.metrics import ProcessorMetrics
from sync.processor.letters import error_text
from sync.processor.membership import MemberLock, MembershipLost
from sync.replica import Applier, DeletedKeys, ReplicaTable, TableChanges

log = logging.getLogger(__name__)

Partition = tuple[str, int]


class ReplicaSession:
    def __init__(
        self,
        agency: str,
        dsn: str,
        tables: Mapping[str, ReplicaTable],  # by topic
        group_id: str,
        topic_ids: Mapping[str, str],
        metrics: ProcessorMetrics,
        lock: MemberLock | None = None,
        deleted_keys: DeletedKeys | None = None,
    ) -> None:
        self.agency = agency
        self.dsn = dsn
        self.tables = dict(tables)
        self.group_id = group_id
        self.topic_ids = dict(topic_ids)
        self.metrics = metrics
        self.lock = lock
        # the agency's secret for its remembered deletes; the worker sets it on a session its
        # subscription made, and no replica is written without it
        self.deleted_keys = deleted_keys
        self._applier: Applier | None = None

    async def applier(self) -> Applier:
        """The connected applier; the first call creates or evolves the replica's tables. With
        a member lock, only :meth:`acquire` connects: raises :class:`MembershipLost` when the
        connection that held the lock is gone."""
        if self._applier is None:
            if self.lock is not None:
                raise MembershipLost(
                    "the replica session that held the member lock is gone",
                    agency=self.agency,
                )
            self._applier = await self._connect()
        return self._applier

    async def acquire(self) -> Applier:
        """Connect and, with a member lock, wait (without a deadline) until this session holds
        it; then bring the replica's tables to the contracts."""
        if self._applier is None:
            self._applier = await self._connect()
        return self._applier

    async def confirm_held(self) -> None:
        """Raise :class:`MembershipLost` unless the session still holds the member lock (and
        still answers); closes the session then. Without a member lock, nothing to confirm."""
        if self.lock is None:
            return
        conn = (await self.applier()).conn
        try:
            async with conn.transaction():
                await self.lock.assert_held(conn)
        except (psycopg.Error, MembershipLost) as exc:
            await self.close()
            raise MembershipLost(
                f"the member lock is lost ({error_text(exc)})",
                agency=self.agency,
            ) from exc

    async def _connect(self) -> Applier:
        if self.deleted_keys is None:
            raise ConfigError(
                f"agency {self.agency}: no secret for its remembered deletes (see "
                "sync.replica.deletes); the replica is not written without it"
            )
        dsn = self.lock.conninfo(self.dsn) if self.lock is not None else self.dsn
        conn = await psycopg.AsyncConnection.connect(
            dsn, application_name=f"govsync-replica-{self.agency}"
        )
        guard = self.lock.assert_held if self.lock is not None else None
        applier = Applier(
            conn,
            self.tables,
            self.group_id,
            self.topic_ids,
            guard=guard,
            deleted_keys=self.deleted_keys,
        )
        try:
            if self.lock is not None:
                await self.lock.wait(conn)
            changes = await applier.prepare()
        except ReplicaSchemaError as exc:
            await conn.close()
            raise SubscriptionStopped(
                f"agency {self.agency}: {exc}; fix the contract or the replica table, then "
                "restart the worker",
                agency=self.agency,
            ) from exc
        except BaseException:
            await conn.close()
            raise
        self._report(changes)
        return applier

    async def close(self) -> None:
        """Close the connection, if any (releasing the member lock); without a member lock,
        the next :meth:`applier` connects again."""
        if self._applier is not None:
            try:
                await self._applier.conn.close()
            finally:
                self._applier = None

    async def raise_unless_event_error(self, exc: Exception) -> None:
        """Return when one event can have caused ``exc`` (it is then dead-lettered); raise it
        when it is transient, and stop the subscription on any other database error. A lost
        member lock is no event's: it is raised."""
        if isinstance(exc, MembershipLost):
            await self.close()
            raise exc
        conn = self._applier.conn if self._applier is not None else None
        if is_retryable(exc) or (conn is not None and conn.broken):
            await self.close()
            raise exc
        if conn is not None and conn.info.transaction_status is not TransactionStatus.IDLE:
            await self.close()  # the failure left it inside a transaction: start afresh
        if not isinstance(exc, psycopg.Error) or _caused_by_event(exc):
            return
        await self.close()
        detail = exc.diag.message_primary or type(exc).__name__
        raise SubscriptionStopped(
            f"the replica refuses the batch: {detail} ({exc.sqlstate}); fix the replica and "
            "restart the worker",
            agency=self.agency,
        ) from exc

    async def recorded_offsets(self) -> dict[Partition, int]:
        """The next offset to read per partition, as the replica recorded it for this group
        and the topics' current incarnations."""
        applier = await self.applier()
        try:
            return await applier.recorded_offsets()
        except psycopg.Error as exc:
            await self._raise_or_stop(exc, "read its recorded offsets")
            raise  # not reached: the line above always raises

    async def record_offsets(self, offsets: Mapping[Partition, int]) -> None:
        """Record offsets in a transaction of their own."""
        applier = await self.applier()
        try:
            await applier.record_offsets(offsets)
        except psycopg.Error as exc:
            await self._raise_or_stop(exc, "record its offsets")

    async def _raise_or_stop(self, exc: psycopg.Error, doing: str) -> None:
        await self.close()
        if is_retryable(exc):
            raise exc
        raise SubscriptionStopped(
            f"the replica does not let the subscription {doing}: {error_text(exc)}; fix the "
            "replica and restart the worker",
            agency=self.agency,
        ) from exc

    def _report(self, changes: Mapping[str, TableChanges]) -> None:
        for topic, change in changes.items():
            if change.added:
                self.metrics.replica_columns_added.labels(self.agency, topic).inc(len(change.added))
                log.warning(
                    "agency %s: replica table %s: added column(s) %s the contract gained; rows "
                    "applied before hold NULL there until the table is snapshotted again",
                    self.agency,
                    change.table,
                    ", ".join(change.added),
                )
            if change.relaxed:
                log.warning(
                    "agency %s: replica table %s: column(s) %s made optional by the contract",
                    self.agency,
                    change.table,
                    ", ".join(change.relaxed),
                )
            if change.kept:
                log.info(
                    "agency %s: replica table %s: kept column(s) %s the contract no longer has "
                    "(left NULL by new rows)",
                    self.agency,
                    change.table,
                    ", ".join(change.kept),
                )


def _caused_by_event(exc: psycopg.Error) -> bool:
    """A database error one event's values can cause: a value out of range or of the wrong
    form, a constraint, or a value psycopg cannot adapt (a client-side error, no SQLSTATE)."""
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
        return True
    return exc.sqlstate is None and isinstance(exc, psycopg.ProgrammingError)
