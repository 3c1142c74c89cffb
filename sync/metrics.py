"""Every govsync metric, built in one place on an injected registry so tests use a fresh one.

Names follow Prometheus conventions: ``govsync_`` prefix, ``_total`` counters, base units in
the name. Labels are bounded sets (source, topic, agency) and never carry a citizen's data.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 500, 1_000, 2_000, 5_000, 10_000, 50_000)
SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class ConnectorMetrics:
    changes_captured: Counter
    events_produced: Counter
    produce_errors: Counter
    slot_lag_bytes: Gauge
    snapshot_rows: Counter
    snapshot_table_rows: Gauge
    behind_source_seconds: Gauge
    acknowledged_lsn: Gauge
    last_heartbeat_timestamp: Gauge
    slot_invalidations: Counter
    state: Gauge
    precondition_failures: Counter
    events_dead_lettered: Counter
    schema_changes: Counter
    table_stopped: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "govsync") -> ConnectorMetrics:
        labels = ("source",)
        return cls(
            state=Gauge(
                f"{prefix}_connector_state",
                "1 for the connector's current state (starting, running, not_ready), else 0",
                ("source", "state"),
                registry=registry,
            ),
            precondition_failures=Counter(
                f"{prefix}_connector_precondition_failures_total",
                "Starts refused because the source does not meet a capture precondition",
                ("source", "check"),
                registry=registry,
            ),
            events_dead_lettered=Counter(
                f"{prefix}_connector_events_dead_lettered_total",
                "Changes the broker cannot take, recorded on the connector's dead-letter topic",
                ("source", "table", "reason"),
                registry=registry,
            ),
            schema_changes=Counter(
                f"{prefix}_connector_schema_changes_total",
                "Source table changes seen in relation messages, by outcome (evolved, stopped)",
                ("source", "table", "outcome"),
                registry=registry,
            ),
            table_stopped=Gauge(
                f"{prefix}_connector_table_stopped",
                "1 while a table's capture is stopped by an incompatible source schema change",
                ("source", "table"),
                registry=registry,
            ),
            changes_captured=Counter(
                f"{prefix}_connector_changes_captured_total",
                "Row changes read from the source's replication slot",
                ("source", "table"),
                registry=registry,
            ),
            events_produced=Counter(
                f"{prefix}_connector_events_produced_total",
                "Events acknowledged by the broker",
                ("source", "topic"),
                registry=registry,
            ),
            produce_errors=Counter(
                f"{prefix}_connector_produce_errors_total",
                "Events the broker did not acknowledge (they are sent again)",
                labels,
                registry=registry,
            ),
            slot_lag_bytes=Gauge(
                f"{prefix}_connector_slot_lag_bytes",
                "WAL bytes between the source's current position and the slot's confirmed one",
                labels,
                registry=registry,
            ),
            snapshot_rows=Counter(
                f"{prefix}_connector_snapshot_rows_total",
                "Rows read by snapshots",
                ("source", "table"),
                registry=registry,
            ),
            snapshot_table_rows=Gauge(
                f"{prefix}_connector_snapshot_table_rows",
                "Rows the running or last snapshot of the table had to read (estimate)",
                ("source", "table"),
                registry=registry,
            ),
            behind_source_seconds=Gauge(
                f"{prefix}_connector_behind_source_seconds",
                "Time from the source commit of the newest delivered change to its delivery",
                labels,
                registry=registry,
            ),
            acknowledged_lsn=Gauge(
                f"{prefix}_connector_acknowledged_lsn",
                "Source position up to which every change is acknowledged by the broker",
                labels,
                registry=registry,
            ),
            last_heartbeat_timestamp=Gauge(
                f"{prefix}_connector_last_heartbeat_timestamp_seconds",
                "When the slot last advanced with no change of ours to deliver",
                labels,
                registry=registry,
            ),
            slot_invalidations=Counter(
                f"{prefix}_connector_slot_invalidations_total",
                "Replication slots found invalidated by PostgreSQL (recovered by re-snapshot)",
                labels,
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class ProcessorMetrics:
    events_consumed: Counter
    events_applied: Counter
    events_dead_lettered: Counter
    apply_retries: Counter
    batch_size: Histogram
    batch_seconds: Histogram
    end_to_end_seconds: Histogram
    freshness_timestamp: Gauge
    consumer_lag: Gauge
    subscription_state: Gauge
    events_filtered: Counter
    transactions_incomplete: Counter
    truncates_applied: Counter
    audit_entries: Counter
    audit_duplicates: Counter
    audit_write_seconds: Histogram
    audit_write_failures: Counter
    replica_columns_added: Counter
    member_role: Gauge
    member_activations: Counter
    transaction_events_held: Gauge
    restricted_rows_removed: Counter
    decode_cache_lookups: Counter
    restrictions_in_force: Gauge
    restriction_refresh_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "govsync") -> ProcessorMetrics:
        labels = ("agency", "topic")
        return cls(
            decode_cache_lookups=Counter(
                f"{prefix}_processor_decode_cache_lookups_total",
                "Messages a worker hosting several agencies looked up in its shared decode "
                "cache: hit (another agency had decoded it) or miss (decoded now)",
                ("result",),
                registry=registry,
            ),
            restricted_rows_removed=Counter(
                f"{prefix}_processor_restricted_rows_removed_total",
                "Replica rows removed because the person they name objected or withdrew "
                "consent (restrictions register)",
                labels,
                registry=registry,
            ),
            restrictions_in_force=Gauge(
                f"{prefix}_processor_restrictions_in_force",
                "People whose rows the agency's consent or legitimate-interest subscriptions "
                "withhold, as last read from the restrictions register",
                ("agency",),
                registry=registry,
            ),
            restriction_refresh_failures=Counter(
                f"{prefix}_processor_restriction_refresh_failures_total",
                "Reads of the restrictions register, or removals from the replica, that failed "
                "and are tried again",
                ("agency",),
                registry=registry,
            ),
            member_role=Gauge(
                f"{prefix}_processor_member_role",
                "1 for this worker's role in the agency's group, else 0: active (holds the "
                "replica's member lock, consumes and applies) or standby (waits for the lock)",
                ("agency", "role"),
                registry=registry,
            ),
            member_activations=Counter(
                f"{prefix}_processor_member_activations_total",
                "Times this worker took the agency's member lock and became its active member",
                ("agency",),
                registry=registry,
            ),
            transaction_events_held=Gauge(
                f"{prefix}_processor_transaction_events_held",
                "Events of source transactions not yet complete, held back from the replica",
                ("agency",),
                registry=registry,
            ),
            consumer_lag=Gauge(
                f"{prefix}_processor_consumer_lag",
                "Messages on the partition not yet applied by the agency's group",
                ("agency", "topic", "partition"),
                registry=registry,
            ),
            events_filtered=Counter(
                f"{prefix}_processor_events_filtered_out_total",
                "Events the subscription's row filter kept from the agency",
                labels,
                registry=registry,
            ),
            truncates_applied=Counter(
                f"{prefix}_processor_truncates_applied_total",
                "Source truncates that emptied the agency's replica table (one per truncate, "
                "not per partition copy)",
                labels,
                registry=registry,
            ),
            subscription_state=Gauge(
                f"{prefix}_processor_subscription_state",
                "1 for the subscription's current state (running or stopped), else 0",
                ("agency", "state"),
                registry=registry,
            ),
            events_consumed=Counter(
                f"{prefix}_processor_events_consumed_total",
                "Events read from topics",
                labels,
                registry=registry,
            ),
            events_applied=Counter(
                f"{prefix}_processor_events_applied_total",
                "Events applied to the replica (including version-guarded no-ops)",
                labels,
                registry=registry,
            ),
            events_dead_lettered=Counter(
                f"{prefix}_processor_events_dead_lettered_total",
                "Events sent to the agency's dead-letter topic",
                ("agency", "topic", "reason"),
                registry=registry,
            ),
            apply_retries=Counter(
                f"{prefix}_processor_apply_retries_total",
                "Batches retried after a transient error (replica or registry unavailable)",
                ("agency",),
                registry=registry,
            ),
            batch_size=Histogram(
                f"{prefix}_processor_apply_batch_size",
                "Events per applied batch",
                ("agency",),
                buckets=BATCH_SIZE_BUCKETS,
                registry=registry,
            ),
            batch_seconds=Histogram(
                f"{prefix}_processor_apply_batch_duration_seconds",
                "Time to apply one batch, commit included",
                ("agency",),
                buckets=SECONDS_BUCKETS,
                registry=registry,
            ),
            end_to_end_seconds=Histogram(
                f"{prefix}_processor_end_to_end_latency_seconds",
                "From source commit to replica commit",
                ("agency",),
                buckets=SECONDS_BUCKETS,
                registry=registry,
            ),
            freshness_timestamp=Gauge(
                f"{prefix}_processor_newest_applied_commit_timestamp_seconds",
                "Source commit time of the newest change applied to the replica",
                labels,
                registry=registry,
            ),
            transactions_incomplete=Counter(
                f"{prefix}_processor_transactions_incomplete_total",
                "Source transactions applied as far as they arrived after waiting for the rest",
                ("agency",),
                registry=registry,
            ),
            audit_entries=Counter(
                f"{prefix}_processor_audit_entries_total",
                "Disclosures appended to the agency's audit chain",
                ("agency",),
                registry=registry,
            ),
            audit_duplicates=Counter(
                f"{prefix}_processor_audit_duplicates_total",
                "Disclosures already in the audit chain (events seen again after a restart)",
                ("agency",),
                registry=registry,
            ),
            replica_columns_added=Counter(
                f"{prefix}_processor_replica_columns_added_total",
                "Columns added to the agency's replica tables because their contract gained them",
                labels,
                registry=registry,
            ),
            audit_write_seconds=Histogram(
                f"{prefix}_processor_audit_write_duration_seconds",
                "Time to append one batch of disclosures to the audit chain, commit included",
                ("agency",),
                buckets=SECONDS_BUCKETS,
                registry=registry,
            ),
            audit_write_failures=Counter(
                f"{prefix}_processor_audit_write_failures_total",
                "Batches of disclosures the audit store did not take, by outcome: retried "
                "(unreachable; the batch waits) or refused (for good; the subscription stops)",
                ("agency", "outcome"),
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class VerifyMetrics:
    """The outcome of one ``govsync verify`` run, pushed to a Pushgateway: the run is a
    short-lived job that no scrape would catch."""

    tables_unequal: Gauge
    rows_differing: Gauge
    last_run_timestamp: Gauge
    last_success_timestamp: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "govsync") -> VerifyMetrics:
        return cls(
            tables_unequal=Gauge(
                f"{prefix}_verify_tables_unequal",
                "Replica tables that differ from the projection of their source",
                ("agency",),
                registry=registry,
            ),
            rows_differing=Gauge(
                f"{prefix}_verify_rows_differing",
                "Rows missing from, extra in or different in the replica table",
                ("agency", "topic"),
                registry=registry,
            ),
            last_run_timestamp=Gauge(
                f"{prefix}_verify_last_run_timestamp_seconds",
                "When the last verify run ended, compared or not",
                registry=registry,
            ),
            last_success_timestamp=Gauge(
                f"{prefix}_verify_last_success_timestamp_seconds",
                "When a verify run last compared every replica with its source, equal or not",
                registry=registry,
            ),
        )
