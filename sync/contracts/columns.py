"""The SQL columns a contract describes, so the demo source tables and the replica tables are
created from the same definition as the Avro contract and cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync.contracts.loader import Contract
from sync.errors import ContractError

_PRIMITIVE_SQL = {
    "string": "text",
    "int": "integer",
    "long": "bigint",
    "boolean": "boolean",
    "float": "real",
    "double": "double precision",
    "bytes": "bytea",
}
_LOGICAL_SQL = {
    "date": "date",
    "timestamp-micros": "timestamptz",
    "timestamp-millis": "timestamptz",
    "local-timestamp-micros": "timestamp",
    "time-micros": "time",
    "uuid": "uuid",
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql_type: str
    nullable: bool
    classification: str
    in_key: bool


def columns_of(contract: Contract) -> list[Column]:
    """The contract's fields as SQL columns, key columns flagged."""
    keys = set(contract.key_fields)
    return [
        Column(
            name=f["name"],
            sql_type=sql_type_of(f["type"], where=f"{contract.path}: field {f['name']!r}"),
            nullable=_is_nullable(f["type"]),
            classification=f.get("classification", ""),
            in_key=f["name"] in keys,
        )
        for f in contract.row_schema["fields"]
    ]


def sql_type_of(avro_type: Any, *, where: str) -> str:
    """The PostgreSQL type that holds every value of ``avro_type`` exactly."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1:
            raise ContractError(f"{where}: only unions of null and one type map to a column")
        return sql_type_of(branches[0], where=where)
    if isinstance(avro_type, str):
        if avro_type in _PRIMITIVE_SQL:
            return _PRIMITIVE_SQL[avro_type]
        raise ContractError(f"{where}: type {avro_type!r} has no column mapping")
    logical = avro_type.get("logicalType")
    if logical == "decimal":
        return f"numeric({int(avro_type['precision'])},{int(avro_type.get('scale', 0))})"
    if logical in _LOGICAL_SQL:
        return _LOGICAL_SQL[logical]
    if avro_type.get("type") == "enum":
        return "text"
    if avro_type.get("type") == "array":
        return sql_type_of(avro_type["items"], where=where) + "[]"
    return sql_type_of(avro_type.get("type"), where=where)


def _is_nullable(avro_type: Any) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type
