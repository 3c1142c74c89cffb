"""Two registry processes on one store stay one registry: registrations sent to both at once,
from threads with a client each, give every schema one id and every subject one gapless
version order, and a compatibility race between them admits one winner only.

Both processes serialize their writes with the store's advisory lock and check compatibility
optimistically outside it (re-checking when the subject changed meanwhile); these tests are
what proves that together.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from sync.stack.providers import StackProvider
from sync.stack.supervisor import Supervisor
from tests.fixtures.registry import own_registry, supervisor_fixture  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

THREADS = 8
SCHEMAS = 20
SHARED_SUBJECTS = 4
T = TypeVar("T")


def record(*fields: dict[str, Any], name: str) -> str:
    return json.dumps(
        {"type": "record", "name": name, "namespace": "govsync.two", "fields": fields}
    )


def two_registries(
    stack: StackProvider, tmp_path: Path, supervisor: Supervisor, level: str
) -> list[str]:
    """Two processes on one new store whose global level is ``level``: their URLs."""
    spec_a, url_a, dsn = own_registry(stack, tmp_path, "registry-a")
    spec_b, url_b, _ = own_registry(stack, tmp_path, "registry-b", dsn)
    supervisor.start(spec_a)
    supervisor.start(spec_b)
    with SchemaRegistryClient({"url": url_a}) as admin:
        admin.set_compatibility(level=level)
    return [url_a, url_b]


def all_at_once(work: Callable[[int, list[SchemaRegistryClient]], T], urls: list[str]) -> list[T]:
    """``work(thread, clients)`` in ``THREADS`` threads released together; each thread has a
    client of its own per registry."""
    gate = threading.Barrier(THREADS, timeout=60)

    def run(thread: int) -> T:
        clients = [SchemaRegistryClient({"url": url, "max.retries": 0}) for url in urls]
        try:
            gate.wait()
            return work(thread, clients)
        finally:
            for client in clients:
                client.close()

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


def test_same_and_different_schemas_get_one_id_and_one_version_order(
    stack: StackProvider, tmp_path: Path, supervisor: Supervisor
) -> None:
    urls = two_registries(stack, tmp_path, supervisor, "NONE")
    tag = uuid.uuid4().hex[:8]
    schemas = [record({"name": f"f{i}", "type": "long"}, name=f"S{tag}") for i in range(SCHEMAS)]

    def register(thread: int, clients: list[SchemaRegistryClient]) -> list[tuple[int, str, Any]]:
        """Every schema, in this thread's own order, under a subject shared with the other
        threads and under the thread's own, alternating between the two registries."""
        order = random.Random(thread).sample(range(SCHEMAS), SCHEMAS)
        out = []
        for step, index in enumerate(order):
            client = clients[(thread + step) % 2]
            for subject in (f"shared-{index % SHARED_SUBJECTS}", f"thread-{thread}"):
                found = client.register_schema_full_response(
                    subject, Schema(schemas[index], "AVRO")
                )
                out.append((index, subject, found))
        return out

    results = [row for rows in all_at_once(register, urls) for row in rows]
    assert len(results) == THREADS * SCHEMAS * 2

    ids: dict[int, set[int]] = defaultdict(set)
    numbered: dict[str, dict[int, int]] = defaultdict(dict)  # subject -> version -> id
    for index, subject, found in results:
        ids[index].add(found.schema_id)
        assert numbered[subject].setdefault(found.version, found.schema_id) == found.schema_id
    assert all(len(one) == 1 for one in ids.values()), ids
    assert len({next(iter(one)) for one in ids.values()}) == SCHEMAS  # no id names two schemas
    for url in urls:
        with SchemaRegistryClient({"url": url}) as check:
            for subject, versions in numbered.items():
                count = SCHEMAS // SHARED_SUBJECTS if subject.startswith("shared") else SCHEMAS
                assert sorted(versions) == list(range(1, count + 1)), subject
                assert check.get_versions(subject) == list(range(1, count + 1)), subject
                for version, schema_id in versions.items():
                    assert check.get_version(subject, version).schema_id == schema_id
            for index, one in ids.items():
                fetched = check.get_schema(next(iter(one)))
                assert json.loads(fetched.schema_str or "") == json.loads(schemas[index])


# Each adds a field with a default to the base, so each reads what the base wrote (BACKWARD);
# the field's types do not promote to one another, so none reads what another wrote.
EXTRAS: list[tuple[Any, Any]] = [
    ("boolean", False),
    ("int", 0),
    ("string", ""),
    ("null", None),
    ({"type": "array", "items": "boolean"}, []),
    ({"type": "map", "values": "int"}, {}),
]


def test_a_compatibility_race_admits_one_winner(
    stack: StackProvider, tmp_path: Path, supervisor: Supervisor
) -> None:
    urls = two_registries(stack, tmp_path, supervisor, "BACKWARD")
    base = {"name": "id", "type": "long"}
    subject = "race-value"
    with SchemaRegistryClient({"url": urls[0]}) as first:
        first.register_schema(subject, Schema(record(base, name="Race"), "AVRO"))
    rivals = [
        record(base, {"name": "extra", "type": kind, "default": default}, name="Race")
        for kind, default in EXTRAS
    ]

    def race(thread: int, clients: list[SchemaRegistryClient]) -> list[tuple[int, Any]]:
        out: list[tuple[int, Any]] = []
        for step, index in enumerate(random.Random(thread).sample(range(len(rivals)), 3)):
            client = clients[(thread + step) % 2]
            try:
                found = client.register_schema_full_response(subject, Schema(rivals[index], "AVRO"))
                out.append((index, (found.version, found.schema_id)))
            except SchemaRegistryError as error:
                out.append((index, (error.http_status_code, error.error_code)))
        return out

    results = [row for rows in all_at_once(race, urls) for row in rows]
    admitted = {(index, answer) for index, answer in results if answer != (409, 409)}
    assert len(admitted) == 1, results  # one schema became version 2, every time it was sent...
    ((winner, (version, winner_id)),) = admitted
    assert version == 2
    assert all(answer == (409, 409) for index, answer in results if index != winner), results
    for url in urls:
        with SchemaRegistryClient({"url": url}) as check:
            assert check.get_versions(subject) == [1, 2]  # ...and no other followed it
            assert check.get_version(subject, 2).schema_id == winner_id
