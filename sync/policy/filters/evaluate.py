"""Evaluate a row filter against a row, with SQL's three-valued logic.

A condition is True, False or None (SQL's *unknown*), and the evaluator gives what
PostgreSQL's ``WHERE`` would give for the same filter on the same row:

- a comparison, ``in`` or ``not in`` with a null operand is unknown; ``is null`` and
  ``is not null`` are never unknown;
- ``not`` unknown is unknown; ``and`` is false if any operand is false, else unknown if any is
  unknown; ``or`` is true if any operand is true, else unknown if any is unknown;
- a row passes only when the filter is True (unknown excludes the row, as in ``WHERE``);
- a text literal compared with a date or timestamp is read as one (as PostgreSQL reads an
  untyped literal in the column's type); text orders by code point (``COLLATE "C"``);
  NaN equals NaN and sorts above every number (PostgreSQL's rule for numeric and float).

Values of types that cannot be compared (text with a number, a date with a timestamp) make
the comparison unknown here; :func:`~sync.policy.filters.check.check_filter` rejects such
filters before they run, so the database never sees them.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sync.policy.filters.nodes import (
    And,
    Compare,
    Expr,
    Field,
    In,
    IsNull,
    Literal,
    Not,
    Or,
)
from sync.temporal import FarValue, as_ordinal, parse_date, parse_timestamp, parse_timestamptz

Truth = bool | None

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def evaluate(expr: Expr, row: Mapping[str, Any]) -> Truth:
    """The filter's truth for ``row``: True, False, or None for unknown. A field missing from
    the row is null. Never raises for a tree the parser can build."""
    if isinstance(expr, And):
        return _all(evaluate(o, row) for o in expr.operands)
    if isinstance(expr, Or):
        return _any(evaluate(o, row) for o in expr.operands)
    if isinstance(expr, Not):
        return _negate(evaluate(expr.operand, row))
    if isinstance(expr, Compare):
        left, right = _aligned(expr.left, expr.right, row)
        return compare(expr.op, left, right)
    if isinstance(expr, In):
        found = _any(compare("==", *_aligned(expr.operand, v, row)) for v in expr.values)
        return _negate(found) if expr.negated else found
    if isinstance(expr, IsNull):
        return (_value(expr.operand, row) is None) != expr.negated
    value = _value(expr, row)
    return value if isinstance(value, bool) else None


def matches(expr: Expr | None, row: Mapping[str, Any]) -> bool:
    """True when ``row`` passes: no filter, or a filter that is True (not unknown)."""
    return expr is None or evaluate(expr, row) is True


def compare(op: str, left: Any, right: Any) -> Truth:
    """``left op right`` by PostgreSQL's rules; unknown for null or incomparable values."""
    if left is None or right is None:
        return None
    family = _family(left)
    if family is None or family != _family(right):
        return None
    if family == "number":
        left, right = _numeric_key(left), _numeric_key(right)
    elif isinstance(left, FarValue) or isinstance(right, FarValue):
        left, right = as_ordinal(left), as_ordinal(right)  # infinity, BC: as PostgreSQL
    try:
        return _OPERATORS[op](left, right)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _value(expr: Expr, row: Mapping[str, Any]) -> Any:
    if isinstance(expr, Field):
        return row.get(expr.name)
    if isinstance(expr, Literal):
        return expr.value
    return evaluate(expr, row)


def _aligned(left: Expr, right: Expr, row: Mapping[str, Any]) -> tuple[Any, Any]:
    """Both operands' values, a text literal read as the date or timestamp it meets."""
    a, b = _value(left, row), _value(right, row)
    if isinstance(right, Literal) and isinstance(b, str) and _family(a) in _TEMPORAL:
        b = _temporal(b, _family(a))
    elif isinstance(left, Literal) and isinstance(a, str) and _family(b) in _TEMPORAL:
        a = _temporal(a, _family(b))
    return a, b


_TEMPORAL = frozenset({"date", "timestamp", "local_timestamp"})


@lru_cache(maxsize=1024)
def _temporal(text: str, family: str | None) -> Any:
    """A text literal read as the date or timestamp it is compared with (``infinity`` and BC
    dates included, as PostgreSQL reads them)."""
    infinite = text in ("infinity", "-infinity")
    try:
        if family == "date":
            return parse_date(text) if infinite or ISO_DATE.fullmatch(text) else None
        if infinite:
            return parse_timestamptz(text) if family == "timestamp" else parse_timestamp(text)
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _family(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, FarValue):
        return value.family
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "timestamp" if value.tzinfo is not None else "local_timestamp"
    if isinstance(value, date):
        return "date"
    return None


def _numeric_key(value: int | float | Decimal) -> tuple[int, int | float | Decimal]:
    """NaN equals NaN and sorts above every number, as in PostgreSQL."""
    if isinstance(value, Decimal):
        nan = value.is_nan()
    else:
        nan = isinstance(value, float) and math.isnan(value)
    return (1, 0) if nan else (0, value)


def _negate(truth: Truth) -> Truth:
    return None if truth is None else not truth


def _all(truths: Iterable[Truth]) -> Truth:
    result: Truth = True
    for truth in truths:
        if truth is False:
            return False
        if truth is None:
            result = None
    return result


def _any(truths: Iterable[Truth]) -> Truth:
    result: Truth = False
    for truth in truths:
        if truth is True:
            return True
        if truth is None:
            result = None
    return result
