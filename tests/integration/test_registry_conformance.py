"""Confluent Schema Registry's REST API for Avro, endpoint by endpoint, as its clients use it:
through confluent-kafka's ``SchemaRegistryClient`` where it has the call, raw HTTP where not.

Sections follow Confluent's API reference: schemas, subjects, versions, references,
compatibility, config, mode; then subject names, and what this registry does not serve.
Tests on the session registry use subjects of their own and leave global config and mode
alone; tests that change those start a registry process on a store of their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaReference,
    SchemaRegistryClient,
    SchemaRegistryError,
)
from confluent_kafka.schema_registry.schema_registry_client import (
    ConfigCompatibilityLevel,
    ServerConfig,
)

from sync.stack.providers import StackProvider
from sync.stack.supervisor import Supervisor
from tests.fixtures.registry import (
    CONTENT_TYPE,
    http,
    own_registry,
    supervisor_fixture,  # noqa: F401
)

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]


def record(name: str, *fields: dict[str, Any], namespace: str = "govsync.conf") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": namespace, "fields": fields})


def f(name: str, avro_type: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": avro_type, **extra}


V1 = record("Person", f("id", "long"))
V2 = record("Person", f("id", "long"), f("email", ["null", "string"], default=None))
V2_BAD = record("Person", f("id", "long"), f("born", "int"))


def avro(text: str, references: list[SchemaReference] | None = None) -> Schema:
    return Schema(text, "AVRO", references or [])


def unique(prefix: str = "conf") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(registry_url: str) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient({"url": registry_url, "max.retries": 0}) as c:
        yield c


def fresh(url: str) -> SchemaRegistryClient:
    """A client without caches, so every call is a request."""
    return SchemaRegistryClient({"url": url, "max.retries": 0})


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[int, int]:
    with pytest.raises(SchemaRegistryError) as error:
        call(*args, **kwargs)
    return error.value.http_status_code, error.value.error_code


def error_of(result: tuple[int, str, Any]) -> tuple[int, int]:
    status, content_type, body = result
    assert content_type == CONTENT_TYPE, body
    assert isinstance(body["message"], str) and body["message"], body
    return status, body["error_code"]


# -- schemas ------------------------------------------------------------------------------------


def test_schema_types(client: SchemaRegistryClient) -> None:
    assert client.get_schema_types() == ["AVRO"]


def test_schema_by_id_with_subject_and_max_id(
    client: SchemaRegistryClient, registry_url: str
) -> None:
    subject = unique()
    schema_id = client.register_schema(subject, avro(V1))
    with fresh(registry_url) as uncached:
        fetched = uncached.get_schema(schema_id, subject_name=subject)
    assert json.loads(fetched.schema_str or "") == json.loads(V1)
    status, _, body = http(registry_url, "GET", f"/schemas/ids/{schema_id}?fetchMaxId=true")
    assert status == 200 and body["maxId"] >= schema_id
    assert json.loads(body["schema"]) == json.loads(V1)
    status, _, raw = http(registry_url, "GET", f"/schemas/ids/{schema_id}/schema")
    assert status == 200 and raw == json.loads(V1)
    for path in ("/schemas/ids/2147483647", "/schemas/ids/0", "/schemas/ids/99999999999999"):
        assert error_of(http(registry_url, "GET", path)) == (404, 40403), path


def test_subjects_and_versions_of_an_id(client: SchemaRegistryClient) -> None:
    schema = avro(record("Shared", f(f"f{uuid.uuid4().hex}", "long")))
    live, gone = unique("live"), unique("gone")
    schema_id = client.register_schema(live, schema)
    client.register_schema(gone, schema)
    client.delete_subject(gone)
    assert client.get_subjects_by_schema_id(schema_id) == [live]
    assert client.get_subjects_by_schema_id(schema_id, deleted=True) == sorted([live, gone])
    assert client.get_subjects_by_schema_id(schema_id, subject_name=gone, deleted=True) == [gone]
    pairs = client.get_schema_versions(schema_id, deleted=True)
    assert {(p.subject, p.version) for p in pairs} == {(live, 1), (gone, 1)}
    assert [p.subject for p in client.get_schema_versions(schema_id)] == [live]
    assert refused(client.get_subjects_by_schema_id, 2147483000) == (404, 40403)


def test_list_schemas(client: SchemaRegistryClient, registry_url: str) -> None:
    prefix = unique("list")
    one, two = f"{prefix}-a", f"{prefix}-b"
    client.set_compatibility(one, "NONE")
    for text in (V1, V2):
        client.register_schema(one, avro(text))
    client.register_schema(two, avro(V1))
    client.delete_version(one, 2)

    def listed(query: str) -> list[tuple[str, int]]:
        status, _, body = http(registry_url, "GET", f"/schemas?subjectPrefix={prefix}{query}")
        assert status == 200, body
        assert all("schema" in s and "id" in s for s in body)
        return [(s["subject"], s["version"]) for s in body]

    assert listed("") == [(one, 1), (two, 1)]
    assert listed("&deleted=true") == [(one, 1), (one, 2), (two, 1)]
    assert listed("&deleted=true&latestOnly=true") == [(one, 2), (two, 1)]
    assert listed("&latestOnly=true") == [(one, 1), (two, 1)]
    assert listed("&deleted=true&offset=1&limit=1") == [(one, 2)]


# -- subjects -----------------------------------------------------------------------------------


def test_list_subjects(client: SchemaRegistryClient) -> None:
    prefix = unique("subjects")
    live, gone = f"{prefix}-live", f"{prefix}-gone"
    client.register_schema(live, avro(V1))
    client.register_schema(gone, avro(V1))
    client.delete_subject(gone)
    assert client.get_subjects(subject_prefix=prefix) == [live]
    assert client.get_subjects(subject_prefix=prefix, deleted=True) == sorted([gone, live])
    assert client.get_subjects(subject_prefix=prefix, deleted_only=True) == [gone]
    assert client.get_subjects(subject_prefix=prefix, deleted=True, offset=1, limit=1) == [live]


def test_register_answers_the_id_and_normalizes_on_request(
    client: SchemaRegistryClient, registry_url: str
) -> None:
    kept, normalized = unique("kept"), unique("normalized")
    as_sent = json.dumps(json.loads(record("Kept", f(f"f{uuid.uuid4().hex}", "long"))), indent=4)
    status, _, body = http(registry_url, "POST", f"/subjects/{kept}/versions", {"schema": as_sent})
    assert status == 200 and isinstance(body["id"], int)
    assert client.get_version(kept, 1).schema.schema_str == as_sent
    spaced = json.dumps(json.loads(record("Normal", f(f"f{uuid.uuid4().hex}", "long"))), indent=4)
    schema_id = client.register_schema(normalized, avro(spaced), normalize_schemas=True)
    stored = client.get_version(normalized, 1).schema.schema_str or ""
    assert "\n" not in stored and json.loads(stored) == json.loads(spaced)
    # the same schema as sent: the same id, whose text is the one stored first
    again = client.register_schema_full_response(unique(), avro(spaced))
    assert again.schema_id == schema_id


def test_lookup(client: SchemaRegistryClient) -> None:
    subject = unique()
    first = client.register_schema(subject, avro(V1))
    client.register_schema(subject, avro(V2))
    found = client.lookup_schema(subject, avro(json.dumps(json.loads(V1), indent=1)))
    assert (found.schema_id, found.version) == (first, 1)
    client.delete_version(subject, 1)
    assert refused(client.lookup_schema, subject, avro(V1)) == (404, 40403)
    assert client.lookup_schema(subject, avro(V1), deleted=True).version == 1
    assert refused(client.lookup_schema, unique("nobody"), avro(V1)) == (404, 40401)


def test_delete_subject_soft_then_permanent(
    client: SchemaRegistryClient, registry_url: str
) -> None:
    subject = unique()
    client.register_schema(subject, avro(V1))
    assert refused(client.delete_subject, subject, permanent=True) == (404, 40405)
    assert client.delete_subject(subject) == [1]
    assert refused(client.delete_subject, subject) == (404, 40404)
    assert refused(client.get_versions, subject) == (404, 40401)
    assert client.get_versions(subject, deleted=True) == [1]
    assert client.delete_subject(subject, permanent=True) == [1]
    assert refused(client.get_versions, subject, deleted=True) == (404, 40401)
    assert refused(client.delete_subject, subject) == (404, 40401)


# -- versions -----------------------------------------------------------------------------------


def test_latest_and_minus_one(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique()
    client.register_schema(subject, avro(V1))
    second = client.register_schema(subject, avro(V2))
    for version in ("latest", "-1"):
        status, _, body = http(registry_url, "GET", f"/subjects/{subject}/versions/{version}")
        assert (status, body["version"], body["id"]) == (200, 2, second)
        status, _, raw = http(registry_url, "GET", f"/subjects/{subject}/versions/{version}/schema")
        assert status == 200 and raw == json.loads(V2)
    for bad in ("0", "-2", "abc", "2147483648", "1.5"):
        result = http(registry_url, "GET", f"/subjects/{subject}/versions/{bad}")
        assert error_of(result) == (422, 42202), bad
    assert refused(client.get_version, subject, 3) == (404, 40402)
    assert client.get_versions(subject, offset=1, limit=5) == [2]


def test_soft_deleted_versions(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique()
    for text in (V1, V2):
        client.register_schema(subject, avro(text))
    assert refused(client.delete_version, subject, 2, permanent=True) == (404, 40407)
    assert client.delete_version(subject, 1) == 1
    assert refused(client.delete_version, subject, 1) == (404, 40406)
    assert refused(client.get_version, subject, 1) == (404, 40402)
    assert client.get_version(subject, 1, deleted=True).version == 1
    assert client.get_versions(subject) == [2]
    assert client.get_versions(subject, deleted_only=True) == [1]
    assert client.get_latest_version(subject).version == 2
    assert client.delete_version(subject, 1, permanent=True) == 1
    assert refused(client.get_version, subject, 1, deleted=True) == (404, 40402)
    assert refused(client.delete_version, subject, 7) == (404, 40402)
    assert refused(client.delete_version, unique("nobody"), 1) == (404, 40401)


# -- references ---------------------------------------------------------------------------------


ADDRESS_V1 = record("Address", f("city", "string"))
ADDRESS_V2_OPTIONAL = record(
    "Address", f("city", "string"), f("zip", ["null", "string"], default=None)
)
ADDRESS_V2_REQUIRED = record("Address", f("city", "string"), f("zip", "string"))
PERSON = record("Citizen", f("id", "long"), f("home", "govsync.conf.Address"))


def test_references(client: SchemaRegistryClient, registry_url: str) -> None:
    address, person = unique("address"), unique("person")
    client.register_schema(address, avro(ADDRESS_V1))
    ref = SchemaReference("govsync.conf.Address", address, 1)
    person_id = client.register_schema(person, avro(PERSON, [ref]))
    fetched = client.get_version(person, 1)
    assert [(r.name, r.subject, r.version) for r in fetched.schema.references] == [
        ("govsync.conf.Address", address, 1)
    ]
    assert client.get_referenced_by(address, 1) == [person_id]
    assert client.lookup_schema(person, avro(PERSON, [ref])).schema_id == person_id
    status, _, body = http(registry_url, "GET", f"/schemas/ids/{person_id}")
    assert status == 200 and body["references"] == [
        {"name": "govsync.conf.Address", "subject": address, "version": 1}
    ]
    # a referenced version cannot go, softly or for good
    assert refused(client.delete_version, address, 1) == (422, 42206)
    assert refused(client.delete_subject, address) == (422, 42206)
    missing = SchemaReference("govsync.conf.Address", address, 9)
    assert refused(client.register_schema, unique(), avro(PERSON, [missing])) == (422, 42201)
    assert refused(client.register_schema, unique(), avro(PERSON)) == (422, 42201)


def test_compatibility_across_references(client: SchemaRegistryClient) -> None:
    """Each version is judged with the types its own references name: a change inside a
    referenced record decides the verdict on the record that references it."""
    address, person = unique("address"), unique("person")
    client.set_compatibility(address, "NONE")
    for text in (ADDRESS_V1, ADDRESS_V2_OPTIONAL, ADDRESS_V2_REQUIRED):
        client.register_schema(address, avro(text))
    client.set_compatibility(person, "BACKWARD")
    on = {n: SchemaReference("govsync.conf.Address", address, n) for n in (1, 2, 3)}
    client.register_schema(person, avro(PERSON, [on[1]]))
    assert client.test_compatibility(person, avro(PERSON, [on[2]])) is True
    assert client.test_compatibility(person, avro(PERSON, [on[3]])) is False
    assert client.test_compatibility_all_versions(person, avro(PERSON, [on[3]])) is False
    assert refused(client.register_schema, person, avro(PERSON, [on[3]])) == (409, 409)
    client.register_schema(person, avro(PERSON, [on[2]]))
    assert client.get_versions(person) == [1, 2]


# -- compatibility ------------------------------------------------------------------------------


def test_compatibility_endpoints(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique()
    client.set_compatibility(subject, "BACKWARD_TRANSITIVE")
    client.register_schema(subject, avro(V1))
    client.register_schema(subject, avro(V2))
    # reads what v1 and v2 wrote: the email has a default, the id is skipped
    without_id = record("Person", f("email", ["null", "string"], default=None))
    assert client.test_compatibility(subject, avro(V2_BAD), version=1) is False
    assert client.test_compatibility(subject, avro(without_id), version=2) is True
    assert client.test_compatibility_all_versions(subject, avro(without_id)) is True
    path = f"/compatibility/subjects/{subject}/versions"
    status, _, body = http(registry_url, "POST", f"{path}?verbose=true", {"schema": V2_BAD})
    assert status == 200 and body["is_compatible"] is False
    assert any("born" in m for m in body["messages"])
    status, _, body = http(registry_url, "POST", f"{path}/latest", {"schema": V2_BAD})
    assert (status, body) == (200, {"is_compatible": False})
    nobody = unique("nobody")
    assert client.test_compatibility(nobody, avro(V1)) is True
    assert client.test_compatibility_all_versions(nobody, avro(V1)) is True
    assert refused(client.test_compatibility, nobody, avro(V1), version=1) == (404, 40401)
    assert refused(client.test_compatibility, subject, avro(V1), version=9) == (404, 40402)
    broken = {"schema": '{"type": "record"'}
    assert error_of(http(registry_url, "POST", f"{path}/latest", broken)) == (422, 42201)


# -- config -------------------------------------------------------------------------------------


def test_subject_config(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique()
    assert error_of(http(registry_url, "GET", f"/config/{subject}")) == (404, 40408)
    status, _, body = http(registry_url, "GET", f"/config/{subject}?defaultToGlobal=true")
    assert status == 200 and body == {"compatibilityLevel": client.get_compatibility()}
    put = http(registry_url, "PUT", f"/config/{subject}", {"compatibility": "forward"})
    assert put[:3] == (200, CONTENT_TYPE, {"compatibility": "FORWARD"})
    client.set_config(subject, ServerConfig(compatibility_level=ConfigCompatibilityLevel.FULL))
    assert client.get_config(subject).compatibility_level == "FULL"
    invalid = http(registry_url, "PUT", f"/config/{subject}", {"compatibility": "SOMETIMES"})
    assert error_of(invalid) == (422, 42203)
    assert "Valid values are none, backward" in invalid[2]["message"]
    assert error_of(http(registry_url, "PUT", f"/config/{subject}", {})) == (422, 42203)
    rules = {"compatibility": "FULL", "defaultRuleSet": {"domainRules": []}}
    assert error_of(http(registry_url, "PUT", f"/config/{subject}", rules)) == (422, 42205)
    status, _, body = http(registry_url, "DELETE", f"/config/{subject}")
    assert (status, body) == (200, {"compatibilityLevel": "FULL"})
    assert error_of(http(registry_url, "DELETE", f"/config/{subject}")) == (404, 40401)


def test_global_config(stack: StackProvider, tmp_path: Path, supervisor: Supervisor) -> None:
    spec, url, _ = own_registry(stack, tmp_path, "registry-config")
    supervisor.start(spec)
    with fresh(url) as own:
        assert own.get_compatibility() == "BACKWARD"
        assert own.set_compatibility(level="full_transitive") == {
            "compatibility": "FULL_TRANSITIVE"
        }
        assert own.get_config().compatibility_level == "FULL_TRANSITIVE"
        assert http(url, "GET", "/config/any-subject?defaultToGlobal=true")[2] == {
            "compatibilityLevel": "FULL_TRANSITIVE"
        }
        assert own.delete_config().compatibility_level == "FULL_TRANSITIVE"
        assert own.get_compatibility() == "BACKWARD"


# -- mode ---------------------------------------------------------------------------------------


def test_subject_mode(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique()
    client.register_schema(subject, avro(V1))
    assert error_of(http(registry_url, "GET", f"/mode/{subject}")) == (404, 40409)
    assert http(registry_url, "GET", f"/mode/{subject}?defaultToGlobal=true")[2] == {
        "mode": "READWRITE"
    }
    assert client.update_mode(subject, "READONLY") == "READONLY"
    assert client.get_mode(subject) == "READONLY"
    assert refused(client.register_schema, subject, avro(V2)) == (422, 42205)
    assert refused(client.delete_version, subject, 1) == (422, 42205)
    assert client.lookup_schema(subject, avro(V1)).version == 1  # reads still work
    bad = http(registry_url, "PUT", f"/mode/{subject}", {"mode": "SOMETIMES"})
    assert error_of(bad) == (422, 42204)
    assert client.delete_mode(subject) == "READONLY"
    client.register_schema(subject, avro(V2))
    with_id = {"schema": V2_BAD, "id": 999_999, "version": 9}
    result = http(registry_url, "POST", f"/subjects/{subject}/versions", with_id)
    assert error_of(result) == (422, 42205)


def test_global_mode(stack: StackProvider, tmp_path: Path, supervisor: Supervisor) -> None:
    spec, url, _ = own_registry(stack, tmp_path, "registry-mode")
    supervisor.start(spec)
    with fresh(url) as own:
        assert own.get_global_mode() == "READWRITE"
        assert own.update_global_mode("IMPORT") == "IMPORT"  # an empty registry may import
        imported = {"schema": V1, "id": 1000, "version": 5}
        status, _, body = http(url, "POST", "/subjects/imported/versions", imported)
        assert (status, body["id"], body["version"]) == (200, 1000, 5)
        conflict = {"schema": V2, "id": 1000, "version": 6}
        assert error_of(http(url, "POST", "/subjects/imported/versions", conflict)) == (
            422,
            42207,
        )
        assert own.update_global_mode("READWRITE") == "READWRITE"
        after = own.register_schema_full_response("imported", avro(V2))
        assert (after.version, after.schema_id) == (6, 1001)  # versions and ids continue
        assert own.register_schema("other", avro(V2_BAD)) == 1002
        assert refused(own.update_global_mode, "IMPORT") == (422, 42205)
        assert own.update_global_mode("IMPORT", force=True) == "IMPORT"
        own.update_global_mode("READONLY_OVERRIDE")
        own.update_mode("other", "READWRITE")
        # the override wins over the subject's own mode
        assert refused(own.register_schema, "other", avro(V1)) == (422, 42205)
        own.update_global_mode("READWRITE")
        own.register_schema("other", avro(V1))


# -- subject names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a{b}", "{x}", "a/b/versions", "50%", "sp ace", "q?x#y", "Ünï€"])
def test_any_character_in_a_subject(client: SchemaRegistryClient, name: str) -> None:
    subject = f"{unique()}-{name}"
    schema_id = client.register_schema(subject, avro(V1))
    assert client.get_versions(subject) == [1]
    assert client.get_version(subject, 1).schema_id == schema_id
    assert client.get_latest_version(subject).subject == subject
    assert client.lookup_schema(subject, avro(V1)).subject == subject
    assert client.test_compatibility(subject, avro(V2)) is True
    assert subject in client.get_subjects(subject_prefix=subject)
    assert client.set_compatibility(subject, "FULL") == {"compatibility": "FULL"}
    assert client.get_compatibility(subject) == "FULL"
    assert client.update_mode(subject, "READWRITE") == "READWRITE"
    assert client.delete_mode(subject) == "READWRITE"
    assert client.get_subjects_by_schema_id(schema_id, subject_name=subject) == [subject]
    assert client.delete_subject(subject) == [1]
    assert client.delete_subject(subject, permanent=True) == [1]


CONTROL = ["%00", "a%0Ab", "%7F", "%C2%85"]  # NUL, newline, DEL, NEL (C1)


@pytest.mark.parametrize("encoded", CONTROL)
def test_control_characters_never_name_a_subject(registry_url: str, encoded: str) -> None:
    body = {"schema": V1}
    requests = [
        ("GET", f"/subjects/{encoded}/versions", None),
        ("POST", f"/subjects/{encoded}/versions", body),
        ("POST", f"/subjects/{encoded}", body),
        ("DELETE", f"/subjects/{encoded}", None),
        ("GET", f"/subjects/{encoded}/versions/1", None),
        ("DELETE", f"/subjects/{encoded}/versions/1", None),
        ("GET", f"/subjects/{encoded}/versions/1/referencedby", None),
        ("POST", f"/compatibility/subjects/{encoded}/versions", body),
        ("POST", f"/compatibility/subjects/{encoded}/versions/latest", body),
        ("GET", f"/config/{encoded}", None),
        ("PUT", f"/config/{encoded}", {"compatibility": "NONE"}),
        ("DELETE", f"/config/{encoded}", None),
        ("GET", f"/mode/{encoded}", None),
        ("PUT", f"/mode/{encoded}", {"mode": "READONLY"}),
        ("DELETE", f"/mode/{encoded}", None),
        ("GET", f"/schemas/ids/1?subject={encoded}", None),
    ]
    for method, path, payload in requests:
        assert error_of(http(registry_url, method, path, payload)) == (422, 42208), path


def test_context_qualified_subjects_are_refused(registry_url: str) -> None:
    result = http(registry_url, "POST", "/subjects/:.tenant:orders/versions", {"schema": V1})
    assert error_of(result) == (422, 42208)
    assert "Contexts are not supported" in result[2]["message"]


# -- requests the registry refuses --------------------------------------------------------------


def test_schema_bodies_refused(registry_url: str) -> None:
    path = f"/subjects/{unique()}/versions"
    empty = error_of(http(registry_url, "POST", path, {"schema": ""}))
    assert empty == (422, 42201)
    assert http(registry_url, "POST", path, {"schema": ""})[2]["message"] == "Empty schema"
    assert error_of(http(registry_url, "POST", path, {})) == (422, 42201)
    protobuf = {"schema": "syntax = 'proto3';", "schemaType": "PROTOBUF"}
    assert error_of(http(registry_url, "POST", path, protobuf)) == (422, 42201)
    rules = {"schema": V1, "ruleSet": {"domainRules": [{"name": "r", "kind": "CONDITION"}]}}
    assert error_of(http(registry_url, "POST", path, rules)) == (422, 42201)
    assert error_of(http(registry_url, "POST", path, data=b"{not json")) == (400, 400)


@pytest.mark.parametrize(
    "path",
    [
        "/contexts",
        "/contexts/.tenant/subjects",
        "/exporters",
        "/exporters/e/status",
        "/dek-registry/v1/keks",
        "/subjects/some-subject/metadata",
    ],
)
def test_parts_not_served_answer_404(registry_url: str, path: str) -> None:
    result = http(registry_url, "GET", path)
    assert error_of(result) == (404, 404)
    assert result[2]["message"].startswith("HTTP 404 Not Found")


def test_contexts_through_the_client(client: SchemaRegistryClient) -> None:
    assert refused(client.get_contexts) == (404, 404)
