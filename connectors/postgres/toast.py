"""Out-of-line (TOAST) values that an update left unchanged.

pgoutput does not send such a value unless the table has REPLICA IDENTITY FULL. Rather than
turn it into a null (wrong) or require FULL (more WAL on the agency's database), the connector
reads the row's current value by key, once per table per batch. That value is the one the
update left, or a newer one whose own change comes later in the log and wins in every replica.
If the row is gone, a later delete follows in the log, so the update is dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from connectors.postgres.changes import UNCHANGED
from sync.types import ChangeEvent, TableRef


def fill_unchanged(
    conn: psycopg.Connection[Any],
    events: Sequence[ChangeEvent],
    keys: Mapping[TableRef, tuple[str, ...]],
) -> list[ChangeEvent]:
    """``events`` with every unchanged out-of-line value read from the source."""
    wanted: dict[TableRef, set[tuple[Any, ...]]] = {}
    for event in events:
        if _incomplete(event):
            wanted.setdefault(event.table, set()).add(_key(event, keys[event.table]))
    if not wanted:
        return list(events)
    current = {table: _read(conn, table, keys[table], ids) for table, ids in wanted.items()}
    filled = []
    for event in events:
        if event.after is None or not _incomplete(event):
            filled.append(event)
            continue
        row = current[event.table].get(_key(event, keys[event.table]))
        if row is None:
            continue  # deleted since: its delete comes later in the log
        after = {k: (row[k] if v is UNCHANGED else v) for k, v in event.after.items()}
        filled.append(dataclasses.replace(event, after=after))
    return filled


def _incomplete(event: ChangeEvent) -> bool:
    return event.after is not None and any(v is UNCHANGED for v in event.after.values())


def _key(event: ChangeEvent, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(event.key[n] for n in names)


def _read(
    conn: psycopg.Connection[Any],
    table: TableRef,
    names: tuple[str, ...],
    ids: set[tuple[Any, ...]],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    key_list = sql.SQL(", ").join(map(sql.Identifier, names))
    values = sql.SQL(", ").join(
        sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Literal, key))) for key in ids
    )
    query = sql.SQL("SELECT * FROM {} WHERE ({}) IN ({})").format(
        sql.Identifier(table.schema, table.name), key_list, values
    )
    with conn.cursor() as cursor:
        cursor.execute(query)
        columns = [d.name for d in cursor.description or ()]
        rows = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
    return {tuple(r[n] for n in names): r for r in rows}
