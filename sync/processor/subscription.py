"""What a processor does with one batch of messages for one agency.

decode -> dead-letter what cannot be decoded -> apply the rest in one replica transaction
(retrying transient failures for as long as it takes, isolating permanently unappliable events
into dead letters) -> only then report the batch done, so the consumed position never passes an
event that is neither applied nor dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import psycopg

from sync.audit import AuditTrail, Disclosure, disclosures_of
from sync.contracts import Contract, EventCodec
from sync.errors import DecodeError, ReplicaSchemaError, SubscriptionStopped, is_retryable
from sync.metrics import ProcessorMetrics
from sync.policy import Projection
from sync.processor.deadletter import DeadLetter, DeadLetterPublisher
from sync.processor.schemas import SchemaCache
from sync.processor.transactions import TransactionHoldback
from sync.replica import Applier, ApplyResult, Delivery, ReplicaTable, TableChanges

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Subscription:
    """One agency's subscription to its topics, applied to its replica."""

    MAX_BACKOFF = 30.0

    def __init__(
        self,
        agency: str,
        replica_dsn: str,
        contracts: Mapping[str, Contract],  # by (prefixed) topic
        group_id: str,
        schemas: SchemaCache,
        dead_letters: DeadLetterPublisher,
        metrics: ProcessorMetrics,
        topic_ids: Mapping[str, str] | None = None,
        projections: Mapping[str, Projection] | None = None,
        audit_dsn: str | None = None,
        transactions: TransactionHoldback | None = None,
    ) -> None:
        self.agency = agency
        self.replica_dsn = replica_dsn
        self.codecs = {topic: EventCodec(c) for topic, c in contracts.items()}
        # under a manifest the replica holds the projection: allowed fields, transformed
        self.projections = dict(projections or {})
        self.tables = {
            topic: ReplicaTable.for_contract(
                self.projections[topic].contract if topic in self.projections else c
            )
            for topic, c in contracts.items()
        }
        self.group_id = group_id
        self.schemas = schemas
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.topic_ids = dict(topic_ids or {})
        self._applier: Applier | None = None
        # under a manifest, every applied record is a disclosure with a purpose and a legal
        # basis, appended to the agency's audit chain
        self.audit_dsn = audit_dsn if self.projections else None
        self._audit: AuditTrail | None = None
        self._disclosed: dict[tuple[str, int, int], Disclosure] = {}  # until applied
        # source transactions applied whole (None: every event as it comes)
        self.transactions = transactions
        self._read_upto: dict[tuple[str, int], int] = {}  # next offset per partition, as read
        self._set_state("running")

    def _set_state(self, state: str) -> None:
        for name in ("running", "stopped"):
            self.metrics.subscription_state.labels(self.agency, name).set(int(name == state))

    def stop(self, error: SubscriptionStopped) -> None:
        """Record that the subscription cannot go on; nothing more is consumed or committed."""
        self._set_state("stopped")
        log.error("agency %s: subscription stopped: %s", self.agency, error)

    @property
    def holding(self) -> bool:
        """Events of incomplete source transactions are held back."""
        return self.transactions is not None and self.transactions.holding

    def keep_only(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Forget what was read from partitions no longer read here (after a rebalance)."""
        owned = set(partitions)
        self._read_upto = {p: o for p, o in self._read_upto.items() if p in owned}
        self._disclosed = {c: d for c, d in self._disclosed.items() if c[:2] in owned}
        if self.transactions is not None:
            self.transactions.keep_only(owned)

    async def handle(
        self, messages: Sequence[RawMessage], whole: bool = True
    ) -> dict[tuple[str, int], int]:
        """Apply or dead-letter every message, except events of source transactions not yet
        complete, which are held (``whole``: this worker reads all of the agency's partitions;
        see :mod:`sync.processor.transactions`). Returns, once everything else is settled,
        the offset each partition may commit: the next to read, or its oldest held event."""
        for topic in {m.topic for m in messages}:
            self.metrics.events_consumed.labels(self.agency, topic).inc(
                sum(1 for m in messages if m.topic == topic)
            )
        deliveries = await self._retrying(lambda: self._decode(messages, self._disclosed))
        ready = self._admit(deliveries, whole)
        refused: set[tuple[str, int, int]] = set()
        if ready:
            refused = await self._retrying(lambda: self._apply(ready))
        disclosures = []
        for delivery in ready:
            coordinates = (delivery.topic, delivery.partition, delivery.offset)
            disclosure = self._disclosed.pop(coordinates, None)
            if disclosure is not None and coordinates not in refused:
                disclosures.append(disclosure)
        if disclosures:
            # after the replica commit, before the offsets move: a crash in between brings the
            # batch again, and the chain skips what it already holds
            await self._retrying(lambda: self._record(disclosures))
        for m in messages:
            where = (m.topic, m.partition)
            self._read_upto[where] = max(self._read_upto.get(where, 0), m.offset + 1)
        committable = dict(self._read_upto)
        if self.transactions is not None:
            for where, offset in self.transactions.held_from().items():
                committable[where] = min(committable.get(where, offset), offset)
        return committable

    def _admit(self, deliveries: list[Delivery], whole: bool) -> list[Delivery]:
        if self.transactions is None:
            return deliveries
        ready = self.transactions.admit(deliveries, whole)
        late, transactions = self.transactions.expired()
        if transactions:
            log.warning(
                "agency %s: %d source transaction(s) incomplete after %.0f s, applied as far "
                "as they arrived",
                self.agency,
                transactions,
                self.transactions.max_wait,
            )
            self.metrics.transactions_incomplete.labels(self.agency).inc(transactions)
        return ready + late

    async def close(self) -> None:
        if self._applier is not None:
            await self._applier.conn.close()
            self._applier = None
        if self._audit is not None:
            await self._audit.close()
            self._audit = None

    async def _decode(
        self,
        messages: Sequence[RawMessage],
        disclosures: dict[tuple[str, int, int], Disclosure],
    ) -> list[Delivery]:
        """Decode and project; what each applied record would disclose goes to
        ``disclosures`` by topic, partition and offset."""
        wanted: set[int] = set()
        for m in messages:
            try:
                wanted |= self.codecs[m.topic].schema_ids(m.key, m.value)
            except DecodeError:
                pass  # reported below, per message
        await self.schemas.fetch(wanted)
        deliveries, letters = [], []
        for m in messages:
            try:
                event = self.codecs[m.topic].decode(m.key, m.value, self.schemas.lookup)
            except DecodeError as exc:
                letters.append(self._letter(m.topic, m.partition, m.offset, "decode_error", exc))
                continue
            projection = self.projections.get(m.topic)
            if projection is not None:
                projected = projection.project_event(event)
                if projected is None:
                    # nothing reaches the replica; the offset is still committed with the batch
                    self.metrics.events_filtered.labels(self.agency, m.topic).inc()
                    deliveries.append(Delivery(event, m.topic, m.partition, m.offset, False))
                    continue
                if self.audit_dsn is not None:
                    for disclosure in disclosures_of(
                        event, projected, projection.subscription, m.topic, self.agency
                    ):
                        disclosures[(m.topic, m.partition, m.offset)] = disclosure
                event = projected
            deliveries.append(Delivery(event, m.topic, m.partition, m.offset))
        await self._dead_letter(letters)
        return deliveries

    async def _apply(self, deliveries: Sequence[Delivery]) -> set[tuple[str, int, int]]:
        """Apply the batch; returns the coordinates of the events dead-lettered instead."""
        applier = await self._connected()
        started = time.monotonic()
        refused: set[tuple[str, int, int]] = set()
        try:
            self._truncated(await applier.apply(deliveries))
        except psycopg.Error as exc:
            await self._raise_unless_event_error(exc, applier)
            log.warning(
                "agency %s: batch of %d failed (%s); isolating the bad events",
                self.agency,
                len(deliveries),
                type(exc).__name__,
            )
            refused = await self._apply_one_by_one(applier, deliveries)
        self._observe(deliveries, time.monotonic() - started)
        return refused

    async def _record(self, disclosures: list[Disclosure]) -> None:
        if self._audit is None:
            assert self.audit_dsn is not None
            self._audit = await AuditTrail.open(self.audit_dsn, self.agency)
        started = time.monotonic()
        try:
            written = await self._audit.record(disclosures)
        except psycopg.Error:
            await self._audit.close()
            self._audit = None
            raise
        self.metrics.audit_write_seconds.labels(self.agency).observe(time.monotonic() - started)
        self.metrics.audit_entries.labels(self.agency).inc(written)
        self.metrics.audit_duplicates.labels(self.agency).inc(len(disclosures) - written)

    async def _apply_one_by_one(
        self, applier: Applier, deliveries: Sequence[Delivery]
    ) -> set[tuple[str, int, int]]:
        letters = []
        for delivery in deliveries:
            try:
                self._truncated(await applier.apply([delivery]))
            except psycopg.Error as exc:
                await self._raise_unless_event_error(exc, applier)
                letters.append(
                    self._letter(
                        delivery.topic,
                        delivery.partition,
                        delivery.offset,
                        "unappliable",
                        exc,
                        delivery.event.event_id,
                    )
                )
        await self._dead_letter(letters)
        return {(letter.topic, letter.partition, letter.offset) for letter in letters}

    async def _raise_unless_event_error(self, exc: psycopg.Error, applier: Applier) -> None:
        """Return only for errors one event causes (a value the column cannot hold, a
        constraint): those are dead-lettered. Transient errors are raised for a retry; any
        other error would refuse every event, so the subscription stops."""
        if is_retryable(exc) or applier.conn.broken:
            await self._drop_connection()
            raise exc
        if isinstance(exc, psycopg.errors.DataError | psycopg.errors.IntegrityError):
            return
        await self._drop_connection()
        detail = exc.diag.message_primary or type(exc).__name__
        raise SubscriptionStopped(
            f"the replica refuses the batch: {detail} ({exc.sqlstate}); fix the replica and "
            "restart the worker",
            agency=self.agency,
        ) from exc

    def _truncated(self, result: ApplyResult) -> None:
        for topic in result.truncated:
            log.info("agency %s: replica of %s emptied by a source truncate", self.agency, topic)
            self.metrics.truncates_applied.labels(self.agency, topic).inc()

    def _observe(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        m, agency = self.metrics, self.agency
        m.batch_size.labels(agency).observe(len(deliveries))
        m.batch_seconds.labels(agency).observe(seconds)
        now = time.time()
        newest: dict[str, float] = {}
        for d in deliveries:
            committed = d.event.commit_time.timestamp()
            m.end_to_end_seconds.labels(agency).observe(max(0.0, now - committed))
            newest[d.topic] = max(newest.get(d.topic, 0.0), committed)
        for topic, committed in newest.items():
            m.events_applied.labels(agency, topic).inc(
                sum(1 for d in deliveries if d.topic == topic)
            )
            m.freshness_timestamp.labels(agency, topic).set(committed)

    async def _dead_letter(self, letters: list[DeadLetter]) -> None:
        await self.dead_letters.publish(letters)
        for letter in letters:
            log.error(
                "agency %s: dead-lettered %s/%d@%d: %s",
                self.agency,
                letter.topic,
                letter.partition,
                letter.offset,
                letter.error,
            )
            self.metrics.events_dead_lettered.labels(self.agency, letter.topic, letter.reason).inc()

    def _letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        reason: str,
        exc: Exception,
        event_id: str = "",
    ) -> DeadLetter:
        # the error text names what was wrong, never the event's values
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
            error = f"{type(exc).__name__}: {exc.diag.message_primary}"
        return DeadLetter(self.agency, reason, error, topic, partition, offset, event_id)

    async def _connected(self) -> Applier:
        if self._applier is None:
            conn = await psycopg.AsyncConnection.connect(
                self.replica_dsn, application_name=f"govsync-replica-{self.agency}"
            )
            applier = Applier(conn, self.tables, self.group_id, self.topic_ids)
            try:
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
            self._applier = applier
        return self._applier

    async def prepare(self) -> None:
        """Connect to the replica and bring its tables to the contracts now, rather than at
        the first batch, so an incompatible table stops the subscription at once."""
        await self._retrying(self._connected)

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

    async def _drop_connection(self) -> None:
        if self._applier is not None:
            try:
                await self._applier.conn.close()
            finally:
                self._applier = None

    async def _retrying(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run ``action`` until it succeeds; transient errors wait with backoff, others raise."""
        backoff = 0.2
        while True:
            try:
                return await action()
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                self.metrics.apply_retries.labels(self.agency).inc()
                log.warning("agency %s: %s; retrying in %.1f s", self.agency, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.MAX_BACKOFF)
