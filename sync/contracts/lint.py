"""House rules for the contracts in ``schemas/avro/<domain>/``, checked before review.

Apache Avro accepts much that govsync cannot use: a field without a ``doc``, a decimal without
a precision (only a warning), a name with a space in it. These rules hold every contract to
what the replicas and the reviewers need:

* the record's namespace is ``vn.gov.<domain>``, ``<domain>`` being its directory;
* the record and every field carry a non-empty ``doc``;
* every field carries a ``classification``: public, internal, personal or sensitive_personal;
* logical types are well formed (a decimal has a precision and a scale not above it, on bytes
  or fixed; a date is an int; timestamps are longs…);
* a nullable field is ``["null", T]`` with default null, and no other union is allowed;
* names are lowercase snake_case and safe SQL identifiers (no SQL reserved word);
* every key field is in the row with the same type, and is not nullable.

:func:`lint` checks a whole directory and reports every failure, each naming its file and
field, instead of stopping at the first one as loading a contract does.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from sync.contracts.compatibility import InvalidSchema, Level, parse
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

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "enum", "fixed"})

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
            return f"{_display(self.path)}: field {self.field!r}: {self.message}"
        return f"{_display(self.path)}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {
            "file": _display(self.path),
            "field": self.field,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass(slots=True)
class LintReport:
    """Everything :func:`lint` found under ``root``."""

    root: Path
    contracts: int = 0
    files: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues

    def summary(self) -> str:
        where = _display(self.root)
        if self.ok:
            counted = f"{_count(self.contracts, 'contract')} ({_count(self.files, 'schema file')})"
            return f"schemas lint: {counted} under {where}: no problems"
        broken = len({i.path.parent / _entity_of(i.path) for i in self.issues})
        return (
            f"schemas lint: {_count(len(self.issues), 'problem')} in {broken} of "
            f"{_count(self.contracts, 'contract')} under {where}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "root": _display(self.root),
            "contracts": self.contracts,
            "files": self.files,
            "ok": self.ok,
            "issues": [i.to_json() for i in self.issues],
        }


def lint(root: Path) -> LintReport:
    """Check every contract under ``root`` (``<domain>/<entity>.avsc`` with its
    ``<entity>-key.avsc``) and return all the problems found."""
    report = LintReport(root)
    if not root.is_dir():
        report.issues.append(Issue(root, "", "layout", "is not a directory of contracts"))
        return report
    for path in sorted(root.glob("*.avsc")):
        report.files += 1
        report.issues.append(
            Issue(path, "", "layout", "is outside a <domain>/ directory, so no contract uses it")
        )
    for path in sorted(root.glob("*/*.avsc")):
        report.files += 1
        if path.stem.endswith("-key"):
            if not path.with_name(path.name.removesuffix("-key.avsc") + ".avsc").exists():
                message = "is a key schema without its row schema beside it"
                report.issues.append(Issue(path, "", "key", message))
            continue
        report.contracts += 1
        report.issues += lint_contract(path)
    return report


def lint_contract(path: Path) -> list[Issue]:
    """The problems of one contract: the row schema at ``path`` and its key schema."""
    domain, entity = path.parent.name, path.stem
    issues: list[Issue] = []
    for what, name in (("domain directory", domain), ("entity file name", entity)):
        problem = identifier_problem(name)
        if problem:
            issues.append(Issue(path, "", "name", f"{what} {name!r} {problem}"))
    row, row_issues = _read(path)
    issues += row_issues
    key_path = path.with_name(f"{entity}-key.avsc")
    key: dict[str, Any] | None = None
    if key_path.exists():
        key, key_issues = _read(key_path)
        issues += key_issues
    else:
        issues.append(
            Issue(path, "", "key", f"the contract has no key schema {key_path.name} beside it")
        )
    if row is not None:
        issues += _Schema(path, domain).check(row)
        issues += _attributes(path, row)
    if key is not None:
        issues += _Schema(key_path, domain).check(key)
    if row is not None and key is not None:
        issues += _key_in_row(key_path, row, key)
    return issues


def identifier_problem(name: str) -> str:
    """Why ``name`` cannot be a column or table name as it is; empty when it can."""
    if not SNAKE_CASE.fullmatch(name):
        return "is not lowercase snake_case (a-z, 0-9, single underscores, a letter first)"
    if name in SQL_RESERVED:
        return "is an SQL reserved word"
    if len(name) > MAX_IDENTIFIER:
        return f"is longer than {MAX_IDENTIFIER} characters, PostgreSQL's identifier limit"
    return ""


def _read(path: Path) -> tuple[dict[str, Any] | None, list[Issue]]:
    """The schema in ``path`` when it is a JSON record Avro can parse, with what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [Issue(path, "", "avro", f"cannot be read as JSON: {exc}")]
    if not isinstance(document, dict) or document.get("type") != "record":
        return None, [Issue(path, "", "avro", "is not an Avro record schema")]
    with warnings.catch_warnings():
        # Avro only warns about malformed logical types; the rules below report them.
        warnings.simplefilter("ignore")
        try:
            parse(text)
        except InvalidSchema as exc:
            return None, [Issue(path, "", "avro", f"is not a valid Avro schema: {exc.detail}")]
    if not isinstance(document.get("fields"), list):
        return None, [Issue(path, "", "avro", "has no list of fields")]
    return document, []


def _attributes(path: Path, row: dict[str, Any]) -> Iterator[Issue]:
    level = row.get("govsync.compatibility")
    if level is not None and level not in set(Level):
        choices = ", ".join(Level)
        yield Issue(
            path, "", "attribute", f"govsync.compatibility {level!r} is not one of {choices}"
        )
    table = row.get("govsync.table")
    if table is not None:
        problem = identifier_problem(table) if isinstance(table, str) else "is not a string"
        if problem:
            yield Issue(path, "", "name", f"govsync.table {table!r} {problem}")


def _key_in_row(key_path: Path, row: dict[str, Any], key: dict[str, Any]) -> Iterator[Issue]:
    row_types = {f.get("name"): f.get("type") for f in row["fields"] if isinstance(f, dict)}
    if not key["fields"]:
        yield Issue(key_path, "", "key", "has no fields: a key needs at least one")
    for key_field in key["fields"]:
        if not isinstance(key_field, dict):
            continue
        name, key_type = key_field.get("name", ""), key_field.get("type")
        if _nullable(key_type):
            yield Issue(key_path, name, "key", "is nullable, but a key field must always be set")
        if name not in row_types:
            yield Issue(key_path, name, "key", "is not a field of the row schema")
        elif row_types[name] != key_type:
            yield Issue(
                key_path,
                name,
                "key",
                f"has type {_show(key_type)} in the key but {_show(row_types[name])} in the row; "
                "they must be the same",
            )


class _Schema:
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
        classification = item.get("classification")
        if classification is None:
            choices = ", ".join(CLASSIFICATIONS)
            self._issue(field_path, "classification", f"has no classification ({choices})")
        elif classification not in CLASSIFICATIONS:
            choices = ", ".join(CLASSIFICATIONS)
            self._issue(
                field_path,
                "classification",
                f"classification {classification!r} is not one of {choices}",
            )
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
        elif _nullable(avro_type):
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
                f"default {json.dumps(item['default'])} is not a value of {_show(avro_type)}",
            )
        self._type(avro_type, field_path, namespace)

    def _type(self, avro_type: Any, field_path: str, namespace: str) -> None:
        if isinstance(avro_type, list):
            if not _is_option(avro_type):
                self._issue(
                    field_path,
                    "nullable",
                    f"union {_show(avro_type)} is not allowed: the only union is "
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


def _nullable(avro_type: Any) -> bool:
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


def _show(avro_type: Any) -> str:
    return json.dumps(avro_type, separators=(", ", ": "))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _entity_of(path: Path) -> str:
    return path.stem.removesuffix("-key")


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
