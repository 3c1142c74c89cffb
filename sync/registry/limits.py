"""Bounds on what the registry agrees to parse, so no request can make it work without end.

Apache Avro's Python parser and compatibility checker are quadratic in places (a record's field
names are checked against a list, a union's branch types likewise, and the checker rebuilds a
record's field map for every field it looks up), and recursive, so a schema with 100,000 fields
keeps a CPU busy for minutes and one nested a few hundred levels deep exhausts the stack. Every
schema text is measured here first, without recursion, and refused as a 42201 invalid schema
with the limit it broke; what passes costs at most about a second to parse or check.

The defaults leave room for the schemas govsync generates: a PostgreSQL table has at most
1,600 columns, and its change event nests a few records deep.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sync.config import RegistrySettings
from sync.registry.model import invalid_schema


@dataclass(frozen=True, slots=True)
class SchemaLimits:
    """What one schema may hold. Each bound is checked before Avro sees the text."""

    max_body_bytes: int = 4 * 1024 * 1024  # a request body, and a schema text
    max_fields: int = 2_000  # record fields, all records of the schema together
    max_union_branches: int = 256  # in any one union
    max_depth: int = 128  # JSON nesting; Avro's recursion fails near 300
    max_name_length: int = 512  # names, namespaces, aliases, field names, enum symbols
    max_references: int = 100  # schemas a schema depends on, transitively

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> SchemaLimits:
        return cls(
            max_body_bytes=settings.registry_max_body_bytes,
            max_fields=settings.registry_max_fields,
            max_union_branches=settings.registry_max_union_branches,
            max_depth=settings.registry_max_depth,
            max_name_length=settings.registry_max_name_length,
            max_references=settings.registry_max_references,
        )


DEFAULT_LIMITS = SchemaLimits()


def check_schema_text(text: str, limits: SchemaLimits) -> None:
    """Refuse ``text`` (42201) when it breaks one of ``limits``; a text that is not JSON
    passes through, for Avro to explain."""
    size = len(text.encode())
    if size > limits.max_body_bytes:
        raise invalid_schema(f"the schema is {size:,} bytes, more than {limits.max_body_bytes:,}")
    try:
        document = json.loads(text)
    except RecursionError:
        raise _too_deep(limits) from None
    except ValueError:
        return
    if _json_depth(document) > limits.max_depth:
        raise _too_deep(limits)
    _check_types(document, limits)


def _too_deep(limits: SchemaLimits) -> Exception:
    return invalid_schema(f"the schema nests more than {limits.max_depth} levels deep")


def _json_depth(document: Any) -> int:
    """The nesting depth of a decoded JSON document (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def _check_types(document: Any, limits: SchemaLimits) -> None:
    """Count fields and union branches and measure names, walking the schema's types."""
    fields = 0
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            if len(node) > limits.max_union_branches:
                raise invalid_schema(
                    f"a union has {len(node):,} branches, more than {limits.max_union_branches:,}"
                )
            stack.extend(node)
        elif isinstance(node, dict):
            for name in _names(node):
                _check_name(name, limits)
            kind = node.get("type")
            if isinstance(kind, dict | list):
                stack.append(kind)
            record_fields = node.get("fields") if kind in ("record", "error") else None
            if isinstance(record_fields, list):
                fields += len(record_fields)
                if fields > limits.max_fields:
                    raise invalid_schema(
                        f"the schema has more than {limits.max_fields:,} fields (records together)"
                    )
                for field in record_fields:
                    if isinstance(field, dict):
                        stack.append(field.get("type"))
                        for name in _names(field):
                            _check_name(name, limits)
            stack.extend(node.get(key) for key in ("items", "values") if key in node)


def _names(node: dict[str, Any]) -> Iterator[object]:
    """Every name a type or field declares: its name, namespace, aliases and symbols."""
    yield node.get("name")
    yield node.get("namespace")
    for key in ("aliases", "symbols"):
        listed = node.get(key)
        if isinstance(listed, list) and (key == "aliases" or node.get("type") == "enum"):
            yield from listed


def _check_name(name: object, limits: SchemaLimits) -> None:
    if isinstance(name, str) and len(name) > limits.max_name_length:
        raise invalid_schema(
            f"the name {name[:40]!r}... is {len(name):,} characters long, "
            f"more than {limits.max_name_length:,}"
        )
