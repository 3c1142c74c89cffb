"""``govsync dlq list`` and ``govsync dlq replay`` on a live pipeline: events the replica
refused are listed, replayed once the replica is fixed, and shown as replayed; what still
cannot be applied is shown as failed again; replaying twice changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer

from sync.config import ProcessorSettings
from sync.kafka.deadletter import (
    DeadLetter,
    DeadLetterPublisher,
    dead_letter_producer,
    dead_letter_topic,
)
from sync.processor.dlq import Coordinates, Status, read_letters
from sync.processor.replay import Outcome, replay
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

CHECK = "ALTER TABLE population.citizen ADD CONSTRAINT no_ward_99999 CHECK (ward_code <> '99999')"
REFUSED = 3


def govsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **env},
    )


def listed(env: dict[str, str], *options: str) -> list[dict[str, Any]]:
    done = govsync(env, "dlq", "list", "vss", "--json", *options)
    assert done.returncode == 0, done.stdout + done.stderr
    return list(json.loads(done.stdout))


def consumed_offsets(pipeline: Pipeline, group: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pipeline.replica_dsn) as conn:
        return conn.execute(
            "SELECT partition, next_offset FROM govsync_state.consumed_offsets "
            "WHERE group_id = %s ORDER BY partition",
            (group,),
        ).fetchall()


def test_refused_events_are_listed_replayed_once_fixed_and_replaying_twice_changes_nothing(
    pipeline_factory: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipeline_factory(citizens=100)
    pipeline.start_connector()
    env = pipeline.start_processor().spec.env
    pipeline.wait_converged()
    kafka = {"bootstrap.servers": pipeline.stack.bootstrap}
    dlq = dead_letter_topic(f"{pipeline.name}.", "vss")

    with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
        conn.execute(CHECK)  # added by hand: the replica now refuses some rows
    with pipeline.source() as conn:
        conn.execute(
            "UPDATE citizen SET ward_code = '99999' WHERE personal_id IN "
            f"(SELECT personal_id FROM citizen ORDER BY personal_id LIMIT {REFUSED})"
        )
        conn.execute("UPDATE citizen SET ward_code = '00042' WHERE ward_code <> '99999'")
    producer = Producer(kafka)
    producer.produce(pipeline.topic, key=b"not-avro", value=b"\x01", partition=0)
    producer.flush(10)
    pipeline.wait_for(
        lambda: len(read_letters(kafka, dlq)) == REFUSED + 1, "the dead letters", timeout=90
    )
    replica, source = pipeline.replica_rows(), pipeline.source_rows()
    differing = sorted(k for k in source if replica[k] != source[k])
    assert len(differing) == REFUSED, "the refused rows lag; every other change was applied"

    letters = listed(env)
    assert [x["reason"] for x in letters].count("unappliable") == REFUSED
    assert [x["reason"] for x in letters].count("decode_error") == 1
    for letter in letters:
        assert letter["status"] == "open" and letter["letters"] == 1
        assert letter["topic"] == pipeline.topic and letter["first_ts_ms"] > 0
        if letter["reason"] == "unappliable":
            assert "no_ward_99999" in letter["error"] and letter["event_id"]
    table = govsync(env, "dlq", "list", "--agency", "vss")
    assert table.returncode == 0 and "unappliable" in table.stdout and "open" in table.stdout

    dry = govsync(env, "dlq", "replay", "vss", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert {x["outcome"] for x in json.loads(dry.stdout)} == {"would replay"}
    assert pipeline.replica_rows() == replica, "a dry run changes nothing"

    with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE population.citizen DROP CONSTRAINT no_ward_99999")
    processor_offsets = consumed_offsets(pipeline, f"{pipeline.name}.govsync-replica-vss")
    done = govsync(env, "dlq", "replay", "vss", "--json")
    assert done.returncode == 1, "the undecodable event fails again: " + done.stderr
    outcomes = {x["reason"]: x["outcome"] for x in json.loads(done.stdout)}
    assert outcomes == {"unappliable": "replayed", "decode_error": "failed again"}
    assert pipeline.replica_rows() == pipeline.source_rows()
    assert consumed_offsets(pipeline, f"{pipeline.name}.govsync-replica-vss") == processor_offsets

    after = {x["reason"]: x for x in listed(env, "--all")}
    assert len(listed(env, "--all")) == REFUSED + 1, "one entry per event, not per record"
    assert after["unappliable"]["status"] == "replayed"
    assert after["decode_error"]["status"] == "failed again"
    assert after["decode_error"]["letters"] == 2
    assert [x["reason"] for x in listed(env)] == ["decode_error"], "open ones only by default"

    # the row moves on at the source; replaying the old events again must not take it back
    with pipeline.source() as conn:
        conn.execute(f"UPDATE citizen SET ward_code = '00777' WHERE personal_id = '{differing[0]}'")
    pipeline.wait_converged()
    rows = pipeline.replica_rows()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = ProcessorSettings()  # type: ignore[call-arg]  # from the environment
    replayed = [x for x in read_letters(kafka, dlq) if x.status is Status.REPLAYED]
    again = asyncio.run(replay(settings, replayed, dry_run=False, timeout=60))
    assert {r.outcome for r in again} == {Outcome.REPLAYED}
    assert pipeline.replica_rows() == rows == pipeline.source_rows()
    second = govsync(env, "dlq", "replay", "vss", "--reason", "unappliable")
    assert second.returncode == 0 and "no unresolved dead letters" in second.stdout


def test_a_letter_whose_original_is_gone_is_reported_as_gone(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=20)
    pipeline.start_connector()
    env = pipeline.start_processor().spec.env
    pipeline.wait_converged()
    topic = dead_letter_topic(f"{pipeline.name}.", "vss")
    producer = dead_letter_producer({"bootstrap.servers": pipeline.stack.bootstrap})
    publisher = DeadLetterPublisher(producer, topic)
    lost = DeadLetter(
        "unappliable",
        "CheckViolation: x",
        pipeline.topic,
        agency="vss",
        partition=1,
        offset=1_000_000,
    )
    publisher.publish([lost])  # as if the topic had been emptied since
    publisher.close()

    place = f"{pipeline.topic}/1/1000000"
    done = govsync(env, "dlq", "replay", "vss", "--offset", place)
    assert done.returncode == 1 and "1 original gone" in done.stdout, done.stderr
    [result] = json.loads(govsync(env, "dlq", "replay", "vss", "--json").stdout)
    assert result["outcome"] == "original gone"
    assert result["detail"].startswith(f"{pipeline.topic}/1 ends at offset ")
    [letter] = listed(env)
    assert letter["status"] == "open"
    assert Coordinates.parse(f"{pipeline.topic}/1/1000000") == Coordinates(
        pipeline.topic, 1, 1_000_000
    )
    unknown = govsync(env, "dlq", "replay", "vss", "--offset", f"{pipeline.topic}/0/5")
    assert unknown.returncode == 1 and "no dead letter for" in unknown.stderr
