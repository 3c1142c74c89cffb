"""From a SQL column type to the Avro type a contract gives it: the inverse of
:func:`sync.contracts.columns.sql_type_of`, kept beside it so the two directions cannot disagree.

SQL types are named as the contract layer names them (``integer``, ``numeric(12,2)``,
``timestamptz``, ``text[]``). Capture uses this mapping for a column added at the source, and
``govsync schemas scaffold`` for every column of a new table.
"""

from __future__ import annotations

import copy
import re
from typing import Any

_AVRO_OF_SQL: dict[str, Any] = {
    "boolean": "boolean",
    "bytea": "bytes",
    "bigint": "long",
    "smallint": "int",
    "integer": "int",
    "text": "string",
    "real": "float",
    "double precision": "double",
    "date": {"type": "int", "logicalType": "date"},
    "time": {"type": "long", "logicalType": "time-micros"},
    "timestamp": {"type": "long", "logicalType": "local-timestamp-micros"},
    "timestamptz": {"type": "long", "logicalType": "timestamp-micros"},
    "uuid": {"type": "string", "logicalType": "uuid"},
}
# a contract type that holds every value of these narrower column types
_NARROWER = {
    "bigint": {"smallint", "integer"},
    "integer": {"smallint"},
    "double precision": {"real"},
}
_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")


def avro_type_of_sql(sql_type: str) -> Any | None:
    """The Avro type a field of ``sql_type`` gets, or None when none holds it exactly (an
    unconstrained ``numeric`` has no fixed scale, so no Avro decimal holds it)."""
    if sql_type.endswith("[]"):
        inner = avro_type_of_sql(sql_type[:-2])
        return {"type": "array", "items": ["null", inner]} if inner is not None else None
    numeric = _NUMERIC.fullmatch(sql_type)
    if numeric:
        precision, scale = int(numeric[1]), int(numeric[2])
        return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}
    return copy.deepcopy(_AVRO_OF_SQL.get(sql_type))


def fits(contract_sql: str, column_sql: str | None) -> bool:
    """Every value of the column fits the contract's field (both as SQL types; a column type
    without a name here is None)."""
    if column_sql is None:
        return contract_sql == "text"  # unknown types are carried as their text
    if contract_sql == column_sql or column_sql in _NARROWER.get(contract_sql, ()):
        return True
    if contract_sql.endswith("[]") and column_sql.endswith("[]"):
        return fits(contract_sql[:-2], column_sql[:-2])
    ours, theirs = _NUMERIC.fullmatch(contract_sql), _NUMERIC.fullmatch(column_sql)
    if ours and column_sql == "numeric":
        return True  # unconstrained at the source: each value is checked as it is encoded
    return bool(ours and theirs and ours[2] == theirs[2] and int(theirs[1]) <= int(ours[1]))
