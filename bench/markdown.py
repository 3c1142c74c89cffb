"""Markdown tables and number formats for the report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DASH = "-"


def section(title: str, body: list[str]) -> list[str]:
    return [f"## {title}", "", *body]


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table, followed by an empty line."""
    lines = [_row(header), _row("---" for _ in header)]
    lines += [_row(str(cell) for cell in row) for row in rows]
    return [*lines, ""]


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def per_second(value: object) -> str:
    """A rate with thousands separators, or a dash when missing."""
    return f"{float(value):,.0f}" if isinstance(value, int | float) else DASH


def seconds(value: object, digits: int = 1) -> str:
    return f"{float(value):.{digits}f}" if isinstance(value, int | float) else DASH


def millis(value: object) -> str:
    return f"{float(value) * 1000:,.0f} ms" if isinstance(value, int | float) else DASH


def mebibytes(value: object) -> str:
    return f"{float(value) / 2**20:,.0f}" if isinstance(value, int | float) and value else DASH


def share(value: object, digits: int = 0) -> str:
    return f"{float(value):.{digits}%}" if isinstance(value, int | float) else DASH
