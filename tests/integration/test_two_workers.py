"""Two processor workers host one agency: one is its active member and applies, the other
stands by. When the active one dies, or loses its replica session while it lives on, in the
middle of a stream of transactions over two tables, the standby takes over within seconds; no
reader of the replica ever sees part of a source transaction, and nothing is lost."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import psycopg
import pytest

from sync.contracts import load_contracts
from sync.stack.demo import source_table_ddl
from sync.stack.description import StackDescription
from sync.stack.specs import processor_spec
from sync.stack.status import scrape, stack_health
from sync.stack.supervisor import Managed
from tests.fixtures.pipeline import Pipeline
from tests.fixtures.replica_watch import ReplicaWatcher

pytestmark = pytest.mark.integration

TOPICS = ["population.citizen", "population.household"]
TRANSACTIONS, ROWS_EACH = 40, 10
TAKEOVER_LIMIT = 30.0  # seconds from the failure until the standby applies


def start_member(pipeline: Pipeline, name: str) -> Managed:
    spec = processor_spec(
        pipeline.kafka,
        "vss",
        pipeline.replica_dsn,
        TOPICS,
        pipeline.logs,
        pipeline.logs / f"state-{name}",
        name=name,
    )
    spec.env["GOVSYNC_BATCH_SIZE"] = "4"  # far smaller than a transaction: it spans batches
    return pipeline.supervisor.start(spec)


def samples(member: Managed, name: str) -> dict[str, float]:
    """The member's samples of metric ``name`` for agency vss, by label value other than
    the agency ('' when there is none)."""
    assert member.spec.metrics_url is not None
    found = scrape(member.spec.metrics_url, timeout=1.0).get(name, [])
    return {
        next((v for k, v in labels.items() if k != "agency"), ""): value
        for labels, value in found
        if labels.get("agency") == "vss"
    }


def role(member: Managed) -> str:
    try:
        roles = samples(member, "govsync_processor_member_role")
    except OSError:
        return "unreachable"
    return next((name for name, value in roles.items() if value), "none")


def held(member: Managed) -> float:
    return samples(member, "govsync_processor_transaction_events_held").get("", 0.0)


def write_transactions(pipeline: Pipeline) -> None:
    """Each transaction moves its citizens to its own ward and registers their households:
    events on every partition of both topics."""
    ids = sorted(pipeline.source_rows())
    with pipeline.source() as conn:
        for n in range(TRANSACTIONS):
            ward = f"tx{n:03d}"
            chosen = ids[n * ROWS_EACH : (n + 1) * ROWS_EACH]
            with conn.transaction():
                for personal_id in chosen:
                    conn.execute(
                        "UPDATE citizen SET ward_code = %s WHERE personal_id = %s",
                        (ward, personal_id),
                    )
                    conn.execute(
                        "INSERT INTO household VALUES (%s, %s, %s, 'chủ hộ', 'Hà Nội', "
                        "'01', '001', %s, '2026-01-01', now())",
                        (f"HH{n:03d}", personal_id, chosen[0], ward),
                    )


def complete(watcher: ReplicaWatcher) -> int:
    """Transactions whole in the watcher's latest look."""
    seen = watcher.seen[-1] if watcher.seen else Counter()
    return sum(1 for label, n in seen.items() if label[0] == "c" and n == ROWS_EACH)


def partial_views(watcher: ReplicaWatcher) -> list[tuple[str, int, int]]:
    return [
        (label[1:], seen[f"c{label[1:]}"], seen[f"h{label[1:]}"])
        for seen in watcher.seen
        for label in seen
        if (seen[f"c{label[1:]}"], seen[f"h{label[1:]}"]) != (ROWS_EACH, ROWS_EACH)
    ]


def two_members(
    pipeline_factory: Callable[..., Pipeline],
) -> tuple[Pipeline, Managed, Managed]:
    """A pipeline of both tables with two workers for agency vss, converged; returns the
    active member and the standby."""
    pipeline = pipeline_factory(citizens=TRANSACTIONS * ROWS_EACH)
    with pipeline.source() as conn:
        conn.execute(source_table_ddl(load_contracts()["population.household"]))
    pipeline.start_connector(tables='["citizen", "household"]')
    members = [start_member(pipeline, f"processor-vss-{n}") for n in ("a", "b")]
    pipeline.wait_converged()
    pipeline.wait_for(
        lambda: sorted(map(role, members)) == ["active", "standby"],
        "one worker to be active and the other to stand by",
    )
    active, standby = sorted(members, key=lambda m: role(m) != "active")
    return pipeline, active, standby


def fail_over_mid_stream(
    pipeline: Pipeline, active: Managed, standby: Managed, fail: Callable[[], None]
) -> float:
    """Write the transactions, ``fail`` the active member while it holds part of one, and
    wait until every transaction is in the replica; returns how long the standby took to
    apply again. Asserts that no look at the replica ever saw part of a transaction."""
    watcher = ReplicaWatcher(pipeline.replica_dsn, ("citizen", "household"))
    watcher.start()
    try:
        write_transactions(pipeline)
        pipeline.wait_for(
            lambda: complete(watcher) >= 3 and held(active) > 0,
            "the active member to hold part of a transaction, some applied before it",
        )
        failed_at = time.monotonic()
        fail()
        before = complete(watcher)
        pipeline.wait_for(
            lambda: role(standby) == "active" and complete(watcher) > before,
            "the standby to take over and apply",
            TAKEOVER_LIMIT,
        )
        takeover = time.monotonic() - failed_at
        every = Counter({f"{k}tx{n:03d}": ROWS_EACH for n in range(TRANSACTIONS) for k in "ch"})
        pipeline.wait_for(
            lambda: bool(watcher.seen) and watcher.seen[-1] == every,
            "every transaction to reach both replica tables",
            120,
        )
    finally:
        watcher.stop.set()
        watcher.join(10)
    partial = partial_views(watcher)
    assert not partial, f"a reader saw part of a transaction: {partial[:5]}"
    assert len(watcher.seen) >= 10, "the watcher looked while the transactions arrived"
    pipeline.wait_converged()
    return takeover


def test_a_killed_active_member_is_replaced_by_the_standby(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline, active, standby = two_members(pipeline_factory)
    takeover = fail_over_mid_stream(
        pipeline, active, standby, lambda: pipeline.kill(active.spec.name)
    )
    print(f"standby applying {takeover:.1f} s after SIGKILL of the active member")
    pipeline.wait_for(lambda: role(active) == "standby", "the restarted worker to stand by")
    assert active.restarts == 1


def test_an_active_member_that_loses_its_replica_session_stands_by(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline, active, standby = two_members(pipeline_factory)

    def cut_lock_session() -> None:
        with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
            [(terminated,)] = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchall()
            assert terminated

    takeover = fail_over_mid_stream(pipeline, active, standby, cut_lock_session)
    print(f"standby applying {takeover:.1f} s after the active member's session was cut")
    pipeline.wait_for(lambda: role(active) == "standby", "the former active member to stand by")
    assert active.restarts == 0 and standby.restarts == 0, "a worker restarted"
    report = stack_health(StackDescription.read(pipeline.describe()))
    members = {h.name: h.members for h in report if h.role == "processor"}
    assert members == {active.spec.name: {"vss": "standby"}, standby.spec.name: {"vss": "active"}}
    assert not [p for h in report for p in h.problems if "no active member" in p]
