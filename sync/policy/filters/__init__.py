"""Row filters: which rows of a topic a subscriber receives, as a small, safe expression.

A filter is parsed by a hand-written tokenizer and recursive-descent parser into a syntax tree
(:mod:`.nodes`); nothing is ever evaluated as Python. The tree is checked against the topic's
contract (:func:`check_filter`), evaluated against rows by the processor (:func:`evaluate`,
:func:`matches`), and rendered as SQL for ``verify`` (:func:`to_sql`), with the same result.

Grammar (keywords are case-insensitive; field names are lowercase contract fields)::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | predicate
    predicate  := operand [ compare operand
                          | ["not"] "in" list
                          | "is" ["not"] "null" ]
    operand    := field | literal | "(" or_expr ")"
    compare    := "==" | "!=" | "<" | "<=" | ">" | ">="
    list       := "[" value ("," value)* "]"
    literal    := value | "null"
    value      := 'text' | integer | decimal | "true" | "false"

Text is single-quoted, a quote inside doubled (``'N''Guyen'``); numbers are ``-12`` or
``3.25`` (no exponent). Comparisons do not chain, and ``not`` binds looser than a comparison
(``not a == 1`` is ``not (a == 1)``), as in SQL. Comparing with the ``null`` literal and
``null`` inside a list are refused: they are never true, so they are always a mistake.

Example::

    province_code in ['01', '79'] and date_of_birth < '2008-01-01'

A text literal compared with a date field is read as a date (``YYYY-MM-DD``) and compared as
a date, as PostgreSQL reads an untyped literal; with a timestamp field it must carry its UTC
offset (``'2025-07-01T00:00:00+07:00'``), so no session time zone changes its meaning. NULL
follows SQL's three-valued logic: see :mod:`.evaluate`.
"""

from sync.policy.filters.check import check_filter, kind_of
from sync.policy.filters.evaluate import Truth, compare, evaluate, matches
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
    fields_of,
    format_filter,
)
from sync.policy.filters.parser import MAX_DEPTH, MAX_LENGTH, parse_filter
from sync.policy.filters.sql import to_sql

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "Compare",
    "Expr",
    "Field",
    "FilterError",
    "In",
    "IsNull",
    "Kind",
    "Literal",
    "Not",
    "Or",
    "Truth",
    "check_filter",
    "compare",
    "evaluate",
    "fields_of",
    "format_filter",
    "kind_of",
    "matches",
    "parse_filter",
    "to_sql",
]
