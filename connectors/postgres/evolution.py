"""Source schema changes, seen in pgoutput Relation messages (and in the catalog at start).

pgoutput describes a table's columns before its first change in every decoding session and
again after ``ALTER TABLE``. The columns a table had when its capture began, and every column
seen since, are kept in ``govsync.captured_columns``: a column the contract leaves out on
purpose stays unpublished, and only a column that appears later counts as added, even when it
was added while the connector was down. When the columns differ from the table's contract:

* a compatible change (a column added, an optional one dropped) is registered as the next
  version of the value subject -- the subject's compatibility level decides -- and the table's
  events are encoded with it from then on. The registry holds the evolved contract; the log
  gives its schema id and the diff.
* anything else (a required column dropped, a type that no longer fits, a type without an Avro
  mapping, a version the registry refuses) stops *that table's* capture: an error naming the
  table, column and reason, ``govsync_connector_table_stopped`` set, and a row in
  ``govsync.stopped_table``. Its later changes are not published, but their keys are kept in
  ``govsync.stopped_key`` before the slot moves past them. Other tables flow on and the slot
  keeps advancing.

When the connector starts, each stopped table is compared again, with the catalog: once the
contract fits (it was fixed, or the source was), the table is snapshotted again, and every key
kept while it was stopped whose row is gone is deleted at that snapshot's first watermark.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from connectors.postgres import pgoutput
from connectors.postgres.delivery import Publisher
from connectors.postgres.schema_diff import SchemaDiff, diff
from sync.contracts import Contract
from sync.errors import RegistryError
from sync.metrics import ConnectorMetrics
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

log = logging.getLogger(__name__)

_CATALOG_COLUMNS = (
    "SELECT attname, atttypid::int, atttypmod FROM pg_attribute "
    "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
)
FROM_START = Position(Lsn(0), 0)


class SchemaWatch:
    """Keeps each captured table's contract in step with its source columns, or stops it."""

    def __init__(
        self,
        source: str,
        slot: str,
        contracts: Mapping[TableRef, Contract],
        publisher: Publisher,
        metrics: ConnectorMetrics,
        conn: psycopg.Connection[Any],
    ) -> None:
        self.source, self.slot, self.publisher, self.metrics = source, slot, publisher, metrics
        self.contracts = dict(contracts)
        self._conn = conn
        self._seen: dict[TableRef, tuple[tuple[str, int, int], ...]] = {}
        self._known: dict[TableRef, set[str]] = {}  # every column seen: the baseline
        self._added: dict[TableRef, set[str]] = {}  # columns this connector added to contracts
        self.stopped: dict[TableRef, Position] = {}

    def start(self, request_snapshot: Callable[[list[TableRef]], None]) -> None:
        """Compare every table with the catalog; resume stopped tables whose contract fits."""
        previously = self._stopped_rows()
        for table in self.contracts:
            columns = self._catalog_columns(table)
            self._load_columns(table, columns)
            self._compare(table, columns, FROM_START)
        resumed = [t for t in previously if t not in self.stopped]
        for table in resumed:
            log.info("table %s fits its contract again: capture resumes with a snapshot", table)
            self._conn.execute(
                "DELETE FROM govsync.stopped_table WHERE slot_name = %s AND table_name = %s",
                (self.slot, str(table)),
            )
        if resumed:
            request_snapshot(resumed)
        for table in self.contracts:
            self.metrics.table_stopped.labels(self.source, str(table)).set(
                int(table in self.stopped)
            )

    def on_relations(self, relations: Iterable[tuple[Position, pgoutput.Relation]]) -> None:
        for position, relation in relations:
            table = TableRef(relation.namespace, relation.name)
            if table in self.contracts and table not in self.stopped:
                self._compare(table, relation.columns, position)

    def keep(self, events: list[ChangeEvent]) -> list[ChangeEvent]:
        """``events`` without those of stopped tables from where each stopped; their keys are
        recorded first, so the slot may move past them."""
        if not self.stopped:
            return events
        kept, skipped = [], []
        for event in events:
            since = self.stopped.get(event.table)
            # a truncate carries no row, so no contract can misfit it: it is still published
            if since is None or event.position < since or event.op is Op.TRUNCATE:
                kept.append(event)
            elif event.op is not Op.READ:
                skipped.append(event)
        if skipped:
            with self._conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO govsync.stopped_key (slot_name, table_name, key) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    [(self.slot, str(e.table), _key_json(e)) for e in skipped],
                )
        return kept

    def _compare(
        self, table: TableRef, columns: Iterable[pgoutput.Column], position: Position
    ) -> None:
        columns = tuple(columns)
        shape = tuple((c.name, c.type_oid, c.type_modifier) for c in columns)
        if self._seen.get(table) == shape:
            return
        self._seen[table] = shape
        contract = self.contracts[table]
        fields = set(contract.field_names)
        unpublished = self._known[table] - self._added[table] - fields
        change = diff(contract, columns, unpublished)
        if not change.changed:
            self._save_columns(table, columns)
            return
        if change.problems:
            self._stop(table, position, "; ".join(change.problems))
            return
        evolved = dataclasses.replace(contract, row_schema=change.row_schema)
        try:
            schema_id = self.publisher.evolve(table, evolved)
        except RegistryError as exc:
            self._stop(table, position, f"the registry refuses the evolved contract: {exc}")
            return
        self.contracts[table] = evolved
        self._added[table] |= set(change.added)
        self._save_columns(table, columns)
        self.metrics.schema_changes.labels(self.source, str(table), "evolved").inc()
        log.warning(
            "source schema change of %s (%s): registered as schema id %s of %s; events carry "
            "it from %s index %d",
            table,
            change.describe(),
            schema_id,
            contract.value_subject,
            position.lsn,
            position.index,
        )

    def _stop(self, table: TableRef, position: Position, reason: str) -> None:
        self.stopped[table] = position
        self._conn.execute(
            "INSERT INTO govsync.stopped_table (slot_name, table_name, reason) VALUES (%s, %s, %s) "
            "ON CONFLICT (slot_name, table_name) DO UPDATE SET reason = excluded.reason",
            (self.slot, str(table), reason),
        )
        self.metrics.schema_changes.labels(self.source, str(table), "stopped").inc()
        self.metrics.table_stopped.labels(self.source, str(table)).set(1)
        log.error(
            "capture of %s stopped by a source schema change its contract cannot follow: %s. "
            "Other tables go on; fix the contract (or the source) and restart the connector to "
            "snapshot it again",
            table,
            reason,
        )

    def _load_columns(self, table: TableRef, catalog: list[pgoutput.Column]) -> None:
        """The table's baseline; on its first capture, the columns it has now."""
        row = self._conn.execute(
            "SELECT known, added FROM govsync.captured_columns "
            "WHERE slot_name = %s AND table_name = %s",
            (self.slot, str(table)),
        ).fetchone()
        if row is None:
            self._known[table], self._added[table] = set(), set()
            self._save_columns(table, catalog)
            return
        self._known[table], self._added[table] = set(row[0]), set(row[1])

    def _save_columns(self, table: TableRef, columns: Iterable[pgoutput.Column]) -> None:
        """Remember ``columns`` as seen; called only when the table may go on with them, so
        a column that stopped it still counts as added after a restart."""
        self._known[table] = {c.name for c in columns}
        self._conn.execute(
            "INSERT INTO govsync.captured_columns (slot_name, table_name, known, added) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (slot_name, table_name) DO UPDATE SET "
            "known = excluded.known, added = excluded.added",
            (self.slot, str(table), sorted(self._known[table]), sorted(self._added[table])),
        )

    def _stopped_rows(self) -> list[TableRef]:
        rows = self._conn.execute(
            "SELECT table_name FROM govsync.stopped_table WHERE slot_name = %s", (self.slot,)
        ).fetchall()
        by_name = {str(t): t for t in self.contracts}
        return [by_name[name] for (name,) in rows if name in by_name]

    def _catalog_columns(self, table: TableRef) -> list[pgoutput.Column]:
        name = sql.Identifier(table.schema, table.name).as_string(self._conn)
        rows = self._conn.execute(_CATALOG_COLUMNS, (name,)).fetchall()
        return [pgoutput.Column(0, name, oid, typmod) for name, oid, typmod in rows]


def _key_json(event: ChangeEvent) -> str:
    return json.dumps(dict(event.key), default=str, sort_keys=True)


__all__ = ["FROM_START", "SchemaDiff", "SchemaWatch"]
