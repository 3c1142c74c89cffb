"""Schema evolution as the registry judges it, and the registry as a service: restarts
(several processes on one store, access control: test_registry_two_processes.py,
test_registry_access.py).

The evolution table states, for each kind of change, which compatibility levels accept it.
The verdicts are written out by hand from the schema-resolution rules of the Avro
specification (a reader field missing from the writer needs a default; a writer field the
reader lacks is skipped; int is promoted to long, float and double; an enum symbol or a union
branch the reader lacks cannot be read unless the reader's enum has a default; records match
by unqualified name or a reader alias). BACKWARD asks whether the new schema reads what the
old one wrote, FORWARD the reverse, FULL both; the transitive levels ask it of every earlier
version. Each case registers its history under NONE, sets the level, then asks the registry.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from sync.stack.ports import port_open
from sync.stack.providers import StackProvider
from sync.stack.supervisor import Supervisor
from tests.fixtures.registry import own_registry, supervisor_fixture  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

LEVELS = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)


def record(*fields: dict[str, Any], name: str = "Person", namespace: str = "govsync.evo") -> str:
    return json.dumps(
        {"type": "record", "name": name, "namespace": namespace, "fields": list(fields)}
    )


def f(name: str, avro_type: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": avro_type, **extra}


ID = f("id", "long")


def status(symbols: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "Status", "symbols": symbols, **extra}


def address(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Address", "fields": [f("city", "string"), *fields]}


@dataclass(frozen=True)
class Case:
    """``history`` oldest first, then the ``candidate``; ``accepts`` maps each level to
    whether the registry must accept the candidate after that history."""

    name: str
    history: tuple[str, ...]
    candidate: str
    accepts: dict[str, bool]


def verdicts(
    backward: bool,
    backward_transitive: bool,
    forward: bool,
    forward_transitive: bool,
    full: bool,
    full_transitive: bool,
) -> dict[str, bool]:
    values = (backward, backward_transitive, forward, forward_transitive, full, full_transitive)
    return {**dict(zip(LEVELS[:-1], values, strict=True)), "NONE": True}


YES_YES = verdicts(True, True, True, True, True, True)
# The new schema reads old data, old readers cannot read new data.
BACKWARD_ONLY = verdicts(True, True, False, False, False, False)
# Old readers read new data, the new schema cannot read old data.
FORWARD_ONLY = verdicts(False, False, True, True, False, False)

CASES = [
    # A new field with a default: new readers fill it in, old readers skip it.
    Case(
        "add field with default",
        (record(ID, f("name", "string")),),
        record(ID, f("name", "string"), f("email", ["null", "string"], default=None)),
        YES_YES,
    ),
    # Without a default, the new schema has no value for it in old data.
    Case(
        "add field without default",
        (record(ID, f("name", "string")),),
        record(ID, f("name", "string"), f("born", "int")),
        FORWARD_ONLY,
    ),
    # Old readers use the removed field's default; new readers skip it in old data.
    Case(
        "remove field with default",
        (record(ID, f("nickname", "string", default="")),),
        record(ID),
        YES_YES,
    ),
    # Old readers have no value and no default for the removed field.
    Case(
        "remove field without default",
        (record(ID, f("nickname", "string")),),
        record(ID),
        BACKWARD_ONLY,
    ),
    # A reader alias matches the old name; old readers still look for the old name.
    Case(
        "rename with alias",
        (record(ID, f("surname", "string")),),
        record(ID, f("family_name", "string", aliases=["surname"])),
        BACKWARD_ONLY,
    ),
    # int is promoted to long when reading; long is not demoted to int.
    Case(
        "widen int to long",
        (record(ID, f("count", "int")),),
        record(ID, f("count", "long")),
        BACKWARD_ONLY,
    ),
    # A string cannot be read as an int, nor an int as a string.
    Case(
        "change string to int",
        (record(ID, f("code", "string")),),
        record(ID, f("code", "int")),
        verdicts(False, False, False, False, False, False),
    ),
    # Old readers meet a symbol they do not know.
    Case(
        "add enum symbol",
        (record(ID, f("status", status(["ACTIVE", "DECEASED"]))),),
        record(ID, f("status", status(["ACTIVE", "DECEASED", "EMIGRATED"]))),
        BACKWARD_ONLY,
    ),
    # ...unless the enum has a default, which old readers use for unknown symbols.
    Case(
        "add enum symbol, enum has a default",
        (record(ID, f("status", status(["ACTIVE", "UNKNOWN"], default="UNKNOWN"))),),
        record(ID, f("status", status(["ACTIVE", "UNKNOWN", "EMIGRATED"], default="UNKNOWN"))),
        YES_YES,
    ),
    # Old data may hold the removed symbol.
    Case(
        "remove enum symbol",
        (record(ID, f("status", status(["ACTIVE", "DECEASED"]))),),
        record(ID, f("status", status(["ACTIVE"]))),
        FORWARD_ONLY,
    ),
    # Records match by unqualified name, so a new namespace alone changes nothing.
    Case(
        "change namespace",
        (record(ID, namespace="govsync.evo.old"),),
        record(ID, namespace="govsync.evo.new"),
        YES_YES,
    ),
    # A renamed record without an alias no longer matches.
    Case(
        "rename record without alias",
        (record(ID, name="Person"),),
        record(ID, name="Citizen"),
        verdicts(False, False, False, False, False, False),
    ),
    # Nested records resolve field by field, like the top level.
    Case(
        "nested record field added with default",
        (record(ID, f("address", address())),),
        record(ID, f("address", address(f("street", ["null", "string"], default=None)))),
        YES_YES,
    ),
    Case(
        "nested record field added without default",
        (record(ID, f("address", address())),),
        record(ID, f("address", address(f("street", "string")))),
        FORWARD_ONLY,
    ),
    # The new union reads every old branch; old readers lack the new branch.
    Case(
        "union branch added",
        (record(ID, f("value", ["null", "string"], default=None)),),
        record(ID, f("value", ["null", "string", "long"], default=None)),
        BACKWARD_ONLY,
    ),
    # Optional -> required: old data may hold null.
    Case(
        "nullable field made required",
        (record(ID, f("email", ["null", "string"], default=None)),),
        record(ID, f("email", "string")),
        FORWARD_ONLY,
    ),
    # v2 gave x a default, v3 drops it: v3 reads v2 (which has x) but not v1 (which lacks it).
    Case(
        "default dropped after a version without the field",
        (record(ID), record(ID, f("x", "int", default=0))),
        record(ID, f("x", "int")),
        verdicts(True, False, True, True, True, False),
    ),
    # v1 required x, v2 gave it a default, v3 removes it: v2 readers use the default, v1
    # readers have none.
    Case(
        "field removed after a version that required it",
        (record(ID, f("x", "int")), record(ID, f("x", "int", default=0))),
        record(ID),
        verdicts(True, True, True, False, True, False),
    ),
]

_subjects = itertools.count(1)


def unique(prefix: str) -> str:
    return f"evo-{prefix}-{uuid.uuid4().hex[:10]}-{next(_subjects)}-value"


@pytest.fixture(scope="module")
def client(registry_url: str) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient({"url": registry_url, "max.retries": 0}) as c:
        yield c


def test_the_table_covers_every_level() -> None:
    for case in CASES:
        assert set(case.accepts) == set(LEVELS), case.name


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name.replace(" ", "-"))
def test_evolution(client: SchemaRegistryClient, case: Case, level: str) -> None:
    subject = unique(level.lower())
    client.set_compatibility(subject, "NONE")
    ids = [client.register_schema(subject, Schema(s, "AVRO")) for s in case.history]
    client.set_compatibility(subject, level)
    candidate = Schema(case.candidate, "AVRO")
    expected = case.accepts[level]
    # The compatibility endpoint checks one version under the level's rule: the latest, or
    # each one in turn, which together make the transitive verdict.
    against_latest = case.accepts[level.removesuffix("_TRANSITIVE")]
    assert client.test_compatibility(subject, candidate) is against_latest
    each = [
        client.test_compatibility(subject, candidate, version=v)
        for v in range(1, len(case.history) + 1)
    ]
    assert each[-1] is against_latest
    if level.endswith("_TRANSITIVE"):
        assert all(each) is expected
    if expected:
        new_id = client.register_schema(subject, candidate)
        assert new_id not in ids
        assert client.get_versions(subject) == list(range(1, len(case.history) + 2))
    else:
        with pytest.raises(SchemaRegistryError) as refused:
            client.register_schema(subject, candidate)
        assert (refused.value.http_status_code, refused.value.error_code) == (409, 409)
        assert client.get_versions(subject) == list(range(1, len(case.history) + 1))


# -- the registry as a service ------------------------------------------------------------


def test_state_survives_a_restart(
    stack: StackProvider, tmp_path: Path, supervisor: Supervisor
) -> None:
    spec, url, dsn = own_registry(stack, tmp_path, "registry-first")
    supervisor.start(spec)
    v1 = record(ID, f("name", "string"))
    v2 = record(ID, f("name", "string"), f("email", ["null", "string"], default=None))
    with SchemaRegistryClient({"url": url, "max.retries": 0}) as first:
        first.set_compatibility(level="FORWARD")
        first.set_compatibility("citizens-value", "FULL_TRANSITIVE")
        id1 = first.register_schema("citizens-value", Schema(v1, "AVRO"))
        id2 = first.register_schema("citizens-value", Schema(v2, "AVRO"))
        key_id = first.register_schema("citizens-key", Schema(record(ID, name="Key"), "AVRO"))
        first.delete_version("citizens-key", 1)
    supervisor.stop("registry-first")
    assert not port_open(int(url.rsplit(":", 1)[1]))

    spec, url, _ = own_registry(stack, tmp_path, "registry-second", dsn)
    supervisor.start(spec)
    with SchemaRegistryClient({"url": url, "max.retries": 0}) as second:
        assert second.get_versions("citizens-value") == [1, 2]
        assert [second.get_version("citizens-value", v).schema_id for v in (1, 2)] == [id1, id2]
        assert json.loads(second.get_schema(id2).schema_str or "null") == json.loads(v2)
        assert second.get_compatibility() == "FORWARD"
        assert second.get_compatibility("citizens-value") == "FULL_TRANSITIVE"
        assert second.get_versions("citizens-key", deleted=True) == [1]
        assert "citizens-key" not in second.get_subjects()
        assert second.get_schema(key_id).schema_str  # ids stay resolvable
        # The restored level is enforced: a field without a default breaks FULL_TRANSITIVE.
        bad = record(ID, f("name", "string"), f("born", "int"))
        with pytest.raises(SchemaRegistryError) as refused:
            second.register_schema("citizens-value", Schema(bad, "AVRO"))
        assert refused.value.error_code == 409
        # New ids continue after the old ones.
        fresh = second.register_schema("others-value", Schema(record(f("z", "int")), "AVRO"))
        assert fresh not in (id1, id2, key_id)
        assert second.register_schema("citizens-value", Schema(v1, "AVRO")) == id1
