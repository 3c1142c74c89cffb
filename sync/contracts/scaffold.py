"""A new source table's contract, written from the source's catalog (``govsync schemas
scaffold``).

Each column becomes a field through the contract layer's own type mapping
(:func:`sync.contracts.sql_types.avro_type_of_sql`), so the contract carries the table exactly
as capture reads it and the replica is created with the same column types. A nullable column
becomes ``["null", T]`` with default null; the key is the table's primary key, or its replica
identity index.

What the catalog cannot know is left as placeholders (:mod:`sync.contracts.attributes`) that
``govsync schemas lint`` refuses until a person fills them: every doc, every classification,
and ``govsync.subject`` on each field whose name suggests a personal identifier.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync.contracts.attributes import SUBJECT_ATTRIBUTE, SUBJECT_KINDS, placeholder
from sync.contracts.lint_schema import NAMESPACE_ROOT
from sync.contracts.loader import CLASSIFICATIONS
from sync.contracts.sql_types import avro_type_of_sql
from sync.errors import ConfigError

_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# kind -> name parts that suggest it, matched as whole words of a snake_case name
_SUBJECT_HINTS: dict[str, tuple[str, ...]] = {
    "personal_id": (
        "personal_id",
        "citizen_id",
        "national_id",
        "identity_number",
        "id_card",
        "id_number",
        "cccd",
        "cmnd",
        "passport",
    ),
    "tax_code": ("tax_code", "tax_id", "tax_number", "mst"),
    "insurance_number": ("insurance_number", "insurance_no", "insurance_card", "bhxh", "bhyt"),
}
# endings of a name that may identify a person, of a kind the name does not say
_IDENTIFIER_ENDINGS = ("_id", "_number", "_no")


@dataclass(frozen=True, slots=True)
class SourceColumn:
    """A column as the catalog describes it. ``sql_type`` is named as the contract layer names
    it (``integer``, ``numeric(12,2)``, ``text[]``), None when no contract type holds it;
    ``type_name`` is PostgreSQL's own name, for messages."""

    name: str
    sql_type: str | None
    type_name: str
    nullable: bool
    comment: str = ""


@dataclass(frozen=True, slots=True)
class SourceTable:
    """A table as the catalog describes it: its columns in order and its key columns."""

    name: str
    columns: tuple[SourceColumn, ...]
    key: tuple[str, ...]
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Scaffold:
    """One table's contract: row and key schemas, or the problems that keep it from being
    written."""

    domain: str
    entity: str
    row_schema: dict[str, Any]
    key_schema: dict[str, Any]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def files(self, directory: Path) -> dict[Path, dict[str, Any]]:
        """The schema files of the contract in ``directory``: row, then key."""
        return {
            directory / f"{self.entity}.avsc": self.row_schema,
            directory / f"{self.entity}-key.avsc": self.key_schema,
        }


def scaffold_contract(
    table: SourceTable, source: str, *, exclude: Collection[str] = ()
) -> Scaffold:
    """The contract of ``table`` published by ``source`` (its domain), without the columns in
    ``exclude``; a column whose type has no Avro mapping is a problem unless excluded."""
    problems = [f"{table.name}: {p}" for p in _table_problems(table, exclude)]
    fields: list[dict[str, Any]] = []
    for column in table.columns:
        if column.name in exclude:
            continue
        field, problem = _field(column)
        if problem:
            problems.append(f"{table.name}: {problem}")
        else:
            fields.append(field)
    by_name = {f["name"]: f for f in fields}
    key_fields = [_key_field(by_name[name]) for name in table.key if name in by_name]
    name = record_name(table.name)
    row_doc = f"say what one {table.name} record is and which system it comes from"
    row = {
        **_record(name, source, row_doc + _comment(table.comment)),
        "govsync.source": source,
        "govsync.table": table.name,
        "govsync.compatibility": "FULL_TRANSITIVE",
        "fields": fields,
    }
    key_doc = f"say what identifies one {table.name} record"
    key = {**_record(f"{name}Key", source, key_doc), "fields": key_fields}
    return Scaffold(source, table.name, row, key, tuple(problems))


def write_scaffold(scaffold: Scaffold, directory: Path, *, force: bool = False) -> list[Path]:
    """Write the contract's two files; a :class:`ConfigError` when one exists, unless
    ``force``, and then neither is written."""
    files = scaffold.files(directory)
    existing = [path for path in files if path.exists()]
    if existing and not force:
        shown = ", ".join(str(path) for path in existing)
        raise ConfigError(f"{shown} already exists: not overwritten")
    directory.mkdir(parents=True, exist_ok=True)
    for path, schema in files.items():
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return list(files)


def suggested_subject(name: str) -> tuple[bool, str | None]:
    """Whether a field named ``name`` may identify a person, and the kind of identifier its
    name suggests (None when it does not say)."""
    words = f"_{name.lower()}_"
    for kind, hints in _SUBJECT_HINTS.items():
        if any(f"_{hint}_" in words for hint in hints):
            return True, kind
    return name.lower() == "id" or name.lower().endswith(_IDENTIFIER_ENDINGS), None


def record_name(table: str) -> str:
    """``land_use_right`` -> ``LandUseRight``."""
    return "".join(part[:1].upper() + part[1:] for part in table.split("_") if part)


def _table_problems(table: SourceTable, exclude: Collection[str]) -> list[str]:
    problems = [
        f"there is no column {name} to leave out"
        for name in sorted(set(exclude) - {c.name for c in table.columns})
    ]
    if not table.key:
        problems.append(
            "the table has no primary key (nor a replica identity index): a contract needs a "
            "key; add a primary key to the table"
        )
    problems += [
        f"column {name} is in the table's key: it cannot be left out"
        for name in table.key
        if name in exclude
    ]
    if not [c for c in table.columns if c.name not in exclude]:
        problems.append("no column is left to publish")
    return problems


def _field(column: SourceColumn) -> tuple[dict[str, Any], str]:
    """The field of ``column`` with its placeholders, or what keeps it from being one."""
    if not _AVRO_NAME.fullmatch(column.name):
        return {}, f"column {column.name!r}: its name is not a valid Avro field name"
    avro = avro_type_of_sql(column.sql_type) if column.sql_type else None
    if avro is None:
        hint = " (declare its precision and scale)" if column.type_name == "numeric" else ""
        return {}, (
            f"column {column.name} has type {column.type_name}, which no contract type holds "
            f"exactly{hint}; change the column's type or leave it out"
        )
    field: dict[str, Any] = {"name": column.name}
    if column.nullable:
        field.update({"type": ["null", avro], "default": None})
    else:
        field["type"] = avro
    field["classification"] = placeholder(" | ".join(CLASSIFICATIONS))
    may_identify, kind = suggested_subject(column.name)
    if may_identify:
        field[SUBJECT_ATTRIBUTE] = _subject_placeholder(column.name, kind)
    field["doc"] = placeholder(
        f"say what {column.name} holds (a column of type {column.type_name})"
        + _comment(column.comment)
    )
    return field, ""


def _key_field(field: dict[str, Any]) -> dict[str, Any]:
    return {**field, "doc": placeholder(f"say what {field['name']} identifies in the key")}


def _record(name: str, source: str, what_to_fill: str) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "namespace": f"{NAMESPACE_ROOT}.{source}",
        "doc": placeholder(what_to_fill),
    }


def _subject_placeholder(name: str, kind: str | None) -> str:
    kinds = " | ".join(SUBJECT_KINDS)
    guess = f"probably {kind}; " if kind else ""
    return placeholder(
        f"{guess}one of {kinds}, or remove this attribute if {name} identifies no person"
    )


def _comment(comment: str) -> str:
    return f"; the source's comment: {comment}" if comment.strip() else ""
