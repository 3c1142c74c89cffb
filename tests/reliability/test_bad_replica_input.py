"""Bad input on the processor's side (issue #8), continuing the table of test_bad_input.py:
values the replica cannot hold, a replica column dropped by hand, and a registry that is down.
Each gets a clear error and a metric; events get a dead letter; nothing else is lost or
blocked. Prints: input | what the user saw | metric | dead letter | lost."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from sync.contracts import Contract, EventCodec, envelope_schema, load_contracts
from sync.kafka import group_lag
from sync.kafka.deadletter import dead_letter_topic
from sync.processor.dlq import Letter, read_letters
from sync.stack.providers import StackProvider
from sync.stack.specs import registry_spec
from sync.stack.status import scrape
from sync.stack.supervisor import ProcessSpec, Supervisor
from sync.temporal import INT32_MAX, FarDate
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef
from tests.fixtures.pipeline import TOPIC, Pipeline

pytestmark = pytest.mark.integration

LAND = "land.land_parcel"
NEWER = Lsn(0xFFFF_0000_0000)  # newer than anything the test's source has written


def value(url: str, name: str, **labels: str) -> float:
    return sum(v for lab, v in scrape(url).get(name, []) if labels.items() <= lab.items())


def citizen_images(pipeline: Pipeline) -> Iterator[dict[str, Any]]:
    """Source rows of distinct citizens, as dicts to change."""
    for values in sorted(pipeline.source_rows().values()):
        yield dict(zip(pipeline.contract.field_names, values, strict=True))


def change(
    op: Op, table: TableRef, key: dict[str, Any], after: dict[str, Any], index: int
) -> ChangeEvent:
    position = Position(NEWER, index)
    return ChangeEvent(
        op=op,
        table=table,
        key=key,
        before=None,
        after=after,
        position=position,
        txid=1,
        commit_time=datetime.now(UTC),
        event_id=ChangeEvent.make_event_id(table.name, position),
        source=table.name,
    )


def register(registry_url: str, topic: str, contract: Contract) -> tuple[int, int]:
    client = SchemaRegistryClient({"url": registry_url})
    key = client.register_schema(f"{topic}-key", Schema(json.dumps(contract.key_schema), "AVRO"))
    body = Schema(json.dumps(envelope_schema(contract)), "AVRO")
    return key, client.register_schema(f"{topic}-value", body)


def with_precision(contract: Contract, field: str, precision: int) -> Contract:
    """The contract as a producer that does not check decimal precision writes it: the bytes
    are laid out the same, any precision fits."""
    schema = copy.deepcopy(contract.row_schema)
    for f in schema["fields"]:
        if f["name"] == field:
            f["type"]["precision"] = precision
    return replace(contract, row_schema=schema)


def parcel(parcel_id: str, area: Decimal) -> dict[str, Any]:
    return {
        "parcel_id": parcel_id,
        "map_sheet_number": 1,
        "parcel_number": int(parcel_id[-3:]),
        "province_code": "01",
        "district_code": "001",
        "ward_code": "00001",
        "address_line": None,
        "area_m2": area,
        "land_use_purpose": "ODT",
        "updated_at": datetime(2024, 1, 1, tzinfo=UTC),
    }


def letters_of(pipeline: Pipeline) -> list[Letter]:
    kafka = {"bootstrap.servers": pipeline.stack.bootstrap}
    return read_letters(kafka, dead_letter_topic(f"{pipeline.name}.", "vss"))


def print_table(rows: list[tuple[str, str, str, str, int]]) -> None:
    print("\ninput | what the user saw | metric | dead letter | lost")
    for name, seen, metric, letter, lost in rows:
        print(f"{name} | {seen} | {metric} | {letter} | {lost}")


def test_values_the_replica_cannot_hold_are_dead_lettered_and_the_rest_applies(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=30)
    pipeline.start_connector()
    topics = json.dumps([TOPIC, LAND])
    metrics_url = pipeline.start_processor(topics=topics).spec.metrics_url
    assert metrics_url is not None
    pipeline.wait_converged()
    citizen, land = pipeline.contract, load_contracts()[LAND]
    land_topic = f"{pipeline.name}.{LAND}"
    citizen_ids = register(pipeline.stack.registry_url, pipeline.topic, citizen)
    land_ids = register(pipeline.stack.registry_url, land_topic, land)

    people, images = TableRef("public", "citizen"), citizen_images(pipeline)
    bad_citizens = {
        "NUL byte in a text value": {**next(images), "full_name": "Nguyễn\x00Văn An"},
        # Avro's dates reach beyond PostgreSQL's (5874897 AD): the server refuses it, quoting it
        "date of birth past PostgreSQL's range": {
            **next(images),
            "date_of_birth": FarDate(INT32_MAX - 1),
        },
    }
    good = [{**next(images), "ward_code": "00301"}, {**next(images), "ward_code": "00302"}]
    producer = Producer({"bootstrap.servers": pipeline.stack.bootstrap})
    codec = EventCodec(citizen)
    for index, image in enumerate([good[0], *bad_citizens.values(), good[1]]):
        event = change(Op.UPDATE, people, {"personal_id": image["personal_id"]}, image, index)
        key, body = codec.encode(event, *citizen_ids)
        producer.produce(pipeline.topic, key=key, value=body, partition=0)
    loose = EventCodec(with_precision(land, "area_m2", 30))
    parcels = [
        parcel("00001-001-00001", Decimal("123.45")),
        parcel("00001-001-00002", Decimal("1234567890123456.78")),  # numeric(14,2) holds 12
        parcel("00001-001-00003", Decimal("6789.01")),
    ]
    for index, image in enumerate(parcels):
        where = TableRef("public", "land_parcel")
        event = change(Op.CREATE, where, {"parcel_id": image["parcel_id"]}, image, index)
        key, body = loose.encode(event, *land_ids)
        producer.produce(land_topic, key=key, value=body, partition=0)
    producer.flush(10)

    pipeline.wait_for(lambda: len(letters_of(pipeline)) == 3, "three dead letters", timeout=90)
    with psycopg.connect(pipeline.replica_dsn) as conn:
        wards = dict(
            conn.execute(
                "SELECT personal_id, ward_code FROM population.citizen WHERE personal_id = ANY(%s)",
                ([g["personal_id"] for g in good],),
            ).fetchall()
        )
        areas = dict(conn.execute("SELECT parcel_id, area_m2 FROM land.land_parcel").fetchall())
    assert wards == {good[0]["personal_id"]: "00301", good[1]["personal_id"]: "00302"}
    assert areas == {"00001-001-00001": Decimal("123.45"), "00001-001-00003": Decimal("6789.01")}
    for name, image in bad_citizens.items():  # the bad rows are left as they were
        assert (
            pipeline.replica_rows()[image["personal_id"]]
            == pipeline.source_rows()[image["personal_id"]]
        ), name

    by_offset = {(x.original.topic, x.original.offset): x for x in letters_of(pipeline)}
    first = min(o for t, o in by_offset if t == pipeline.topic)  # produced in this order
    offsets = {name: first + i for i, name in enumerate(bad_citizens)}
    land_letter = by_offset[(land_topic, min(o for t, o in by_offset if t == land_topic))]
    nul = by_offset[(pipeline.topic, offsets["NUL byte in a text value"])]
    assert nul.reason == "unappliable" and "NUL" in nul.error
    assert land_letter.reason == "unappliable" and "numeric field overflow" in land_letter.error
    far = by_offset[(pipeline.topic, offsets["date of birth past PostgreSQL's range"])]
    assert (far.reason, far.error) == ("unappliable", "DatetimeFieldOverflow: date out of range")
    for letter in by_offset.values():
        assert "Nguy" not in letter.error and "1234567890" not in letter.error, "no values"
        assert "5881580" not in letter.error, "the server quotes the date: left out"
    assert value(metrics_url, "govsync_processor_events_dead_lettered_total") == 3
    log = (pipeline.logs / "processor-vss.log").read_text()
    assert "isolating the bad events" in log, "refused inside a batch, the rest applied"

    rows = [(n, by_offset[(pipeline.topic, offsets[n])]) for n in bad_citizens]
    rows.append(("numeric precision overflow (decimal(14,2))", land_letter))
    print_table(
        [
            (
                name,
                letter.error,
                f"dead_lettered_total{{reason={letter.reason}}}",
                f"{letter.original.topic}/{letter.original.partition}@{letter.original.offset}",
                0,
            )
            for name, letter in rows
        ]
    )


def test_a_replica_column_dropped_by_hand_stops_the_subscription_until_restored(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=40)
    pipeline.start_connector()
    metrics_url = pipeline.start_processor().spec.metrics_url
    assert metrics_url is not None
    pipeline.wait_converged()
    with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE population.citizen DROP COLUMN ward_code")
    with pipeline.source() as conn:
        changed = conn.execute(
            "UPDATE citizen SET full_name = full_name || ' B' WHERE personal_id IN "
            "(SELECT personal_id FROM citizen ORDER BY personal_id LIMIT 5) RETURNING personal_id"
        ).fetchall()
    pipeline.wait_for(
        lambda: value(metrics_url, "govsync_processor_subscription_state", state="stopped") == 1,
        "the subscription to stop",
    )
    group = f"{pipeline.name}.govsync-replica-vss"
    pipeline.wait_for(
        lambda: sum(group_lag(pipeline.stack.bootstrap, group, [pipeline.topic]).values()) == 5,
        "the five unapplied events to stay uncommitted",
    )
    assert value(metrics_url, "govsync_processor_events_dead_lettered_total") == 0
    assert letters_of(pipeline) == []
    log = (pipeline.logs / "processor-vss.log").read_text()
    seen = next(line for line in log.splitlines() if "subscription stopped" in line)
    assert 'column "ward_code"' in seen and "fix the replica and restart the worker" in seen

    with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE population.citizen ADD COLUMN ward_code text")
    pipeline.kill("processor-vss")  # the supervisor restarts it
    ids = {r[0] for r in changed}
    pipeline.wait_for(
        lambda: all(pipeline.replica_rows()[i] == pipeline.source_rows()[i] for i in ids),
        "the held-back events to arrive",
    )
    assert value(metrics_url, "govsync_processor_subscription_state", state="running") == 1
    # the restored column is empty in rows no event touched since: verify says so, and a
    # snapshot of the table fills it
    data_dir = str(pipeline.describe())
    cli = [sys.executable, "-m", "sync.cli"]
    drift = subprocess.run(
        [*cli, "verify", "--data-dir", data_dir, "--json"], capture_output=True, text=True
    )
    assert drift.returncode == 1
    assert json.loads(drift.stdout)[0]["tables"][0]["different"] == 40 - 5
    snapshot = [*cli, "snapshot", "citizen", "--source", "population", "--slot", pipeline.slot]
    done = subprocess.run(
        [*snapshot, "--data-dir", data_dir, "--timeout", "120"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    pipeline.wait_converged()
    print_table(
        [
            (
                "replica column dropped by hand",
                seen.split("subscription stopped: ")[-1],
                'subscription_state{state="stopped"} = 1',
                "none (5 events held back, uncommitted)",
                0,
            )
        ]
    )


@pytest.fixture
def own_registry(
    stack: StackProvider, pipeline_factory: Callable[..., Pipeline]
) -> Iterator[tuple[Pipeline, Supervisor, ProcessSpec, str]]:
    """A pipeline and a registry process of its own, to stop and start again (the session's
    registry is shared with other tests)."""
    supervisor = Supervisor()
    pipeline = pipeline_factory(citizens=30)
    pipeline.logs.mkdir(parents=True, exist_ok=True)
    spec, url = registry_spec(stack.create_database(f"{pipeline.name}_registry"), pipeline.logs)
    supervisor.start(spec)
    try:
        yield pipeline, supervisor, spec, url
    finally:
        supervisor.stop_all(drain_timeout=0)


def test_a_registry_that_is_down_is_retried_never_dead_lettered_and_caught_up(
    own_registry: tuple[Pipeline, Supervisor, ProcessSpec, str],
) -> None:
    pipeline, supervisor, spec, url = own_registry
    pipeline.start_connector(registry_url=url)
    metrics_url = pipeline.start_processor(registry_url=url).spec.metrics_url
    assert metrics_url is not None
    pipeline.wait_converged()

    supervisor.stop("registry")
    pipeline.kill("processor-vss")  # restarted with no schema cached
    with pipeline.source() as conn:
        conn.execute("UPDATE citizen SET ward_code = '00555'")
    pipeline.wait_for(
        lambda: value(metrics_url, "govsync_processor_apply_retries_total") >= 3,
        "the processor to retry while the registry is down",
    )
    assert pipeline.replica_rows() != pipeline.source_rows()
    assert value(metrics_url, "govsync_processor_events_dead_lettered_total") == 0
    log = (pipeline.logs / "processor-vss.log").read_text()
    seen = next(line for line in log.splitlines() if "retrying in" in line)
    assert "registry unreachable" in seen

    supervisor.start(spec)
    pipeline.wait_converged(timeout=120)
    retries = value(metrics_url, "govsync_processor_apply_retries_total")
    assert value(metrics_url, "govsync_processor_events_dead_lettered_total") == 0
    assert letters_of(pipeline) == []
    print_table(
        [
            (
                "schema registry down",
                seen.split("agency vss: ")[-1],
                f"apply_retries_total = {retries:.0f}, alert GovsyncApplyRetrying",
                "none",
                0,
            )
        ]
    )
