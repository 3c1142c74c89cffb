"""The PostgreSQL CDC connector: snapshot each captured table once, then stream its changes.

The loop's one rule: the slot advances to a commit's end only after the broker acknowledged
every event before it (``publish`` raises otherwise, and the same changes are read again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

import psycopg

from connectors.postgres.changes import ChangeDecoder, DecodedBatch
from connectors.postgres.delivery import Publisher
from connectors.postgres.evolution import SchemaWatch
from connectors.postgres.slot import SlotReader
from connectors.postgres.snapshot import (
    WATERMARK_KEY,
    WATERMARK_TABLE,
    Chunk,
    ChunkReader,
    SnapshotState,
    estimated_rows,
    window,
)
from connectors.postgres.toast import fill_unchanged
from sync.config import ConnectorSettings
from sync.contracts import Contract, load_contracts
from sync.errors import ConfigError, SourceNotReady, is_retryable
from sync.kafka import ensure_topics
from sync.kafka.deadletter import dead_letter_topic_config
from sync.metrics import ConnectorMetrics
from sync.types import ChangeEvent, TableRef

log = logging.getLogger(__name__)

# seconds between running-transactions records the connector asks for while changes flow,
# so that the slot's restart_lsn follows (see SlotReader.offer_restart_point)
RESTART_POINT_INTERVAL = 0.1


def contracts_for(settings: ConnectorSettings) -> dict[TableRef, Contract]:
    """The contracts this connector captures, by source table."""
    chosen = {}
    for contract in load_contracts(settings.schemas_dir).values():
        if contract.row_schema.get("govsync.source", contract.domain) != settings.source:
            continue
        if settings.tables and contract.entity not in settings.tables:
            continue
        chosen[TableRef("public", contract.source_table)] = contract
    if not chosen:
        raise ConfigError(f"no contract in schemas/avro is published by source {settings.source!r}")
    return chosen


class Connector:
    def __init__(self, settings: ConnectorSettings, metrics: ConnectorMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.contracts = contracts_for(settings)
        self.stopping = threading.Event()

    STATES = ("starting", "running", "not_ready")

    def run(self) -> None:
        """Run until :attr:`stopping` is set. Transient failures are retried with backoff; a
        source that does not meet a precondition raises :class:`SourceNotReady`."""
        backoff = 0.5
        self._set_state("starting")
        while not self.stopping.is_set():
            try:
                self._run_once()
            except SourceNotReady as exc:
                self._set_state("not_ready")
                self.metrics.precondition_failures.labels(self.settings.source, exc.check).inc()
                raise
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                log.warning(
                    "connector %s: %s; retrying in %.1f s", self.settings.source, exc, backoff
                )
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 30)

    def _set_state(self, state: str) -> None:
        for name in self.STATES:
            self.metrics.state.labels(self.settings.source, name).set(int(name == state))

    def _run_once(self) -> None:
        s = self.settings
        with SlotReader(s.source_dsn, s.slot_name, s.publication, s.source) as reader:
            reader.check_preconditions()
            reader.check_tables({t: c.key_fields for t, c in self.contracts.items()})
            with self._publisher() as publisher:
                ensure_topics(s.client_config(), publisher.topics(), s.partitions)
                retention = dead_letter_topic_config(s.dead_letter_retention_months)
                ensure_topics(s.client_config(), [publisher.dead_letter_topic], 1, config=retention)
                snapshots = Snapshots(s, self.contracts, self.metrics)
                try:
                    reader.ensure_publication([(t.schema, t.name) for t in self.contracts])
                    reader.ensure_watermark_publication(
                        (WATERMARK_TABLE.schema, WATERMARK_TABLE.name)
                    )
                    reader.ensure_slot()
                    self._recover_invalidated_slot(reader, snapshots)
                    watch = SchemaWatch(
                        s.source,
                        s.slot_name,
                        self.contracts,
                        publisher,
                        self.metrics,
                        snapshots.reader.connection,
                    )
                    watch.start(snapshots.request_again)
                    snapshots.stopped = watch.stopped
                    self._stream(reader, publisher, snapshots, watch)
                finally:
                    snapshots.close()

    def _publisher(self) -> Publisher:
        s = self.settings
        dbname = psycopg.conninfo.conninfo_to_dict(s.source_dsn).get("dbname", "")
        return Publisher(
            s.client_config(),
            s.registry_config(),
            self.contracts,
            source=s.source,
            source_db=str(dbname),
            topic_prefix=s.topic_prefix,
            metrics=self.metrics,
            max_message_bytes=s.max_message_bytes,
        )

    def _stream(
        self, reader: SlotReader, publisher: Publisher, snapshots: Snapshots, watch: SchemaWatch
    ) -> None:
        keys = {t: c.key_fields for t, c in self.contracts.items()}
        decoder = ChangeDecoder(self.settings.source, {**keys, WATERMARK_TABLE: WATERMARK_KEY})
        source = self.settings.source
        released = reader.confirmed()
        last_lag_check = restart_offered = 0.0
        first_wait = min(self.settings.poll_interval, self.settings.max_idle_wait)
        idle_wait = first_wait
        self._set_state("running")
        while not self.stopping.is_set():
            snapshots.open_chunk_if_due()
            peeked = reader.peek(self.settings.max_changes)
            batch = decoder.decode(peeked.messages)
            watch.on_relations(batch.relations)
            changes = fill_unchanged(snapshots.reader.connection, batch.events, keys)
            events = watch.keep(snapshots.window(changes))  # recorded before the slot moves
            if events:
                publisher.publish(events)
                self._observe_delivery(batch)
            snapshots.after_publish()
            target = max((p for p in (batch.end_lsn, peeked.complete_upto) if p), default=None)
            if target is not None and target > released:
                reader.advance(target)  # everything before it is acknowledged or not ours
                released = target
                self.metrics.acknowledged_lsn.labels(source).set(int(target))
                if not events:
                    self.metrics.last_heartbeat_timestamp.labels(source).set(time.time())
                elif time.monotonic() - restart_offered > RESTART_POINT_INTERVAL:
                    # only after changes of ours: the record is WAL too, and offered on every
                    # heartbeat it would keep an idle source writing
                    reader.offer_restart_point()
                    restart_offered = time.monotonic()
            if time.monotonic() - last_lag_check > 1.0:
                self.metrics.slot_lag_bytes.labels(source).set(reader.lag_bytes())
                last_lag_check = time.monotonic()
            if peeked.messages or snapshots.busy:
                idle_wait = first_wait
                continue
            # nothing committed: poll less often the longer the source stays idle
            self.stopping.wait(idle_wait)
            idle_wait = min(idle_wait * 2, self.settings.max_idle_wait)
            self.metrics.behind_source_seconds.labels(source).set(0)

    def _observe_delivery(self, batch: DecodedBatch) -> None:
        source = self.settings.source
        if not batch.events:
            return
        newest = batch.events[-1].commit_time.timestamp()
        self.metrics.behind_source_seconds.labels(source).set(max(0.0, time.time() - newest))
        for table, count in batch.captured.items():
            if table != str(WATERMARK_TABLE):  # snapshot bookkeeping, not a change
                self.metrics.changes_captured.labels(source, table).inc(count)

    def _recover_invalidated_slot(self, reader: SlotReader, snapshots: Snapshots) -> None:
        """PostgreSQL drops the WAL of a slot that exceeded max_slot_wal_keep_size: the
        changes in between are gone. Say so loudly, then start over with a new slot and a new
        snapshot of every table. Rows deleted in the lost window stay in replicas until
        ``govsync verify`` finds them."""
        reason = reader.invalidation()
        if reason is None:
            return
        source = self.settings.source
        log.error(
            "replication slot %s of source %s was invalidated (%s): changes since %s are lost "
            "from the WAL; dropping the slot and snapshotting every table again",
            reader.slot,
            source,
            reason,
            reader.confirmed(),
        )
        self.metrics.slot_invalidations.labels(source).inc()
        reader.drop_slot()
        reader.ensure_slot()
        snapshots.request_again(list(self.contracts))


class Snapshots:
    """The connector's snapshots: one chunk at a time between watermarks, interleaved with
    the stream (see :mod:`connectors.postgres.snapshot`)."""

    RECHECK_SECONDS = 1.0  # how often an idle connector looks for new snapshot requests

    def __init__(
        self,
        settings: ConnectorSettings,
        contracts: dict[TableRef, Contract],
        metrics: ConnectorMetrics,
    ) -> None:
        self.settings, self.contracts, self.metrics = settings, contracts, metrics
        self.state = SnapshotState(settings.source_dsn, settings.slot_name)
        self.state.request(list(contracts))  # tables never snapshotted
        self.reader = ChunkReader(settings.source_dsn, settings.slot_name, settings.snapshot_chunk)
        self.chunk: Chunk | None = None
        self.stopped: Mapping[TableRef, object] = {}  # tables whose capture is stopped
        self._checked_at = 0.0

    @property
    def busy(self) -> bool:
        return self.chunk is not None

    def request_again(self, tables: list[TableRef]) -> None:
        self.chunk = None
        self.state.request(tables, again=True)

    def open_chunk_if_due(self) -> None:
        if self.chunk is not None or time.monotonic() - self._checked_at < self.RECHECK_SECONDS:
            return
        stopped = {str(t) for t in self.stopped}
        pending = [p for p in self.state.pending() if p[0] not in stopped]
        if not pending:
            self._checked_at = time.monotonic()
            return
        name, last_key, rows_read = pending[0]
        table = next((t for t in self.contracts if str(t) == name), None)
        if table is None:
            return
        if last_key is None and rows_read == 0:
            log.info("snapshot of %s starts", table)
            self.metrics.snapshot_table_rows.labels(self.settings.source, name).set(
                estimated_rows(self.settings.source_dsn, table)
            )
        self.chunk = self.reader.open(table, self.contracts[table].key_fields, last_key)

    def window(self, events: list[ChangeEvent]) -> list[ChangeEvent]:
        return window(events, self.chunk, self.settings.source, self.settings.slot_name)

    def after_publish(self) -> None:
        """Record a closed chunk once its reads are acknowledged (the caller published them)."""
        chunk = self.chunk
        if chunk is None or not chunk.closed:
            return
        self.state.chunk_done(chunk)
        self.metrics.snapshot_rows.labels(self.settings.source, str(chunk.table)).inc(chunk.emitted)
        if chunk.final:
            log.info("snapshot of %s done", chunk.table)
            self.reader.cleanup()
        self.chunk = None
        self._checked_at = 0.0  # the next chunk right away

    def close(self) -> None:
        self.reader.close()
