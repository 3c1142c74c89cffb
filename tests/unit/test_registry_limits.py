"""The registry's parse limits, without a server: each is refused as Confluent's 42201 naming
the limit, whatever the shape of the input, and nothing deep ever escapes as RecursionError."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sync.errors import RegistryError
from sync.registry import avro_rules, parsing
from sync.registry.limits import SchemaLimits, check_schema_text
from sync.registry.model import Compatibility

SMALL = SchemaLimits(
    max_body_bytes=10_000,
    max_fields=5,
    max_union_branches=3,
    max_depth=10,
    max_name_length=8,
    max_references=1,
)


def record(*fields: Any, name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields)}


def refusal(text: str, limits: SchemaLimits = SMALL) -> str:
    with pytest.raises(RegistryError) as refused:
        check_schema_text(text, limits)
    assert (refused.value.http_status, refused.value.error_code) == (422, 42201)
    return refused.value.message


def test_fields_are_counted_over_every_record() -> None:
    inner = record({"name": "a", "type": "int"}, {"name": "b", "type": "int"}, name="In")
    outer = record(
        *({"name": f"f{i}", "type": "int"} for i in range(3)), {"name": "x", "type": inner}
    )
    assert "more than 5 fields" in refusal(json.dumps(outer))
    check_schema_text(
        json.dumps(record(*({"name": f"f{i}", "type": "int"} for i in range(5)))), SMALL
    )


def test_union_branches_names_depth_and_size() -> None:
    union = json.dumps(["null", "int", "string", "boolean"])
    assert "a union has 4 branches" in refusal(union)
    assert "characters long" in refusal(json.dumps({"type": "fixed", "name": "N" * 9, "size": 1}))
    symbols = {"type": "enum", "name": "E", "symbols": ["A", "TOO_LONG_NAME"]}
    assert "characters long" in refusal(json.dumps(symbols))
    assert "nests more than 10 levels" in refusal(json.dumps({"x": [[[[[[[[[[1]]]]]]]]]]}))
    assert "bytes, more than 10,000" in refusal(" " * 10_001)
    check_schema_text("not json at all", SMALL)  # Avro explains that one


@pytest.mark.parametrize("depth", [129, 5_000, 150_000])
def test_any_depth_is_a_42201(depth: int) -> None:
    deep = '{"type":"array","items":' * depth + '"long"' + "}" * depth
    with pytest.raises(RegistryError) as refused:
        avro_rules.parse(deep)
    assert refused.value.error_code == 42201
    assert "nests more than 128 levels" in refused.value.message


def test_references_are_bounded() -> None:
    with pytest.raises(RegistryError, match="depends on 2 schemas, more than 1"):
        avro_rules.parse('"int"', ['"long"', '"string"'], SMALL)


def test_a_schema_at_the_default_limits_parses_and_checks() -> None:
    deepest = '{"type":"array","items":' * 128 + '"long"' + "}" * 128
    parsed = avro_rules.parse(deepest)
    assert parsed.canonical.count("array") == 128
    assert (
        parsing.check(
            Compatibility.FULL, deepest, (), [parsing.Earlier(1, deepest)], SchemaLimits()
        )
        == []
    )


def test_decoding_a_body_never_recurses_out() -> None:
    with pytest.raises(RegistryError) as refused:
        parsing.decode_schema_body(b"[" * 100_000 + b"]" * 100_000)
    assert (refused.value.http_status, refused.value.error_code) == (400, 400)
