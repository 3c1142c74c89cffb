"""The schema registry, seen only from outside: through Confluent's own Python client and
serializers, and through raw HTTP for error bodies and content types.

Needs a running registry whose base URL the session's ``registry_url`` fixture provides.
Every test uses its own subjects, so tests share one store without depending on each other;
none of them changes the global compatibility level or mode.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
LEVELS = {
    f"{kind}{suffix}" for kind in ("BACKWARD", "FORWARD", "FULL") for suffix in ("", "_TRANSITIVE")
}
LEVELS.add("NONE")


def record(name: str, *fields: dict[str, Any]) -> str:
    return json.dumps(
        {"type": "record", "name": name, "namespace": "govsync.test", "fields": fields}
    )


V1 = record("Citizen", {"name": "id", "type": "long"}, {"name": "name", "type": "string"})
# Adds a field with a default: the new schema can read v1 data (BACKWARD compatible).
V2 = record(
    "Citizen",
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "email", "type": ["null", "string"], "default": None},
)
# Adds a field without a default: the new schema cannot read v1 data.
V2_BAD = record(
    "Citizen",
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "born", "type": "int"},
)


def unique(prefix: str = "subject") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}-value"


@pytest.fixture
def client(registry_url: str) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient({"url": registry_url, "max.retries": 0}) as c:
        yield c


def http(
    registry_url: str, method: str, path: str, body: Any = None, content_type: str = CONTENT_TYPE
) -> tuple[int, str, Any]:
    """(status, Content-Type, decoded JSON body) of one raw request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(registry_url.rstrip("/") + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], json.loads(error.read())


def assert_error(result: tuple[int, str, Any], status: int, code: int) -> None:
    got_status, content_type, body = result
    assert (got_status, content_type) == (status, CONTENT_TYPE), body
    assert body["error_code"] == code
    assert isinstance(body["message"], str) and body["message"]


# -- registration -----------------------------------------------------------------------------


def test_register_is_idempotent_by_canonical_form(client: SchemaRegistryClient) -> None:
    subject = unique()
    first = client.register_schema(subject, Schema(V1, "AVRO"))
    # Same schema, different whitespace and key order: the same schema, not a new version.
    respelled = json.dumps(json.loads(V1), indent=2, sort_keys=True)
    second = client.register_schema_full_response(subject, Schema(respelled, "AVRO"))
    assert second.schema_id == first
    assert second.version == 1
    assert client.get_versions(subject) == [1]


def test_same_schema_under_another_subject_reuses_the_id(client: SchemaRegistryClient) -> None:
    schema = record("Shared", {"name": f"f{uuid.uuid4().hex}", "type": "string"})
    one, two = unique("one"), unique("two")
    first = client.register_schema(one, Schema(schema, "AVRO"))
    second = client.register_schema_full_response(two, Schema(schema, "AVRO"))
    assert second.schema_id == first
    assert (second.subject, second.version) == (two, 1)
    pairs = client.get_schema_versions(first)
    assert {(p.subject, p.version) for p in pairs} == {(one, 1), (two, 1)}
    assert sorted(client.get_subjects_by_schema_id(first)) == sorted([one, two])


def test_full_response_carries_what_the_client_reads(client: SchemaRegistryClient) -> None:
    subject = unique()
    registered = client.register_schema_full_response(subject, Schema(V1, "AVRO"))
    assert registered.subject == subject
    assert registered.version == 1
    assert isinstance(registered.schema_id, int) and registered.schema_id > 0
    assert registered.schema.schema_type == "AVRO"
    assert json.loads(registered.schema.schema_str or "null") == json.loads(V1)


def test_concurrent_registrations_agree_on_ids(registry_url: str) -> None:
    schema = record("Race", {"name": f"f{uuid.uuid4().hex}", "type": "long"})
    subjects = [unique("race") for _ in range(8)]

    def register(subject: str) -> int:
        with SchemaRegistryClient({"url": registry_url}) as own:
            return int(own.register_schema(subject, Schema(schema, "AVRO")))

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(register, subjects * 2))
    assert len(set(ids)) == 1


# -- reads ------------------------------------------------------------------------------------


def test_get_schema_by_id(client: SchemaRegistryClient, registry_url: str) -> None:
    schema_id = client.register_schema(unique(), Schema(V1, "AVRO"))
    with SchemaRegistryClient({"url": registry_url}) as fresh:  # no cache: a real GET
        fetched = fresh.get_schema(schema_id)
    assert json.loads(fetched.schema_str or "null") == json.loads(V1)
    assert fetched.schema_type == "AVRO"
    status, content_type, body = http(registry_url, "GET", f"/schemas/ids/{schema_id}")
    assert (status, content_type) == (200, CONTENT_TYPE)
    assert set(body) == {"schema"}  # Confluent leaves schemaType out for Avro


def test_latest_and_numbered_versions(client: SchemaRegistryClient) -> None:
    subject = unique()
    id1 = client.register_schema(subject, Schema(V1, "AVRO"))
    id2 = client.register_schema(subject, Schema(V2, "AVRO"))
    latest = client.get_latest_version(subject)
    assert (latest.subject, latest.version, latest.schema_id) == (subject, 2, id2)
    first = client.get_version(subject, 1)
    assert (first.version, first.schema_id) == (1, id1)
    assert json.loads(first.schema.schema_str or "null") == json.loads(V1)
    assert client.get_versions(subject) == [1, 2]
    assert subject in client.get_subjects()


def test_raw_schema_of_a_version(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique()
    client.register_schema(subject, Schema(V1, "AVRO"))
    status, content_type, body = http(registry_url, "GET", f"/subjects/{subject}/versions/1/schema")
    assert (status, content_type) == (200, CONTENT_TYPE)
    assert body == json.loads(V1)


def test_lookup(client: SchemaRegistryClient) -> None:
    subject = unique()
    schema_id = client.register_schema(subject, Schema(V1, "AVRO"))
    found = client.lookup_schema(subject, Schema(V1, "AVRO"))
    assert (found.subject, found.version, found.schema_id) == (subject, 1, schema_id)
    with pytest.raises(SchemaRegistryError) as missing_schema:
        client.lookup_schema(subject, Schema(V2, "AVRO"))
    assert (missing_schema.value.http_status_code, missing_schema.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as missing_subject:
        client.lookup_schema(unique("nobody"), Schema(V1, "AVRO"))
    assert missing_subject.value.error_code == 40401


# -- config and compatibility -----------------------------------------------------------------


def test_config_get_and_put(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique()
    assert client.get_compatibility() in LEVELS
    # A subject without its own level: Confluent answers 40408 unless defaultToGlobal=true.
    assert_error(http(registry_url, "GET", f"/config/{subject}"), 404, 40408)
    status, _, body = http(registry_url, "GET", f"/config/{subject}?defaultToGlobal=true")
    assert status == 200 and body == {"compatibilityLevel": client.get_compatibility()}
    assert http(registry_url, "PUT", f"/config/{subject}", {"compatibility": "full"})[2] == {
        "compatibility": "FULL"
    }
    assert client.get_compatibility(subject) == "FULL"
    assert str(client.get_config(subject).compatibility_level) == "FULL"
    assert_error(
        http(registry_url, "PUT", f"/config/{subject}", {"compatibility": "SOMETIMES"}), 422, 42203
    )


def test_backward_evolution(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique()
    client.set_compatibility(subject, "BACKWARD")
    client.register_schema(subject, Schema(V1, "AVRO"))
    assert client.test_compatibility(subject, Schema(V2, "AVRO")) is True
    assert client.test_compatibility(subject, Schema(V2_BAD, "AVRO")) is False
    client.register_schema(subject, Schema(V2, "AVRO"))
    with pytest.raises(SchemaRegistryError) as rejected:
        client.register_schema(subject, Schema(V2_BAD, "AVRO"))
    assert (rejected.value.http_status_code, rejected.value.error_code) == (409, 409)
    assert client.get_versions(subject) == [1, 2]
    body = {"schema": V2_BAD}
    assert_error(http(registry_url, "POST", f"/subjects/{subject}/versions", body), 409, 409)
    path = f"/compatibility/subjects/{subject}/versions/latest?verbose=true"
    status, _, verdict = http(registry_url, "POST", path, body)
    assert status == 200 and verdict["is_compatible"] is False
    assert any("born" in message for message in verdict["messages"])


def test_forward_and_none_levels(client: SchemaRegistryClient) -> None:
    forward, anything = unique("fwd"), unique("none")
    client.set_compatibility(forward, "FORWARD")
    client.set_compatibility(anything, "NONE")
    for subject in (forward, anything):
        client.register_schema(subject, Schema(V1, "AVRO"))
    # A new field without a default is FORWARD compatible: old readers skip it.
    client.register_schema(forward, Schema(V2_BAD, "AVRO"))
    unrelated = json.dumps("string")
    with pytest.raises(SchemaRegistryError) as rejected:
        client.register_schema(forward, Schema(unrelated, "AVRO"))
    assert rejected.value.error_code == 409
    client.register_schema(anything, Schema(unrelated, "AVRO"))
    assert client.get_versions(anything) == [1, 2]


# -- errors -----------------------------------------------------------------------------------


def test_error_bodies(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique()
    client.register_schema(subject, Schema(V1, "AVRO"))
    assert_error(http(registry_url, "GET", f"/subjects/{unique('nobody')}/versions"), 404, 40401)
    assert_error(http(registry_url, "GET", f"/subjects/{subject}/versions/99"), 404, 40402)
    assert_error(http(registry_url, "GET", f"/subjects/{subject}/versions/zero"), 422, 42202)
    assert_error(http(registry_url, "GET", "/schemas/ids/2147483000"), 404, 40403)
    unparseable = {"schema": '{"type": "record", "name": "Broken"'}
    assert_error(
        http(registry_url, "POST", f"/subjects/{subject}/versions", unparseable), 422, 42201
    )
    not_avro = {"schema": json.dumps({"type": "record", "name": "NoFields"})}
    assert_error(http(registry_url, "POST", f"/subjects/{subject}/versions", not_avro), 422, 42201)
    with pytest.raises(SchemaRegistryError) as missing:
        client.get_version(subject, 7)
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40402)


def test_accepted_request_content_types(registry_url: str) -> None:
    schema = {"schema": record("Typed", {"name": f"f{uuid.uuid4().hex}", "type": "int"})}
    for content_type in (CONTENT_TYPE, "application/vnd.schemaregistry+json", "application/json"):
        result = http(registry_url, "POST", f"/subjects/{unique()}/versions", schema, content_type)
        assert result[:2] == (200, CONTENT_TYPE), result
    for path in ("/subjects", "/config", "/schemas/types"):
        assert http(registry_url, "GET", path)[:2] == (200, CONTENT_TYPE)


# -- deletes ----------------------------------------------------------------------------------


def test_soft_then_permanent_delete(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique()
    schema_id = client.register_schema(subject, Schema(V1, "AVRO"))
    client.register_schema(subject, Schema(V2, "AVRO"))
    assert client.delete_version(subject, 2) == 2
    assert client.get_versions(subject) == [1]
    assert client.get_versions(subject, deleted=True) == [1, 2]
    assert_error(http(registry_url, "DELETE", f"/subjects/{subject}?permanent=true"), 404, 40405)
    assert client.delete_subject(subject) == [1]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)
    assert client.delete_subject(subject, permanent=True) == [1, 2]
    assert subject not in client.get_subjects(deleted=True)
    # Ids stay resolvable for data written before the delete.
    assert http(registry_url, "GET", f"/schemas/ids/{schema_id}")[0] == 200


# -- serializers ------------------------------------------------------------------------------


def test_serializer_round_trip(client: SchemaRegistryClient, registry_url: str) -> None:
    topic = f"citizens-{uuid.uuid4().hex[:12]}"
    serializer = AvroSerializer(client, V2)
    context = SerializationContext(topic, MessageField.VALUE)
    value = {"id": 42, "name": "Ada", "email": "ada@example.org"}
    data = serializer(value, context)
    assert data is not None and data[0] == 0
    registered = client.get_latest_version(f"{topic}-value")
    assert int.from_bytes(data[1:5], "big") == registered.schema_id
    with SchemaRegistryClient({"url": registry_url}) as fresh:
        deserializer = AvroDeserializer(fresh)
        assert deserializer(data, context) == value


# -- metrics ----------------------------------------------------------------------------------


def test_metrics_use_route_templates(client: SchemaRegistryClient, registry_url: str) -> None:
    subject = unique("metered")
    client.register_schema(subject, Schema(V1, "AVRO"))
    with urllib.request.urlopen(registry_url.rstrip("/") + "/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'govsync_registry_requests_total{endpoint="/subjects/{subject}/versions"' in text
    assert "govsync_registry_registrations_total" in text
    assert "govsync_registry_compatibility_rejections_total" in text
    assert subject not in text
