"""The rules of one Avro schema of a contract, walked field by field: names, docs,
classifications, logical types, nullable fields and defaults. :mod:`sync.contracts.lint` runs
them on every schema file with the contract-level rules (layout, key, attributes)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from sync.contracts.attributes import (
    PERSONAL_CLASSIFICATIONS,
    SUBJECT_ATTRIBUTE,
    SUBJECT_KINDS,
    is_placeholder,
    subject_named,
)
from sync.contracts.loader import CLASSIFICATIONS

NAMESPACE_ROOT = "vn.gov"
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer identifiers
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")

# PostgreSQL's reserved key words (reserved, and reserved "can be function or type"): none of
# them can name a column or a table without quoting, and quoting is what the rules avoid.
_RESERVED_WORDS = """
    all analyse analyze and any array as asc asymmetric authorization binary both case cast
    check collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user
    default deferrable desc distinct do else end except false fetch for foreign freeze from
    full grant group having ilike in initially inner intersect into is isnull join lateral
    leading left like limit localtime localtimestamp natural not notnull null offset on only
    or order outer overlaps placing primary references returning right select session_user
    similar some symmetric system_user table tablesample then to trailing true union unique
    user using variadic verbose when where window with
"""
SQL_RESERVED = frozenset(_RESERVED_WORDS.split())

# logical type -> the underlying types it may annotate
LOGICAL_TYPES: dict[str, frozenset[str]] = {
    "decimal": frozenset({"bytes", "fixed"}),
    "big-decimal": frozenset({"bytes"}),
    "uuid": frozenset({"string", "fixed"}),
    "date": frozenset({"int"}),
    "time-millis": frozenset({"int"}),
    "time-micros": frozenset({"long"}),
    "timestamp-millis": frozenset({"long"}),
    "timestamp-micros": frozenset({"long"}),
    "timestamp-nanos": frozenset({"long"}),
    "local-timestamp-millis": frozenset({"long"}),
    "local-timestamp-micros": frozenset({"long"}),
    "local-timestamp-nanos": frozenset({"long"}),
    "duration": frozenset({"fixed"}),
}


# attribute -> what a person writes in place of the scaffold's placeholder
_RECORD_FILL = {"doc": "say what one record is and which system it comes from"}
_FIELD_FILL = {
    "doc": "say what the field holds, in words a subscriber understands",
    "classification": f"choose one of {', '.join(CLASSIFICATIONS)}",
    SUBJECT_ATTRIBUTE: f"name the identifier the field holds ({', '.join(SUBJECT_KINDS)}), "
    "or remove the attribute if the field identifies no person",
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One broken rule: the file, the field (dotted path; empty for the record itself), the
    rule's name and what is wrong in words."""

    path: Path
    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        if self.field:
            return f"{display_path(self.path)}: field {self.field!r}: {self.message}"
        return f"{display_path(self.path)}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {
            "file": display_path(self.path),
            "field": self.field,
            "rule": self.rule,
            "message": self.message,
        }


def identifier_problem(name: str) -> str:
    """Why ``name`` cannot be a column or table name as it is; empty when it can."""
    if not SNAKE_CASE.fullmatch(name):
        return "is not lowercase snake_case (a-z, 0-9, single underscores, a letter first)"
    if name in SQL_RESERVED:
        return "is an SQL reserved word"
    if len(name) > MAX_IDENTIFIER:
        return f"is longer than {MAX_IDENTIFIER} characters, PostgreSQL's identifier limit"
    return ""


class SchemaRules:
    """The per-schema rules, walking nested records with a dotted field path."""

    def __init__(self, path: Path, domain: str) -> None:
        self.path = path
        self.namespace = f"{NAMESPACE_ROOT}.{domain}"
        self.issues: list[Issue] = []

    def check(self, schema: dict[str, Any]) -> list[Issue]:
        self._record(schema, field_path="", enclosing_namespace="")
        return self.issues

    def _issue(self, field_path: str, rule: str, message: str) -> None:
        self.issues.append(Issue(self.path, field_path, rule, message))

    def _named(self, schema: dict[str, Any], field_path: str, enclosing_namespace: str) -> str:
        """Check a named type's namespace; return the namespace its own names resolve in."""
        name = str(schema.get("name", ""))
        if "." in name:
            namespace = name.rpartition(".")[0]
        else:
            namespace = schema.get("namespace", enclosing_namespace) or ""
        what = f"{schema.get('type')} {name.rpartition('.')[2]!r}"
        if namespace != self.namespace:
            self._issue(
                field_path,
                "namespace",
                f"{what} has namespace {namespace!r}, but its directory requires "
                f"{self.namespace!r}",
            )
        return str(namespace)

    def _record(self, schema: dict[str, Any], field_path: str, enclosing_namespace: str) -> None:
        namespace = self._named(schema, field_path, enclosing_namespace)
        self._placeholders(schema, field_path, _RECORD_FILL)
        if not _has_text(schema.get("doc")):
            name = str(schema.get("name", "")).rpartition(".")[2]
            self._issue(field_path, "doc", f"record {name!r} has no doc")
        for item in schema.get("fields", []):
            if isinstance(item, dict):
                self._field(item, field_path, namespace)

    def _field(self, item: dict[str, Any], parent: str, namespace: str) -> None:
        name = str(item.get("name", ""))
        field_path = f"{parent}.{name}" if parent else name
        problem = identifier_problem(name)
        if problem:
            self._issue(field_path, "name", f"field name {problem}")
        if not _has_text(item.get("doc")):
            self._issue(field_path, "doc", "has no doc")
        unfilled = self._placeholders(item, field_path, _FIELD_FILL)
        if "classification" not in unfilled:
            self._classification(item.get("classification"), field_path)
        if SUBJECT_ATTRIBUTE not in unfilled:
            self._subject(name, item, field_path)
        if "logicalType" in item:
            self._issue(
                field_path,
                "logical-type",
                f"logicalType {item['logicalType']!r} is on the field, where Avro ignores it; "
                'put it in the type: {"type": ..., "logicalType": ...}',
            )
        avro_type = item.get("type")
        if avro_type == "null":
            self._issue(field_path, "nullable", 'has type null; a nullable field is ["null", T]')
        elif is_nullable(avro_type):
            if _is_option(avro_type) and ("default" not in item or item["default"] is not None):
                shown = "missing" if "default" not in item else json.dumps(item["default"])
                self._issue(
                    field_path,
                    "nullable",
                    f"is nullable but its default is {shown}; a nullable field defaults to null",
                )
        elif "default" in item and not _fits(item["default"], avro_type):
            self._issue(
                field_path,
                "default",
                f"default {json.dumps(item['default'])} is not a value of {show_type(avro_type)}",
            )
        self._type(avro_type, field_path, namespace)

    def _placeholders(
        self, item: dict[str, Any], field_path: str, fill: dict[str, str]
    ) -> set[str]:
        """Report each attribute still holding a scaffold placeholder; return their names."""
        unfilled = {key for key, value in item.items() if is_placeholder(value)}
        for key in sorted(unfilled):
            what = fill.get(key, "write its value")
            self._issue(field_path, "placeholder", f"{key} is still a placeholder: {what}")
        return unfilled

    def _classification(self, classification: Any, field_path: str) -> None:
        choices = ", ".join(CLASSIFICATIONS)
        if classification is None:
            self._issue(field_path, "classification", f"has no classification ({choices})")
        elif classification not in CLASSIFICATIONS:
            self._issue(
                field_path,
                "classification",
                f"classification {classification!r} is not one of {choices}",
            )

    def _subject(self, name: str, item: dict[str, Any], field_path: str) -> None:
        """A field whose name says it identifies a person carries ``govsync.subject`` of
        that kind, and a field marked so is personal data."""
        classification = item.get("classification")
        named = subject_named(name, classification)
        if SUBJECT_ATTRIBUTE not in item:
            if named:
                self._issue(
                    field_path,
                    "subject",
                    f"identifies a person (its name says {named}) but has no "
                    f'{SUBJECT_ATTRIBUTE}: add "{SUBJECT_ATTRIBUTE}": "{named}", so the audit '
                    "finds every disclosure about that person",
                )
            return
        subject = item[SUBJECT_ATTRIBUTE]
        if subject not in SUBJECT_KINDS:
            self._issue(
                field_path,
                "attribute",
                f"{SUBJECT_ATTRIBUTE} {subject!r} is not one of {', '.join(SUBJECT_KINDS)}",
            )
            return
        if named and named != subject:
            self._issue(
                field_path,
                "subject",
                f"{SUBJECT_ATTRIBUTE} {subject!r} contradicts the field's name, which says {named}",
            )
        if classification in CLASSIFICATIONS and classification not in PERSONAL_CLASSIFICATIONS:
            self._issue(
                field_path,
                "subject",
                f"identifies a person ({SUBJECT_ATTRIBUTE} {subject!r}) but is classified "
                f"{classification}; a person's identifier is personal or sensitive_personal",
            )

    def _type(self, avro_type: Any, field_path: str, namespace: str) -> None:
        if isinstance(avro_type, list):
            if not _is_option(avro_type):
                self._issue(
                    field_path,
                    "nullable",
                    f"union {show_type(avro_type)} is not allowed: the only union is "
                    '["null", T] for a nullable field',
                )
            for branch in avro_type:
                if branch != "null":
                    self._type(branch, field_path, namespace)
            return
        if not isinstance(avro_type, dict):
            return  # a primitive or a reference to a named type Avro already resolved
        kind = avro_type.get("type")
        if "logicalType" in avro_type:
            self._logical(avro_type, field_path)
        if kind == "record":
            self._record(avro_type, field_path, namespace)
        elif kind in ("enum", "fixed"):
            self._named(avro_type, field_path, namespace)
        elif kind == "array":
            self._type(avro_type.get("items"), f"{field_path}[]", namespace)
        elif kind == "map":
            self._type(avro_type.get("values"), f"{field_path}{{}}", namespace)
        elif isinstance(kind, dict | list):
            self._type(kind, field_path, namespace)

    def _logical(self, avro_type: dict[str, Any], field_path: str) -> None:
        logical, kind = avro_type["logicalType"], avro_type.get("type")
        allowed = LOGICAL_TYPES.get(logical)
        if allowed is None:
            known = ", ".join(sorted(LOGICAL_TYPES))
            self._issue(
                field_path, "logical-type", f"unknown logical type {logical!r} (known: {known})"
            )
            return
        if kind not in allowed:
            on = " or ".join(sorted(allowed))
            self._issue(
                field_path, "logical-type", f"logical type {logical} must be on {on}, not {kind}"
            )
        if logical == "decimal":
            self._decimal(avro_type, field_path)
        if kind == "fixed" and logical in ("uuid", "duration"):
            size = 16 if logical == "uuid" else 12
            if avro_type.get("size") != size:
                self._issue(
                    field_path,
                    "logical-type",
                    f"{logical} on fixed needs size {size}, not {avro_type.get('size')}",
                )

    def _decimal(self, avro_type: dict[str, Any], field_path: str) -> None:
        precision, scale = avro_type.get("precision"), avro_type.get("scale", 0)
        if not _is_int(precision) or precision < 1:
            self._issue(
                field_path,
                "logical-type",
                f"decimal needs a precision, a positive integer (has {json.dumps(precision)})",
            )
            return
        if not _is_int(scale) or scale < 0:
            self._issue(
                field_path,
                "logical-type",
                f"decimal scale must be a non-negative integer (has {json.dumps(scale)})",
            )
        elif scale > precision:
            self._issue(
                field_path,
                "logical-type",
                f"decimal scale {scale} is greater than its precision {precision}",
            )
        size = avro_type.get("size")
        if avro_type.get("type") == "fixed" and _is_int(size) and size > 0:
            most = math.floor(math.log10(2 ** (8 * size - 1) - 1))
            if precision > most:
                self._issue(
                    field_path,
                    "logical-type",
                    f"decimal precision {precision} does not fit in fixed size {size} "
                    f"(at most {most} digits)",
                )


def is_nullable(avro_type: Any) -> bool:
    return avro_type == "null" or (isinstance(avro_type, list) and "null" in avro_type)


def _is_option(avro_type: Any) -> bool:
    """``["null", T]``: the one union the rules allow."""
    return (
        isinstance(avro_type, list)
        and len(avro_type) == 2
        and avro_type[0] == "null"
        and avro_type[1] != "null"
    )


def _has_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _fits(value: Any, avro_type: Any) -> bool:
    """Whether ``value`` is a valid JSON default for ``avro_type`` (named references pass)."""
    if isinstance(avro_type, list):
        return bool(avro_type) and _fits(value, avro_type[0])  # a union's default: 1st branch
    if isinstance(avro_type, dict):
        kind = avro_type.get("type")
        if kind == "enum":
            return value in avro_type.get("symbols", [])
        if kind == "array":
            items = avro_type.get("items")
            return isinstance(value, list) and all(_fits(v, items) for v in value)
        if kind == "map":
            values = avro_type.get("values")
            return isinstance(value, dict) and all(_fits(v, values) for v in value.values())
        if kind == "record":
            return isinstance(value, dict)
        if kind == "fixed":
            return isinstance(value, str)
        avro_type = kind
    checks: dict[Any, bool] = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "int": _is_int(value),
        "long": _is_int(value),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "double": isinstance(value, int | float) and not isinstance(value, bool),
        "bytes": isinstance(value, str),
        "string": isinstance(value, str),
    }
    return checks.get(avro_type, True)


def show_type(avro_type: Any) -> str:
    return json.dumps(avro_type, separators=(", ", ": "))


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
