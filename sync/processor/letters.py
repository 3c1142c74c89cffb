"""What a processor's dead letter says about the exception that made it one.

The error text names the exception's type and what was wrong, never a value of the event:
a dead-letter topic may be read by people who may not see the agency's data.

- Our own errors (:class:`~sync.errors.GovsyncError`) are written without values, but some
  carry a library's message inside; their first line is kept, with every quoted string blanked
  but the names the error carries in its fields (a contract, a field).
- PostgreSQL and psycopg messages may quote a value (``invalid input syntax for type date:
  "..."``): only the part before the first colon is kept, and quoted strings are blanked but
  the names the server reports (constraint, column, table, type).
- Any other exception can say anything: only its type is kept, with the stage it came from.
"""

from __future__ import annotations

import re

import psycopg

from sync.errors import GovsyncError
from sync.kafka.deadletter import DeadLetter

MAX_ERROR = 200  # characters of error text in a letter
# a quoted string; a single quote only opens one after a non-letter (not the one in "can't")
_QUOTED = re.compile(r"\"([^\"]*)\"|(?<!\w)'([^']*)'")


def dead_letter(
    agency: str,
    reason: str,
    exc: BaseException,
    where: tuple[str, int, int],
    event_id: str = "",
    stage: str = "",
) -> DeadLetter:
    """The letter for the message at ``where`` (topic, partition, offset). ``reason`` is a
    bounded code (a metric label); ``stage`` says what was being done, for exceptions whose
    text is not kept."""
    topic, partition, offset = where
    return DeadLetter(
        reason=reason,
        error=error_text(exc, stage),
        topic=topic,
        event_id=event_id,
        agency=agency,
        partition=partition,
        offset=offset,
    )


def error_text(exc: BaseException, stage: str = "") -> str:
    """``exc`` in one bounded line, without the values it may quote."""
    name = type(exc).__name__
    if isinstance(exc, psycopg.Error):
        text = _postgres_text(exc)
    elif isinstance(exc, GovsyncError):
        names = {v for v in exc.fields.values() if isinstance(v, str) and v}
        text = _blank_quoted(_first_line(str(exc)), names)
    else:
        text = f"unexpected error while {stage}" if stage else "unexpected error"
    return f"{name}: {text}"[:MAX_ERROR] if text else name


def _postgres_text(exc: psycopg.Error) -> str:
    diag = exc.diag
    text = diag.message_primary or _first_line(str(exc))
    text = text.split(": ", 1)[0]  # PostgreSQL's style puts the offending value after a colon
    names = {
        name
        for name in (
            diag.constraint_name,
            diag.column_name,
            diag.table_name,
            diag.schema_name,
            diag.datatype_name,
        )
        if name
    }
    return _blank_quoted(text, names)


def _blank_quoted(text: str, names: set[str]) -> str:
    """``text`` with every quoted string that is not one of ``names`` replaced by "…"."""

    def blank(match: re.Match[str]) -> str:
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        return match.group(0) if quoted in names else '"…"'

    return _QUOTED.sub(blank, text)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""
