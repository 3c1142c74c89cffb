"""Text -> syntax tree: a hand-written tokenizer and a recursive-descent parser.

Nothing here evaluates the text: tokens are matched by regular expressions and turned into
:mod:`~sync.policy.filters.nodes` objects; there is no name lookup, call or attribute access.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from sync.policy.filters.nodes import (
    COMPARE_OPS,
    And,
    Compare,
    CompareOp,
    Expr,
    Field,
    FilterError,
    In,
    IsNull,
    Literal,
    Not,
    Or,
)
from sync.policy.identifiers import identifier_problem

MAX_LENGTH = 4000
MAX_DEPTH = 32
KEYWORDS = frozenset(("and", "or", "not", "in", "is", "null", "true", "false"))
_KEYWORD_VALUES = {"null": None, "true": True, "false": False}


class _T(Enum):
    NAME = "name"
    KEYWORD = "keyword"
    STRING = "string"
    NUMBER = "number"
    OP = "op"
    END = "end"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _T
    text: str
    column: int

    def shown(self) -> str:
        return "the end of the filter" if self.kind is _T.END else repr(self.text)


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)
_GLUED = re.compile(r"[A-Za-z0-9_.']")  # what may not directly follow a number


def _tokenize(text: str) -> Iterator[_Token]:
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _bad_character(text, pos)
        kind, token = match.lastgroup, match.group()
        if kind == "number" and _GLUED.match(text, match.end()):
            glued = text[pos : match.end() + 1]
            raise FilterError(f"malformed number {glued!r}", column=pos + 1, token=glued)
        if kind == "string" and "\x00" in token:
            raise FilterError("a string cannot hold a NUL character", column=pos + 1)
        if kind == "name":
            yield _name_token(token, pos + 1)
        elif kind != "space":
            yield _Token(_T(kind), token, pos + 1)
        pos = match.end()
    yield _Token(_T.END, "", len(text) + 1)


def _bad_character(text: str, pos: int) -> FilterError:
    char = text[pos]
    if char == "'":
        return FilterError("unterminated string", column=pos + 1, token=text[pos:])
    if char == "=":
        return FilterError(
            "'=' is not an operator: use '==' for equality", column=pos + 1, token="="
        )
    return FilterError(f"unexpected character {char!r}", column=pos + 1, token=char)


def _name_token(word: str, column: int) -> _Token:
    if word.lower() in KEYWORDS:
        return _Token(_T.KEYWORD, word.lower(), column)
    problem = identifier_problem(word)
    if problem is not None:
        raise FilterError(problem, column=column, token=word)
    return _Token(_T.NAME, word, column)


def parse_filter(text: str) -> Expr:
    """The syntax tree of ``text``; a :class:`FilterError` naming the column otherwise."""
    if len(text) > MAX_LENGTH:
        raise FilterError(f"a filter is at most {MAX_LENGTH} characters long")
    return _Parser(list(_tokenize(text))).parse()


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def parse(self) -> Expr:
        if self._peek().kind is _T.END:
            raise FilterError("the filter is empty", column=1)
        expr = self._or()
        if self._peek().kind is not _T.END:
            raise self._unexpected("'and', 'or' or the end of the filter")
        return expr

    def _or(self) -> Expr:
        operands = [self._and()]
        while self._accept_keyword("or"):
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self) -> Expr:
        operands = [self._not()]
        while self._accept_keyword("and"):
            operands.append(self._not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _not(self) -> Expr:
        token = self._peek()
        if self._accept_keyword("not"):
            with self._nested(token):
                return Not(self._not())
        return self._predicate()

    def _predicate(self) -> Expr:
        left = self._operand()
        token = self._peek()
        if token.kind is _T.OP and token.text in COMPARE_OPS:
            self.index += 1
            return self._comparison(left, token)
        if self._is_keyword(token, "in") or (
            self._is_keyword(token, "not") and self._is_keyword(self._peek(1), "in")
        ):
            return self._membership(left)
        if self._accept_keyword("is"):
            negated = self._accept_keyword("not")
            self._expect_keyword("null")
            return IsNull(left, negated, column=token.column)
        return left

    def _comparison(self, left: Expr, token: _Token) -> Compare:
        op: CompareOp = next(op for op in COMPARE_OPS if op == token.text)
        right = self._operand()
        if _is_null(left) or _is_null(right):
            raise FilterError(
                "a comparison with null is never true: use 'is null' or 'is not null'",
                column=token.column,
                token=token.text,
            )
        after = self._peek()
        if after.kind is _T.OP and after.text in COMPARE_OPS:
            raise FilterError(
                "comparisons do not chain: join them with 'and'",
                column=after.column,
                token=after.text,
            )
        return Compare(op, left, right, column=token.column)

    def _membership(self, operand: Expr) -> In:
        token = self._peek()
        negated = self._accept_keyword("not")
        self._expect_keyword("in")
        if _is_null(operand):
            raise FilterError("null is never in a list: use 'is null'", column=token.column)
        return In(operand, self._list(), negated, column=token.column)

    def _list(self) -> tuple[Literal, ...]:
        self._expect_op("[")
        if self._peek().text == "]" and self._peek().kind is _T.OP:
            raise FilterError(
                "a list needs at least one value", column=self._peek().column, token="]"
            )
        values = [self._list_value()]
        while self._accept_op(","):
            values.append(self._list_value())
        self._expect_op("]")
        return tuple(values)

    def _list_value(self) -> Literal:
        token = self._peek()
        value = self._literal(token)
        if value is None:
            raise self._unexpected("a value (text, number, true or false)")
        if value.value is None:
            raise FilterError(
                "a list cannot hold null: 'not in' would then never be true; use 'is null'",
                column=token.column,
                token=token.text,
            )
        self.index += 1
        return value

    def _operand(self) -> Expr:
        token = self._peek()
        if self._accept_op("("):
            with self._nested(token):
                expr = self._or()
            self._expect_op(")")
            return expr
        if token.kind is _T.NAME:
            self.index += 1
            return Field(token.text, column=token.column)
        literal = self._literal(token)
        if literal is None:
            raise self._unexpected("a field, a value or '('")
        self.index += 1
        return literal

    @staticmethod
    def _literal(token: _Token) -> Literal | None:
        if token.kind is _T.STRING:
            return Literal(token.text[1:-1].replace("''", "'"), column=token.column)
        if token.kind is _T.NUMBER:
            number = Decimal(token.text) if "." in token.text else int(token.text)
            return Literal(number, column=token.column)
        if token.kind is _T.KEYWORD and token.text in _KEYWORD_VALUES:
            return Literal(_KEYWORD_VALUES[token.text], column=token.column)
        return None

    @contextmanager
    def _nested(self, token: _Token) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(
                f"nested deeper than {MAX_DEPTH} levels", column=token.column, token=token.text
            )
        yield
        self.depth -= 1

    def _peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    @staticmethod
    def _is_keyword(token: _Token, word: str) -> bool:
        return token.kind is _T.KEYWORD and token.text == word

    def _accept_keyword(self, word: str) -> bool:
        if self._is_keyword(self._peek(), word):
            self.index += 1
            return True
        return False

    def _accept_op(self, op: str) -> bool:
        token = self._peek()
        if token.kind is _T.OP and token.text == op:
            self.index += 1
            return True
        return False

    def _expect_keyword(self, word: str) -> None:
        if not self._accept_keyword(word):
            raise self._unexpected(f"'{word}'")

    def _expect_op(self, op: str) -> None:
        if not self._accept_op(op):
            raise self._unexpected(f"'{op}'")

    def _unexpected(self, wanted: str) -> FilterError:
        token = self._peek()
        return FilterError(
            f"expected {wanted}, found {token.shown()}", column=token.column, token=token.text
        )


def _is_null(expr: Expr) -> bool:
    return isinstance(expr, Literal) and expr.value is None
