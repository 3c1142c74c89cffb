"""No single value stops a feed: rows of every carried type, edge values included, committed at
a real source reach the replica exactly -- or, only where the contract cannot carry a value, are
dead-lettered by the connector with the field named and no value -- and the rows after them
always arrive. The same rows read by the snapshot and by the stream give the same result.

See docs/value-mapping.md for the mapping these values follow.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from sync.kafka import ensure_topics
from sync.kafka.deadletter import DeadLetter, connector_dead_letter_topic
from sync.replica.verify import TableSide, TableVerifier
from sync.stack.ports import wait_until
from sync.stack.providers import StackProvider
from sync.stack.supervisor import Supervisor
from tests.integration.test_types import SOURCE_DDL, typecheck_specs

pytestmark = pytest.mark.integration

NAMES = (
    "id t_text t_varchar t_char t_int2 t_int4 t_int8 t_numeric t_real t_double t_bool t_date "
    "t_time t_timestamp t_timestamptz t_uuid t_jsonb t_bytea t_text_array t_int_array"
).split()
INSERT = sql.SQL("INSERT INTO sample ({}) VALUES ({})").format(
    sql.SQL(", ").join(map(sql.Identifier, NAMES)), sql.SQL(", ").join([sql.Placeholder()] * 20)
)
ROW_TEXT = "SELECT id, ROW({})::text FROM {} ORDER BY id"

# values no contract type carries: the connector dead-letters the change, naming the field
UNCARRIED = {
    "t_numeric": ["NaN"],
    "t_timestamp": ["294276-12-31 23:59:59.999999", "294250-01-01 00:00:00"],
    "t_timestamptz": ["294276-12-31 23:59:59.999999+00"],
}
EDGES = {
    "t_date": ["infinity", "-infinity", "4714-11-24 BC", "0044-03-15 BC", "10000-01-01",
               "5874897-12-31", "0001-01-01", "9999-12-31"],
    "t_time": ["24:00:00", "00:00:00", "23:59:59.999999"],
    "t_timestamp": ["infinity", "-infinity", "0044-03-15 12:00:00.5 BC", "10000-01-01 00:00:00",
                    "294247-01-10 04:00:54.775806", "0001-01-01 00:00:00"],
    "t_timestamptz": ["infinity", "-infinity", "0001-01-01 00:00:00+05",
                      "9999-12-31 23:00:00-05", "4714-11-24 00:00:00+00 BC"],
    "t_real": [float("nan"), float("inf"), float("-inf"), 3.4028235e38, -1.4e-45],
    "t_double": [float("nan"), float("inf"), float("-inf"), 1.7976931348623157e308, 5e-324],
    "t_numeric": ["99999999999.999", "-99999999999.999", "0.000", "-0.001"],
    "t_int2": [-32768, 32767], "t_int4": [-(2**31), 2**31 - 1], "t_int8": [-(2**63), 2**63 - 1],
}  # fmt: skip
# one character from each Unicode plane that has assigned characters (NUL excluded: PostgreSQL
# text cannot hold it), plus Vietnamese
PLANES = "\x01ế\U00010348\U00020021\U00030000\U000e0101\U000f0000\U0010fffd"

_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00") | st.sampled_from(PLANES)
)


def _column(name: str, base: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    edges = EDGES.get(name, []) + UNCARRIED.get(name, [])
    if edges:
        base = st.sampled_from(edges) | base
    return st.none() | base


ROW = st.fixed_dictionaries(
    {
        "t_text": _column("t_text", _text | st.just("Huế " * 5000)),
        "t_varchar": _column("t_varchar", _text.filter(lambda t: len(t) <= 20)),
        "t_char": _column("t_char", st.text("abcế ", max_size=5)),
        "t_int2": _column("t_int2", st.integers(-32768, 32767)),
        "t_int4": _column("t_int4", st.integers(-(2**31), 2**31 - 1)),
        "t_int8": _column("t_int8", st.integers(-(2**63), 2**63 - 1)),
        "t_numeric": _column(
            "t_numeric",
            st.decimals(-(10**11) + 1, 10**11 - 1, places=3, allow_nan=False).map(str),
        ),
        "t_real": _column("t_real", st.floats(width=32)),
        "t_double": _column("t_double", st.floats()),
        "t_bool": _column("t_bool", st.booleans()),
        "t_date": _column("t_date", st.dates().map(str)),
        "t_time": _column("t_time", st.times().map(str)),
        "t_timestamp": _column("t_timestamp", st.datetimes().map(str)),
        "t_timestamptz": _column("t_timestamptz", st.datetimes(timezones=st.just(UTC)).map(str)),
        "t_uuid": _column("t_uuid", st.uuids()),
        "t_jsonb": _column("t_jsonb", st.dictionaries(_text, _text, max_size=3).map(json.dumps)),
        "t_bytea": _column("t_bytea", st.binary(max_size=64)),
        "t_text_array": _column("t_text_array", st.lists(st.none() | _text, max_size=4)),
        "t_int_array": _column(
            "t_int_array", st.lists(st.none() | st.integers(-(2**31), 2**31 - 1), max_size=4)
        ),
    }
)
FIXED = [
    {"t_date": d, "t_time": t, "t_timestamp": ts, "t_timestamptz": tz}
    for d, t, ts, tz in itertools.zip_longest(
        EDGES["t_date"], EDGES["t_time"], EDGES["t_timestamp"], EDGES["t_timestamptz"]
    )
] + [{name: value} for name, values in UNCARRIED.items() for value in values]


def uncarried_fields(row: dict[str, Any]) -> set[str]:
    return {name for name, values in UNCARRIED.items() if row.get(name) in values}


class Pipeline:
    def __init__(self, stack: StackProvider, tmp_path: Path) -> None:
        name = f"edges_{uuid.uuid4().hex[:6]}"
        self.source = stack.create_database(f"{name}_source")
        self.replica = stack.create_database(f"{name}_replica")
        with psycopg.connect(self.source, autocommit=True) as conn:
            conn.execute(SOURCE_DDL)
        self.connector, self.processor = typecheck_specs(
            stack, name, self.source, self.replica, tmp_path, agency="edges"
        )
        self.supervisor = Supervisor()
        self.ids = itertools.count(1)
        self.expected_letters: list[str] = []  # the field each letter names
        self.letters: list[DeadLetter] = []
        self._dlq = Consumer(
            {
                "bootstrap.servers": stack.bootstrap,
                "group.id": f"{name}-dlq-reader",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        # made before the reader subscribes: a consumer learns of a topic created after its
        # subscription only at its next metadata refresh, minutes later
        dlq = connector_dead_letter_topic(f"{name}.", "typecheck")
        ensure_topics(stack.bootstrap, [dlq], 1)
        self._dlq.subscribe([dlq])

    def commit(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert the rows in one transaction; returns their ids."""
        ids = []
        with psycopg.connect(self.source) as conn:
            for row in rows:
                ids.append(next(self.ids))
                conn.execute(INSERT, [ids[-1], *(row.get(n) for n in NAMES[1:])])
                misfits = uncarried_fields(row)
                if misfits:  # the letter names the first field, in the contract's order
                    self.expected_letters.append(min(misfits, key=NAMES.index))
        return ids

    def rows(self, dsn: str, table: sql.Composable) -> dict[int, str]:
        with psycopg.connect(dsn) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute("SET extra_float_digits = 3")
            try:
                query = sql.SQL(ROW_TEXT).format(
                    sql.SQL(", ").join(map(sql.Identifier, NAMES[1:])), table
                )
                return dict(conn.execute(query).fetchall())
            except psycopg.errors.UndefinedTable:
                return {}

    def read_letters(self) -> None:
        while (message := self._dlq.poll(0.2)) is not None:
            error = message.error()
            if error is None:
                self.letters.append(DeadLetter.from_json(message.value() or b""))
            elif error.code() not in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                raise AssertionError(f"reading the connector's dead letters: {error}")

    def settled(self) -> bool:
        """The replica holds every carried row exactly and nothing else; every uncarried row
        has its letter."""
        self.read_letters()
        source = self.rows(self.source, sql.Identifier("sample"))
        replica = self.rows(self.replica, sql.Identifier("typecheck", "sample"))
        carried = {i: text for i, text in source.items() if i not in self.uncarried_ids(source)}
        return replica == carried and len(self.letters) == len(self.expected_letters)

    def uncarried_ids(self, source: dict[int, str]) -> set[int]:
        with psycopg.connect(self.source) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            where = sql.SQL(" OR ").join(
                sql.SQL("{}::text = ANY({})").format(sql.Identifier(n), sql.Literal(v))
                for n, v in UNCARRIED.items()
            )
            query = sql.SQL("SELECT id FROM sample WHERE {}").format(where)
            return {row[0] for row in conn.execute(query)}

    def close(self) -> None:
        self.supervisor.stop_all(drain_timeout=0)
        self._dlq.close()


@pytest.fixture
def pipeline(stack: StackProvider, tmp_path: Path) -> Iterator[Pipeline]:
    built = Pipeline(stack, tmp_path)
    try:
        yield built
    finally:
        built.close()


def test_every_edge_value_arrives_or_is_dead_lettered_alone(pipeline: Pipeline) -> None:
    snapshotted = pipeline.commit(FIXED)  # read by the snapshot
    pipeline.supervisor.start(pipeline.connector)
    pipeline.supervisor.start(pipeline.processor)
    streamed = pipeline.commit(FIXED)  # the same rows, read from the stream
    wait_until(pipeline.settled, 90, "the fixed edge rows to arrive or be dead-lettered")
    replica = pipeline.rows(pipeline.replica, sql.Identifier("typecheck", "sample"))
    for first, second in zip(snapshotted, streamed, strict=True):
        assert replica.get(first) == replica.get(second), FIXED[first - 1]
    assert {i for i in snapshotted if i not in replica} == {
        i for i, row in enumerate(FIXED, start=1) if uncarried_fields(row)
    }
    assert {letter.reason for letter in pipeline.letters} == {"unencodable"}
    assert sorted(letter.field for letter in pipeline.letters) == sorted(pipeline.expected_letters)
    for letter in pipeline.letters:
        assert letter.table == "public.sample" and letter.event_id and letter.lsn
        assert "294276-12-31" not in letter.error and "Decimal(" not in letter.error

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(ROW, min_size=1, max_size=5))
    def random_rows_then_a_plain_one(rows: list[dict[str, Any]]) -> None:
        pipeline.commit(rows)
        (after,) = pipeline.commit([{"t_text": "sau", "t_date": "2024-01-01"}])
        wait_until(pipeline.settled, 60, "random edge rows and the row after them")
        replica = pipeline.rows(pipeline.replica, sql.Identifier("typecheck", "sample"))
        assert after in replica

    random_rows_then_a_plain_one()
    verifier = TableVerifier(
        TableSide(pipeline.source, sql.Identifier("sample")),
        TableSide(pipeline.replica, sql.Identifier("typecheck", "sample")),
        NAMES,
        ["id"],
    )
    report = verifier.run("typecheck.sample")
    source = pipeline.rows(pipeline.source, sql.Identifier("sample"))
    assert set(report.missing) == {(i,) for i in pipeline.uncarried_ids(source)}
    assert not report.extra and not report.different
