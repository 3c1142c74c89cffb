"""Which names may reach SQL as identifiers: agency codes, source and database names, tables,
fields and hash key names in the manifest, and field references in row filters.

Every name is quoted with ``psycopg.sql.Identifier`` anyway; the rule here is the second line of
defence and keeps names portable: lowercase ASCII, at most 63 characters (PostgreSQL's limit),
and never a reserved SQL word, so no name needs quoting to be read back.
"""

from __future__ import annotations

import re

from sync.contracts.lint import SQL_RESERVED

SAFE_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,62}")

# PostgreSQL's reserved key words (the contracts' lint rule) and the statements that would make
# a name read like an injection attempt.
SQL_KEYWORDS = SQL_RESERVED | frozenset(("alter", "delete", "drop", "insert", "truncate", "update"))


def identifier_problem(name: str) -> str | None:
    """Why ``name`` is not a safe identifier, or None when it is."""
    if not SAFE_IDENTIFIER.fullmatch(name):
        return (
            f"unsafe identifier {name!r}: use 1 to 63 lowercase letters, digits and "
            "underscores, starting with a letter"
        )
    if name in SQL_KEYWORDS:
        return f"unsafe identifier {name!r}: a reserved SQL word"
    return None


def check_identifier(name: str) -> str:
    """``name`` itself when safe; a ValueError naming the problem otherwise (for validators)."""
    problem = identifier_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name
