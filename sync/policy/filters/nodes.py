"""The syntax tree of a row filter, the error its parser and checker raise, and the canonical
text of a tree (``format_filter``), which parses back to the same tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal as TypingLiteral

from sync.errors import ConfigError

LiteralValue = str | int | Decimal | bool | None
CompareOp = TypingLiteral["==", "!=", "<", "<=", ">", ">="]
COMPARE_OPS: tuple[CompareOp, ...] = ("==", "!=", "<", "<=", ">", ">=")
ORDERING_OPS = frozenset(("<", "<=", ">", ">="))


class FilterError(ConfigError):
    """A row filter that cannot be parsed, or does not fit its contract. ``column`` is the
    1-based position in the filter's text (0 when the whole filter is meant), ``token`` the
    text found there."""

    def __init__(self, reason: str, *, column: int = 0, token: str = "") -> None:
        message = f"column {column}: {reason}" if column else reason
        super().__init__(message, reason=reason, column=column, token=token)
        self.reason = reason
        self.column = column
        self.token = token


class Kind(StrEnum):
    """What a field holds, as far as comparisons care."""

    STRING = "text"
    NUMBER = "number"
    BOOL = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp with time zone"
    LOCAL_TIMESTAMP = "timestamp without time zone"


@dataclass(frozen=True, slots=True)
class Field:
    """A reference to a field of the row; ``kind`` is set once checked against a contract."""

    name: str
    kind: Kind | None = field(default=None, compare=False)
    column: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Literal:
    value: LiteralValue
    column: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr
    column: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class In:
    """``operand in [values]``, or ``not in`` when negated. Values are non-null literals."""

    operand: Expr
    values: tuple[Literal, ...]
    negated: bool = False
    column: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IsNull:
    operand: Expr
    negated: bool = False
    column: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Field | Literal | Compare | In | IsNull | Not | And | Or


def fields_of(expr: Expr | None) -> frozenset[str]:
    """The names of the fields ``expr`` reads."""
    if expr is None or isinstance(expr, Literal):
        return frozenset()
    if isinstance(expr, Field):
        return frozenset((expr.name,))
    if isinstance(expr, Compare):
        return fields_of(expr.left) | fields_of(expr.right)
    if isinstance(expr, In | IsNull | Not):
        return fields_of(expr.operand)
    return frozenset().union(*(fields_of(o) for o in expr.operands))


def format_literal(value: LiteralValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text if "." in text else text + ".0"
    return str(value)


def format_filter(expr: Expr) -> str:
    """Canonical text of ``expr``: every compound operand in parentheses."""
    if isinstance(expr, Field):
        return expr.name
    if isinstance(expr, Literal):
        return format_literal(expr.value)
    if isinstance(expr, Compare):
        return f"{_operand(expr.left)} {expr.op} {_operand(expr.right)}"
    if isinstance(expr, In):
        values = ", ".join(format_literal(v.value) for v in expr.values)
        return f"{_operand(expr.operand)} {'not in' if expr.negated else 'in'} [{values}]"
    if isinstance(expr, IsNull):
        return f"{_operand(expr.operand)} is {'not null' if expr.negated else 'null'}"
    if isinstance(expr, Not):
        return f"not {_operand(expr.operand)}"
    joiner = " and " if isinstance(expr, And) else " or "
    return joiner.join(_operand(o) for o in expr.operands)


def _operand(expr: Expr) -> str:
    text = format_filter(expr)
    return text if isinstance(expr, Field | Literal) else f"({text})"
