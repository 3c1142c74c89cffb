"""What a processor does with one batch of messages for one agency.

decode and project (:mod:`sync.processor.decoding`) -> dead-letter what cannot be decoded or
projected -> apply the rest in one replica transaction (retrying transient failures for as
long as it takes, isolating the events the replica refuses into dead letters) -> append the
disclosures to the audit -> only then report the batch done. The consumed position never
passes an event that is neither applied nor dead-lettered, and a letter counts only once the
broker acknowledged it.

The replica records the position too (``govsync_state.consumed_offsets``), and that record is
the position of record: a consumer starts there (:meth:`Subscription.take_over`).
It is written with the rows of a batch; when something is settled after the rows (events
applied one by one, disclosures audited), it is written alone once that is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TypeVar

import psycopg

from sync.audit import AuditTrail, Disclosure
from sync.contracts import Contract
from sync.errors import AuditError, SubscriptionStopped, is_retryable
from sync.kafka.deadletter import DeadLetter, DeadLetterPublisher
from sync.metrics import ProcessorMetrics
from sync.policy import Projection
from sync.processor.decode_cache import DecodeCache
from sync.processor.decoding import BatchDecoder, Coordinates, DecodedBatch, RawMessage
from sync.processor.letters import dead_letter
from sync.processor.membership import MemberLock
from sync.processor.replica_session import ReplicaSession
from sync.processor.restrictions import RestrictionGuard
from sync.processor.schemas import SchemaCache
from sync.processor.transactions import TransactionHoldback
from sync.replica import ApplyResult, Delivery, ReplicaTable

log = logging.getLogger(__name__)

T = TypeVar("T")
Partition = tuple[str, int]


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
        lock: MemberLock | None = None,
        decode_cache: DecodeCache | None = None,
    ) -> None:
        self.agency = agency
        # under a manifest the replica holds the projection: allowed fields, transformed
        projections = dict(projections or {})
        tables = {
            topic: ReplicaTable.for_contract(
                projections[topic].contract if topic in projections else c
            )
            for topic, c in contracts.items()
        }
        # with a member lock, only the agency's active member writes to the replica
        self.replica = ReplicaSession(
            agency, replica_dsn, tables, group_id, topic_ids or {}, metrics, lock
        )
        # under a manifest, every applied record is a disclosure with a purpose and a legal
        # basis, appended to the agency's audit chain
        self.audit_dsn = audit_dsn if projections else None
        self.decoder = BatchDecoder(
            agency, contracts, projections, self.audit_dsn is not None, decode_cache
        )
        # the data subjects' restrictions, kept in the audit store, for subscriptions on
        # consent or legitimate interest
        self.restrictions = (
            RestrictionGuard(agency, self.audit_dsn, replica_dsn, projections, tables, metrics)
            if self.audit_dsn is not None
            else None
        )
        self.schemas = schemas
        self.dead_letters = dead_letters
        self.metrics = metrics
        self._audit: AuditTrail | None = None
        self._disclosed: dict[Coordinates, Disclosure] = {}  # until applied
        # source transactions applied whole (None: every event as it comes)
        self.transactions = transactions
        self._read_upto: dict[Partition, int] = {}  # next offset per partition, as read
        self._recorded: dict[Partition, int] = {}  # next offset per partition, in the replica
        self._set_state("running")
        self._export_rare_counters()

    def _set_state(self, state: str) -> None:
        for name in ("running", "stopped"):
            self.metrics.subscription_state.labels(self.agency, name).set(int(name == state))

    def _export_rare_counters(self) -> None:
        """Export at zero the counters of rare failures, so that ``increase()`` sees their
        first increment (a series born at 1 shows no increase)."""
        if self.transactions is not None:
            self.metrics.transactions_incomplete.labels(self.agency)
        if self.audit_dsn is not None:
            for outcome in ("retried", "refused"):
                self.metrics.audit_write_failures.labels(self.agency, outcome)

    def stop(self, error: SubscriptionStopped) -> None:
        """Record that the subscription cannot go on; nothing more is consumed or committed."""
        self._set_state("stopped")
        log.error("agency %s: subscription stopped: %s", self.agency, error)

    @property
    def holding(self) -> bool:
        """Events of incomplete source transactions are held back."""
        return self.transactions is not None and self.transactions.holding

    def forget(self) -> None:
        """Forget everything read and held (this worker no longer reads): the next reader
        starts at the replica's record."""
        self._read_upto.clear()
        self._recorded.clear()
        self._disclosed.clear()
        if self.transactions is not None:
            self.transactions.keep_only(())
            self._observe_held()

    def _observe_held(self) -> None:
        if self.transactions is not None:
            held = self.transactions.held_events
            self.metrics.transaction_events_held.labels(self.agency).set(held)

    async def take_over(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Partitions this worker starts to read: forget what was read of them before, and return
        the replica's recorded next offset of each, where reading them goes on. Partitions
        the replica holds no valid record of are left out."""
        wanted = set(partitions)
        recorded = await self._retrying(self.replica.recorded_offsets)
        found = {p: o for p, o in recorded.items() if p in wanted}
        for partition in wanted:
            self._read_upto.pop(partition, None)
            self._recorded.pop(partition, None)
        self._recorded.update(found)
        return found

    async def handle(
        self, messages: Sequence[RawMessage], whole: bool = True
    ) -> dict[Partition, int]:
        """Apply or dead-letter every message, except events of source transactions not yet
        complete, which are held (``whole``: this worker reads all of the agency's partitions;
        see :mod:`sync.processor.transactions`). Returns, once everything else is settled and
        recorded in the replica, the offset each partition may commit: the next to read, or
        its oldest held event."""
        self._count(messages)
        decoded = await self._retrying(lambda: self._decode(messages))
        await self._dead_letter(decoded.letters)
        self._disclosed.update(decoded.disclosures)
        ready = self._admit(decoded.deliveries, whole)
        self._observe_held()
        offsets = self._committable(messages)
        refused: set[Coordinates] = set()
        if ready:
            # audited: the offsets move only once the disclosures are in the chain too
            with_rows = {} if self.audit_dsn is not None else self._unrecorded(offsets)
            refused = await self._retrying(lambda: self._apply(ready, with_rows))
        disclosures = self._applied_disclosures(ready, refused)
        if disclosures:
            # after the replica commit, before the offsets move: a crash in between brings the
            # batch again, and the chain skips what it already holds
            await self._retrying(lambda: self._record(disclosures))
        await self._retrying(lambda: self._record_offsets(offsets))
        return offsets

    async def apply_restrictions(self) -> None:
        """Bring the withheld people up to date with the restrictions register, when due (the
        active member calls it between batches, busy or idle)."""
        if self.restrictions is not None:
            await self.restrictions.refresh()

    def _count(self, messages: Sequence[RawMessage]) -> None:
        for topic in {m.topic for m in messages}:
            self.metrics.events_consumed.labels(self.agency, topic).inc(
                sum(1 for m in messages if m.topic == topic)
            )

    def _committable(self, messages: Sequence[RawMessage]) -> dict[Partition, int]:
        """The next offset to read per partition, but never past an event held back."""
        for m in messages:
            where = (m.topic, m.partition)
            self._read_upto[where] = max(self._read_upto.get(where, 0), m.offset + 1)
        committable = dict(self._read_upto)
        if self.transactions is not None:
            for where, offset in self.transactions.held_from().items():
                committable[where] = min(committable.get(where, offset), offset)
        return committable

    def _unrecorded(self, offsets: Mapping[Partition, int]) -> dict[Partition, int]:
        return {p: o for p, o in offsets.items() if self._recorded.get(p) != o}

    def _applied_disclosures(
        self, ready: Sequence[Delivery], refused: set[Coordinates]
    ) -> list[Disclosure]:
        disclosures = []
        for delivery in ready:
            coordinates = (delivery.topic, delivery.partition, delivery.offset)
            disclosure = self._disclosed.pop(coordinates, None)
            if disclosure is not None and coordinates not in refused:
                disclosures.append(disclosure)
        return disclosures

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
        await self.replica.close()
        if self.restrictions is not None:
            await self.restrictions.close()
        if self._audit is not None:
            await self._audit.close()
            self._audit = None

    async def _decode(self, messages: Sequence[RawMessage]) -> DecodedBatch:
        await self.schemas.fetch(self.decoder.schema_ids(messages))
        decoded = self.decoder.decode(messages, self.schemas.lookup)
        for topic, filtered in decoded.filtered.items():
            self.metrics.events_filtered.labels(self.agency, topic).inc(filtered)
        return decoded

    async def _apply(
        self, deliveries: Sequence[Delivery], offsets: Mapping[Partition, int]
    ) -> set[Coordinates]:
        """Apply the batch, recording ``offsets`` with it; returns the coordinates of the
        events dead-lettered instead."""
        applier = await self.replica.applier()
        started = time.monotonic()
        refused: set[Coordinates] = set()
        try:
            self._truncated(await applier.apply(deliveries, offsets))
            self._recorded.update(offsets)
        except Exception as exc:  # noqa: BLE001 -- judged (retry, letter or stop) below
            await self.replica.raise_unless_event_error(exc)
            log.warning(
                "agency %s: batch of %d failed (%s); isolating the bad events",
                self.agency,
                len(deliveries),
                type(exc).__name__,
            )
            refused = await self._apply_one_by_one(deliveries)
        applied = [d for d in deliveries if (d.topic, d.partition, d.offset) not in refused]
        self._observe(applied, time.monotonic() - started)
        return refused

    async def _apply_one_by_one(self, deliveries: Sequence[Delivery]) -> set[Coordinates]:
        """Each event in a transaction of its own; no offset is recorded with them, as the
        letters of the refused ones are not acknowledged yet."""
        letters = []
        for delivery in deliveries:
            applier = await self.replica.applier()  # again, after a failure dropped it
            try:
                self._truncated(await applier.apply([delivery], {}))
            except Exception as exc:  # noqa: BLE001 -- judged (retry, letter or stop) below
                await self.replica.raise_unless_event_error(exc)
                where = (delivery.topic, delivery.partition, delivery.offset)
                letters.append(
                    dead_letter(
                        self.agency,
                        "unappliable",
                        exc,
                        where,
                        delivery.event.event_id,
                        stage="applying",
                    )
                )
        await self._dead_letter(letters)
        return {(letter.topic, letter.partition, letter.offset) for letter in letters}

    async def _record(self, disclosures: list[Disclosure]) -> None:
        """Append the disclosures to the agency's chain. An audit store that refuses for good
        (not initialised, a role without the grant) stops the subscription: nothing may be
        disclosed without its record."""
        started = time.monotonic()
        try:
            if self._audit is None:
                assert self.audit_dsn is not None
                self._audit = await AuditTrail.open(self.audit_dsn, self.agency)
            written = await self._audit.record(disclosures)
        except (psycopg.Error, AuditError) as exc:
            if self._audit is not None:
                await self._audit.close()
                self._audit = None
            retried = is_retryable(exc)
            outcome = "retried" if retried else "refused"
            self.metrics.audit_write_failures.labels(self.agency, outcome).inc()
            if retried:
                raise
            raise SubscriptionStopped(
                f"the disclosure audit refuses to record: {exc}; fix the audit store "
                "(govsync audit init) and restart the worker",
                agency=self.agency,
            ) from exc
        self.metrics.audit_write_seconds.labels(self.agency).observe(time.monotonic() - started)
        self.metrics.audit_entries.labels(self.agency).inc(written)
        self.metrics.audit_duplicates.labels(self.agency).inc(len(disclosures) - written)

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

    async def _dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Publish ``letters``, retried until the broker acknowledged every one."""
        if not letters:
            return
        await self._retrying(lambda: self.dead_letters.publish_async(letters))
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

    async def _record_offsets(self, offsets: Mapping[Partition, int]) -> None:
        """Record in the replica the offsets not recorded with the rows."""
        unrecorded = self._unrecorded(offsets)
        if unrecorded:
            await self.replica.record_offsets(unrecorded)
            self._recorded.update(unrecorded)

    async def activate(self) -> None:
        """Connect to the replica and bring its tables to the contracts now, rather than at
        the first batch, so an incompatible table stops the subscription at once. With a
        member lock, first wait for it, without a deadline (cancel to give up)."""
        await self._retrying(self.replica.acquire)

    async def confirm_active(self) -> None:
        """Raise :class:`~sync.processor.membership.MembershipLost` unless this worker still
        holds the agency's member lock."""
        await self.replica.confirm_held()

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
