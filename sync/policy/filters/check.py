"""Check a row filter against a contract before it runs, and bind each field to its kind.

The checked tree is what both sides run: the Python evaluator in the processor and the SQL of
:func:`~sync.policy.filters.sql.to_sql` in ``verify``. The check is what makes them agree: it
rejects what PostgreSQL would refuse at run time (comparing text with a number) and what it
would read differently (a timestamp literal without its offset, read in the session's zone).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sync.contracts.loader import Contract
from sync.policy.filters.evaluate import ISO_DATE
from sync.policy.filters.nodes import (
    And,
    Compare,
    Expr,
    Field,
    FilterError,
    In,
    IsNull,
    Kind,
    Literal,
    Not,
    Or,
    format_literal,
)

_PRIMITIVE_KINDS = {
    "string": Kind.STRING,
    "int": Kind.NUMBER,
    "long": Kind.NUMBER,
    "float": Kind.NUMBER,
    "double": Kind.NUMBER,
    "boolean": Kind.BOOL,
}
_LOGICAL_KINDS = {
    "date": Kind.DATE,
    "decimal": Kind.NUMBER,
    "timestamp-millis": Kind.TIMESTAMP,
    "timestamp-micros": Kind.TIMESTAMP,
    "local-timestamp-millis": Kind.LOCAL_TIMESTAMP,
    "local-timestamp-micros": Kind.LOCAL_TIMESTAMP,
}
_TEMPORAL = (Kind.DATE, Kind.TIMESTAMP, Kind.LOCAL_TIMESTAMP)
_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
_TIMESTAMP_TEXT = {
    Kind.TIMESTAMP: re.compile(_TIME + r"(?:Z|[+-][0-9]{2}:[0-9]{2})"),
    Kind.LOCAL_TIMESTAMP: re.compile(_TIME),
}
_TEXT_HINT = {
    Kind.DATE: "write a date as 'YYYY-MM-DD'",
    Kind.TIMESTAMP: "write a timestamp with its offset, e.g. '2025-07-01T00:00:00+07:00'",
    Kind.LOCAL_TIMESTAMP: "write a timestamp without offset, e.g. '2025-07-01T08:30:00'",
}


def kind_of(avro_type: Any) -> Kind | None:
    """The kind of values a field of ``avro_type`` holds; None when filters cannot compare it
    (bytes, arrays, records, times, uuids, unions of several types)."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        return kind_of(branches[0]) if len(branches) == 1 else None
    if isinstance(avro_type, str):
        return _PRIMITIVE_KINDS.get(avro_type)
    if not isinstance(avro_type, dict):
        return None
    if "logicalType" in avro_type:
        return _LOGICAL_KINDS.get(avro_type["logicalType"])
    if avro_type.get("type") == "enum":
        return Kind.STRING
    return kind_of(avro_type.get("type"))


def check_filter(expr: Expr, contract: Contract) -> Expr:
    """``expr`` with every field bound to its kind; a :class:`FilterError` when it names a
    field the contract lacks, compares values of different kinds, or is not a condition."""
    types = {f["name"]: f["type"] for f in contract.row_schema["fields"]}
    bound = _Binder(types, contract.topic).bind(expr)
    _require_condition(bound)
    return bound


def field_references(expr: Expr) -> tuple[Field, ...]:
    """The fields ``expr`` reads, each once, where it first appears in the filter's text (so an
    error can point at its column)."""
    first: dict[str, Field] = {}
    for field in sorted(_references(expr), key=lambda f: f.column):
        first.setdefault(field.name, field)
    return tuple(first.values())


def _references(expr: Expr) -> Iterator[Field]:
    if isinstance(expr, Field):
        yield expr
    elif isinstance(expr, Compare):
        yield from _references(expr.left)
        yield from _references(expr.right)
    elif isinstance(expr, In | IsNull | Not):
        yield from _references(expr.operand)
    elif isinstance(expr, And | Or):
        for operand in expr.operands:
            yield from _references(operand)


class _Binder:
    def __init__(self, types: dict[str, Any], topic: str) -> None:
        self.types = types
        self.topic = topic

    def bind(self, expr: Expr) -> Expr:
        if isinstance(expr, Field):
            return self._field(expr)
        if isinstance(expr, Literal):
            return expr
        if isinstance(expr, Compare):
            left, right = self.bind(expr.left), self.bind(expr.right)
            _check_comparable(left, right, expr.column, expr.op)
            return Compare(expr.op, left, right, column=expr.column)
        if isinstance(expr, In):
            operand = self.bind(expr.operand)
            for value in expr.values:
                _check_comparable(operand, value, value.column, format_literal(value.value))
            return In(operand, expr.values, expr.negated, column=expr.column)
        if isinstance(expr, IsNull):
            return IsNull(self.bind(expr.operand), expr.negated, column=expr.column)
        if isinstance(expr, Not):
            return Not(_require_condition(self.bind(expr.operand)))
        operands = tuple(_require_condition(self.bind(o)) for o in expr.operands)
        return And(operands) if isinstance(expr, And) else Or(operands)

    def _field(self, field: Field) -> Field:
        if field.name not in self.types:
            raise FilterError(
                f"unknown field {field.name!r}: not a field of {self.topic}",
                column=field.column,
                token=field.name,
            )
        kind = kind_of(self.types[field.name])
        if kind is None:
            raise FilterError(
                f"field {field.name!r} has a type filters cannot compare",
                column=field.column,
                token=field.name,
            )
        return Field(field.name, kind, column=field.column)


def _kind(expr: Expr) -> Kind | None:
    if isinstance(expr, Field):
        return expr.kind
    if isinstance(expr, Literal):
        value = expr.value
        if value is None:
            return None
        if isinstance(value, bool):
            return Kind.BOOL
        return Kind.STRING if isinstance(value, str) else Kind.NUMBER
    return Kind.BOOL


def _check_comparable(left: Expr, right: Expr, column: int, token: str) -> None:
    kinds = (_kind(left), _kind(right))
    if None in kinds or kinds[0] == kinds[1]:
        return
    for field_kind, other in ((kinds[0], right), (kinds[1], left)):
        if field_kind in _TEMPORAL and isinstance(other, Literal) and isinstance(other.value, str):
            _check_temporal_text(other, field_kind)
            return
    raise FilterError(
        f"cannot compare {_describe(left)} with {_describe(right)}", column=column, token=token
    )


def _check_temporal_text(literal: Literal, kind: Kind) -> None:
    text = str(literal.value)
    try:
        pattern = ISO_DATE if kind is Kind.DATE else _TIMESTAMP_TEXT[kind]
        valid = pattern.fullmatch(text) is not None
        if valid and kind is Kind.DATE:
            date.fromisoformat(text)  # raises for a day that does not exist
        elif valid:
            datetime.fromisoformat(text)
    except ValueError:
        valid = False
    if not valid:
        raise FilterError(
            f"{format_literal(text)} is not a {kind}: {_TEXT_HINT[kind]}",
            column=literal.column,
            token=format_literal(text),
        )


def _require_condition(expr: Expr) -> Expr:
    if _kind(expr) in (Kind.BOOL, None):
        return expr
    column, token = 0, ""
    if isinstance(expr, Field):
        column, token = expr.column, expr.name
    elif isinstance(expr, Literal):
        column, token = expr.column, format_literal(expr.value)
    raise FilterError(
        f"{_describe(expr)} is not a condition: compare it, e.g. with '=='",
        column=column,
        token=token,
    )


def _describe(expr: Expr) -> str:
    kind = _kind(expr)
    if isinstance(expr, Field):
        return f"field {expr.name!r} ({kind})"
    if isinstance(expr, Literal):
        return f"{format_literal(expr.value)} ({kind})"
    return "a condition (boolean)"
