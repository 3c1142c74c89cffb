"""Reading Avro schemas as parsed JSON: resolve references to named types, name a type's kind
and logical type, and describe a type in a few words for a reviewer.

Works on the JSON form rather than on ``avro.schema`` objects so that a change can be reported
with the schema's own spelling (names as written, aliases, docs, extra attributes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "enum", "fixed"})
# Avro's promotions that widen a number: the reader may be wider than the writer.
WIDENINGS = frozenset(
    {
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
    }
)


def full_name(definition: Mapping[str, Any], enclosing: str) -> tuple[str, str]:
    """(full name, namespace) of a named type defined inside namespace ``enclosing``."""
    name = str(definition.get("name", ""))
    if "." in name:
        return name, name.rpartition(".")[0]
    namespace = definition.get("namespace", enclosing) or ""
    return (f"{namespace}.{name}" if namespace else name), str(namespace)


class NamedTypes:
    """The named types of one schema, so references by name resolve to their definitions."""

    def __init__(self, schema: Any) -> None:
        self.named: dict[str, tuple[Mapping[str, Any], str]] = {}
        self._collect(schema, "")

    def _collect(self, schema: Any, namespace: str) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
            return
        if not isinstance(schema, Mapping):
            return
        kind = schema.get("type")
        if kind in NAMED:
            full, own = full_name(schema, namespace)
            self.named.setdefault(full, (schema, namespace))
            for item in schema.get("fields", []) if kind == "record" else []:
                if isinstance(item, Mapping):
                    self._collect(item.get("type"), own)
        elif kind == "array":
            self._collect(schema.get("items"), namespace)
        elif kind == "map":
            self._collect(schema.get("values"), namespace)
        elif isinstance(kind, Mapping | list):
            self._collect(kind, namespace)

    def resolve(self, schema: Any, namespace: str) -> tuple[Any, str]:
        """``schema`` with a name reference (or ``{"type": name}``) replaced by its definition;
        the namespace returned is the one the definition sits in."""
        for _ in range(64):  # a chain of references, never a loop in a valid schema
            if isinstance(schema, str) and schema not in PRIMITIVES:
                candidates = [schema]
                if "." not in schema and namespace:
                    candidates.insert(0, f"{namespace}.{schema}")
                for candidate in candidates:
                    if candidate in self.named:
                        schema, namespace = self.named[candidate]
                        break
                else:
                    return schema, namespace
            elif isinstance(schema, Mapping) and (
                isinstance(schema.get("type"), Mapping | list)
                or (isinstance(schema.get("type"), str) and _plain_reference(schema))
            ):
                schema = schema["type"]
            else:
                return schema, namespace
        return schema, namespace


def _plain_reference(schema: Mapping[str, Any]) -> bool:
    """``{"type": "vn.gov.x.Name"}``: a dict that only names another type."""
    kind = schema["type"]
    return kind not in PRIMITIVES and kind not in NAMED and kind not in ("array", "map")


def kind_of(schema: Any) -> str:
    """``union``, a primitive's name, or a complex type's ``type`` (``record``, ``array``...)."""
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, Mapping):
        kind = schema.get("type")
        return kind if isinstance(kind, str) else "unknown"
    return str(schema)


def logical_type(schema: Any) -> tuple[Any, ...]:
    """(logical type, precision, scale), empty for a type without one."""
    if not isinstance(schema, Mapping) or "logicalType" not in schema:
        return ()
    return (schema["logicalType"], schema.get("precision"), schema.get("scale", 0))


def describe(schema: Any) -> str:
    """A type in a few words: ``null | string``, ``int (date)``, ``record Address``."""
    if isinstance(schema, list):
        return " | ".join(describe(branch) for branch in schema)
    if isinstance(schema, str):
        return schema.rpartition(".")[2] if schema not in PRIMITIVES else schema
    if not isinstance(schema, Mapping):
        return json.dumps(schema)
    kind = schema.get("type")
    if isinstance(kind, Mapping | list):
        return describe(kind)
    logical = logical_type(schema)
    if logical and logical[0] == "decimal":
        base = f"{kind} (decimal {logical[1]},{logical[2]})"
    elif logical:
        base = f"{kind} ({logical[0]})"
    elif kind in NAMED:
        base = f"{kind} {str(schema.get('name', '')).rpartition('.')[2]}"
    elif kind == "array":
        base = f"array of {describe(schema.get('items'))}"
    elif kind == "map":
        base = f"map of {describe(schema.get('values'))}"
    else:
        base = str(kind)
    if kind == "fixed":
        base += f" (size {schema.get('size')})"
    return base
