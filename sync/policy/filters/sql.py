"""Render a checked row filter as a SQL condition, so ``verify`` selects from the source
exactly the rows the processor lets through.

Names become ``sql.Identifier`` and values ``sql.Literal``: nothing of the filter's text is
pasted into SQL. Every compound is parenthesised, so precedence never depends on SQL's rules.
Text is ordered with ``COLLATE "C"`` (code point order, as in Python) whatever the database's
collation; equality needs no collation, as PostgreSQL's default collations are deterministic.
"""

from __future__ import annotations

from psycopg import sql

from sync.policy.filters.nodes import (
    ORDERING_OPS,
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
)

_SQL_OPS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def to_sql(expr: Expr) -> sql.Composable:
    """The SQL condition of ``expr``, which must come from
    :func:`~sync.policy.filters.check.check_filter` when it orders a field."""
    if isinstance(expr, Field):
        return sql.Identifier(expr.name)
    if isinstance(expr, Literal):
        return sql.SQL("NULL") if expr.value is None else sql.Literal(expr.value)
    if isinstance(expr, Compare):
        return _compare(expr)
    if isinstance(expr, In):
        values = sql.SQL(", ").join(sql.Literal(v.value) for v in expr.values)
        keyword = sql.SQL("NOT IN" if expr.negated else "IN")
        return sql.SQL("({} {} ({}))").format(to_sql(expr.operand), keyword, values)
    if isinstance(expr, IsNull):
        keyword = sql.SQL("IS NOT NULL" if expr.negated else "IS NULL")
        return sql.SQL("({} {})").format(to_sql(expr.operand), keyword)
    if isinstance(expr, Not):
        return sql.SQL("(NOT {})").format(to_sql(expr.operand))
    joiner = sql.SQL(" AND " if isinstance(expr, And) else " OR ")
    return sql.SQL("({})").format(joiner.join(to_sql(o) for o in expr.operands))


def _compare(expr: Compare) -> sql.Composable:
    left: sql.Composable = to_sql(expr.left)
    if expr.op in ORDERING_OPS:
        for side in (expr.left, expr.right):
            if isinstance(side, Field) and side.kind is None:
                raise FilterError(
                    f"field {side.name!r} is not bound to its contract: check the filter "
                    "with check_filter before rendering it as SQL",
                    column=side.column,
                    token=side.name,
                )
        if _is_text(expr.left) and _is_text(expr.right):
            left = sql.SQL('{} COLLATE "C"').format(left)
    return sql.SQL("({} {} {})").format(left, sql.SQL(_SQL_OPS[expr.op]), to_sql(expr.right))


def _is_text(expr: Expr) -> bool:
    if isinstance(expr, Field):
        return expr.kind is Kind.STRING
    return isinstance(expr, Literal) and isinstance(expr.value, str)
