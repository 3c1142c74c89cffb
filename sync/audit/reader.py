"""The operator's side of the audit: walk chains to prove them intact, publish their heads as
anchors, and answer a data subject's question "who received what about me, when and why".

Synchronous psycopg: these run from the CLI, outside any event loop. Each call reads one
consistent snapshot (REPEATABLE READ), so writers appending meanwhile do not look like a
broken chain.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import IsolationLevel, sql

from sync.audit.chain import ChainWalk, Entry, Head
from sync.audit.schema import COLUMNS, ENTRIES, EXISTS, HEADS, STARTS, entry_of
from sync.audit.signing import Checkpoint, TrustedKeys

Connection = psycopg.Connection[tuple[Any, ...]]

_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
_HEADS = sql.SQL("SELECT agency, seq, hash FROM {} ORDER BY agency").format(HEADS)
# a loose index scan over the primary key: every agency with entries, without reading them all
_ENTRY_AGENCIES = sql.SQL(
    """
    WITH RECURSIVE a(agency) AS (
        (SELECT agency FROM {entries} ORDER BY agency LIMIT 1)
        UNION ALL
        SELECT (SELECT e.agency FROM {entries} e WHERE e.agency > a.agency
                ORDER BY e.agency LIMIT 1)
        FROM a WHERE a.agency IS NOT NULL
    )
    SELECT agency FROM a WHERE agency IS NOT NULL
    """
).format(entries=ENTRIES)
_START = sql.SQL("SELECT seq, hash, signed_at, key_id, signature FROM {} WHERE agency = %s").format(
    STARTS
)
_WALK = sql.SQL("SELECT {} FROM {} WHERE agency = %s ORDER BY seq").format(_COLUMNS, ENTRIES)
_ABOUT = sql.SQL(
    "SELECT {} FROM {} WHERE subjects && %s::text[] ORDER BY recorded_at, agency, seq"
).format(_COLUMNS, ENTRIES)


@contextmanager
def snapshot(dsn: str) -> Iterator[Connection]:
    """A read-only connection whose every query sees the same moment of the store."""
    with psycopg.connect(dsn) as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        yield conn


def store_exists(conn: Connection) -> bool:
    row = conn.execute(EXISTS).fetchone()
    return bool(row and row[0])


def chain_heads(conn: Connection) -> dict[str, Head]:
    return {agency: Head(agency, seq, bytes(h)) for agency, seq, h in conn.execute(_HEADS)}


def chain_agencies(conn: Connection) -> list[str]:
    """Every agency with a chain head or with entries (a head row may have been removed)."""
    with_entries = {row[0] for row in conn.execute(_ENTRY_AGENCIES)}
    return sorted(with_entries | chain_heads(conn).keys())


def chain_start(conn: Connection, agency: str) -> Checkpoint | None:
    """The signed cut a pruned chain starts at; None for a chain that starts at seq 1."""
    row = conn.execute(_START, (agency,)).fetchone()
    if row is None:
        return None
    seq, digest, signed_at, key_id, signature = row
    return Checkpoint("cut", agency, seq, bytes(digest), signed_at, key_id, bytes(signature))


def walk_chain(
    conn: Connection,
    agency: str,
    anchors: Mapping[int, bytes] | None = None,
    chunk_rows: int = 10_000,
    keys: TrustedKeys | None = None,
) -> ChainWalk:
    """Check one agency's whole chain, reading it through a server-side cursor in chunks;
    with ``keys``, its signatures too."""
    head = chain_heads(conn).get(agency)
    start = chain_start(conn, agency)
    walk = ChainWalk(agency, anchors=anchors or {}, start=start, keys=keys)
    with conn.cursor(name="govsync_audit_walk") as cursor:
        cursor.itersize = chunk_rows
        cursor.execute(_WALK, (agency,))
        for row in cursor:
            if walk.feed(entry_of(row)) is not None:
                break
    walk.finish(head)
    return walk


def disclosures_about(conn: Connection, subjects: Collection[str]) -> list[Entry]:
    """Every entry naming any of ``subjects`` (one person's identifiers, as entries store
    them: see :func:`~sync.audit.disclosure.subject_text`), oldest first."""
    return [entry_of(row) for row in conn.execute(_ABOUT, (list(subjects),))]
