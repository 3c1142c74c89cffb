"""How a table's published columns differ from its contract, and the contract they evolve to.

Pure: the columns come from a pgoutput Relation message (or the catalog, described the same
way) and the answer is data. Column types are compared through the contract's own mapping
(:func:`sync.contracts.columns.sql_type_of` and its inverse in :mod:`sync.contracts.sql_types`),
so the two directions cannot disagree.

* A column the table had when capture began and the contract leaves out stays unpublished: a
  contract may publish part of a table.
* An added column becomes an optional field, ``["null", T]`` with default null: events written
  before it existed carry null, and readers of the older contract ignore it. It is classified
  ``sensitive_personal`` until a reviewer says otherwise, so no subscription's allow-list takes
  it by accident.
* A dropped optional field is left out of the evolved contract (readers use its default).
* A dropped required field, a type that no longer fits, or a column type without an Avro
  mapping cannot flow on: they are *problems*, and the table's capture stops.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.postgres.pgoutput import Column
from connectors.postgres.values import ARRAY_ELEMENT_OIDS
from sync.contracts import Contract
from sync.contracts.columns import sql_type_of
from sync.contracts.sql_types import avro_type_of_sql, fits

NUMERIC_OID = 1700
_SQL_OF_OID = {
    16: "boolean",
    17: "bytea",
    19: "text",  # name
    20: "bigint",
    21: "smallint",
    23: "integer",
    25: "text",
    114: "text",  # json, carried as its text
    700: "real",
    701: "double precision",
    1042: "text",  # bpchar
    1043: "text",  # varchar
    1082: "date",
    1083: "time",
    1114: "timestamp",
    1184: "timestamptz",
    2950: "uuid",
    3802: "text",  # jsonb, carried as its text
}
_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ADDED_DOC = (
    "Column added at the source and carried automatically; not reviewed yet, so classified "
    "sensitive_personal until a reviewer changes the contract."
)


@dataclass(frozen=True, slots=True)
class SchemaDiff:
    """Columns added and dropped against the contract, what cannot flow on, and the contract's
    row schema evolved to the columns (meaningful only without problems)."""

    added: tuple[str, ...]
    dropped: tuple[str, ...]
    problems: tuple[str, ...]
    row_schema: dict[str, Any]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.dropped or self.problems)

    def describe(self) -> str:
        parts = [f"+{name}" for name in self.added] + [f"-{name}" for name in self.dropped]
        return ", ".join(parts) or "types"


def sql_type_of_column(type_oid: int, type_modifier: int) -> str | None:
    """The SQL type of a column as the contract layer names it, or None when unknown."""
    if type_oid == NUMERIC_OID:
        if type_modifier < 4:
            return "numeric"  # unconstrained: no fixed scale
        packed = type_modifier - 4
        return f"numeric({(packed >> 16) & 0xFFFF},{packed & 0xFFFF})"
    if type_oid in _SQL_OF_OID:
        return _SQL_OF_OID[type_oid]
    element = ARRAY_ELEMENT_OIDS.get(type_oid)
    inner = sql_type_of_column(element, type_modifier) if element is not None else None
    return f"{inner}[]" if inner else None


def diff(
    contract: Contract, columns: Sequence[Column], unpublished: Collection[str] = ()
) -> SchemaDiff:
    """How ``columns`` (as published, in order) differ from ``contract``'s row. Columns in
    ``unpublished`` were left out of the contract on purpose and are never added."""
    fields = {f["name"]: f for f in contract.row_schema["fields"]}
    by_name = {c.name: c for c in columns}
    problems: list[str] = []
    kept: list[dict[str, Any]] = []
    dropped: list[str] = []
    for name, field in fields.items():
        column = by_name.get(name)
        if column is None:
            dropped.append(name)
            if not _optional(field) or name in contract.key_fields:
                problems.append(f"column {name} was dropped; the contract requires it")
            continue
        wanted = sql_type_of(field["type"], where=f"{contract.topic}: field {name!r}")
        found = sql_type_of_column(column.type_oid, column.type_modifier)
        if not fits(wanted, found):
            problems.append(
                f"column {name} is now {found or f'type oid {column.type_oid}'}; the contract's "
                f"field holds {wanted}"
            )
        kept.append(field)
    added = [c for c in columns if c.name not in fields and c.name not in unpublished]
    for column in added:
        new, problem = _new_field(column)
        if problem:
            problems.append(problem)
        else:
            kept.append(new)
    row = {**copy.deepcopy(contract.row_schema), "fields": copy.deepcopy(kept)}
    return SchemaDiff(tuple(c.name for c in added), tuple(dropped), tuple(problems), row)


def _new_field(column: Column) -> tuple[dict[str, Any], str]:
    sql_type = sql_type_of_column(column.type_oid, column.type_modifier)
    avro = avro_type_of_sql(sql_type) if sql_type else None
    if not _AVRO_NAME.fullmatch(column.name):
        return {}, f"column {column.name!r} was added; its name is not a valid Avro field name"
    if avro is None:
        shown = sql_type or f"type oid {column.type_oid}"
        return {}, f"column {column.name} was added as {shown}, which has no Avro mapping"
    field = {
        "name": column.name,
        "type": ["null", avro],
        "default": None,
        "classification": "sensitive_personal",
        "doc": ADDED_DOC,
    }
    return field, ""


def _optional(field: dict[str, Any]) -> bool:
    kind = field["type"]
    return isinstance(kind, list) and "null" in kind and "default" in field
