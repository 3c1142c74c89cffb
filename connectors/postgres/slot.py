"""The source side of capture: publication, logical replication slot, reading and releasing WAL.

Changes are read through SQL with ``pg_logical_slot_peek_binary_changes`` (pgoutput), which
leaves the slot where it is; the slot moves only in :meth:`SlotReader.advance`, called after the
broker acknowledged every event up to that position. A crash between the two re-reads the same
changes, which carry the same positions and event ids, so sinks drop the duplicates.

Why peek over SQL rather than the streaming replication protocol: psycopg 3 has no
replication-protocol support, and peeking reads pgoutput into Python faster here (200k
messages in ~0.8 s against ~2.5 s through psycopg2's per-message callback), at the cost of
polling. PostgreSQL returns whole transactions from a peek, so a batch always ends on a commit.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from connectors.postgres.session import capture_conninfo
from sync.errors import SourceNotReady
from sync.types import Lsn, TableRef

log = logging.getLogger(__name__)

# readable?, primary key?, replica identity, a unique index on exactly the (sorted) key columns?
_TABLE_FACTS = """
SELECT has_table_privilege(c.oid, 'SELECT'),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
       c.relreplident::text,
       EXISTS (
           SELECT 1 FROM pg_index i
           WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
             AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = i.indnatts
             AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text)
                  FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum = ANY (i.indkey)) = %s::text[]
       )
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'r'
"""


class SlotReader:
    """Owns the source connection used to read the slot. A context manager."""

    def __init__(self, dsn: str, slot: str, publication: str, source: str) -> None:
        self.dsn, self.slot, self.publication, self.source = dsn, slot, publication, source
        # pgoutput prints values under this session's settings: ours, not the database's
        self._conn = psycopg.connect(
            capture_conninfo(dsn), autocommit=True, application_name=f"govsync-{slot}"
        )
        self._restart_points_refused = False
        self._quiet_decoding_log()

    def __enter__(self) -> SlotReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._conn.closed:
            self._conn.close()

    def _quiet_decoding_log(self) -> None:
        """Every peek starts a logical decoding session, which PostgreSQL reports at LOG level
        (three lines per poll). Where the role may, silence them for this session only; the
        connector reports errors of its own session itself."""
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            self._conn.execute("SET log_min_messages = fatal")

    def check_preconditions(self) -> None:
        """Fail with what to fix when the source cannot be captured."""
        level = self._scalar("SHOW wal_level")
        if level != "logical":
            raise SourceNotReady(
                f"source {self.source!r}: wal_level is {level!r}; set wal_level = logical in "
                "postgresql.conf and restart the server",
                source=self.source,
                check="wal_level",
            )
        allowed = self._scalar(
            "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        if not allowed:
            raise SourceNotReady(
                f"source {self.source!r}: the connector's role lacks the REPLICATION attribute "
                "(ALTER ROLE ... REPLICATION)",
                source=self.source,
                check="replication",
            )

    def check_tables(self, tables: Mapping[TableRef, tuple[str, ...]]) -> None:
        """Every captured table exists, the connector's role may read it, and its changes can
        be keyed: by its primary key, or, without one, by the contract's declared key when the
        table has ``REPLICA IDENTITY FULL`` and a unique index on exactly those columns."""
        for table, key in tables.items():
            row = self._conn.execute(_TABLE_FACTS, (sorted(key), table.schema, table.name))
            facts = row.fetchone()
            if facts is None:
                raise self._not_ready(
                    f"table {table} does not exist; create it or leave its entity out of "
                    "GOVSYNC_TABLES",
                    "table_missing",
                )
            readable, has_primary_key, identity, unique_on_key = facts
            if not readable:
                user = self._scalar("SELECT current_user")
                raise self._not_ready(
                    f"the connector's role {user!r} lacks SELECT on table {table}, which "
                    f"snapshots and unchanged large values are read from (GRANT SELECT ON "
                    f"{table} TO {user})",
                    "select_privilege",
                )
            if not has_primary_key:
                self._check_declared_key(table, key, identity, unique_on_key)

    def _check_declared_key(
        self, table: TableRef, key: tuple[str, ...], identity: str, unique_on_key: bool
    ) -> None:
        columns = ", ".join(key)
        if identity != "f":
            raise self._not_ready(
                f"table {table} has no primary key; add one, or capture it by its contract's "
                f"key ({columns}) with ALTER TABLE {table} REPLICA IDENTITY FULL, so updates "
                "and deletes carry the whole old row",
                "key",
            )
        if not unique_on_key:
            raise self._not_ready(
                f"table {table} has no primary key and no unique index on its contract's key "
                f"({columns}); snapshots read it in chunks ordered by that key, which must be "
                f"unique (CREATE UNIQUE INDEX ON {table} ({columns}))",
                "key",
            )
        log.info("table %s has no primary key: captured by its contract's key (%s)", table, columns)

    def _not_ready(self, problem: str, check: str) -> SourceNotReady:
        return SourceNotReady(f"source {self.source!r}: {problem}", source=self.source, check=check)

    @property
    def watermark_publication(self) -> str:
        """The connector's own publication, of its own snapshot watermark table: a table is
        published only by its owner, and the agency owns its tables, the connector the
        watermark table. The slot reads both publications."""
        return f"{self.publication}_watermark"

    def ensure_publication(self, tables: Sequence[tuple[str, str]]) -> None:
        """Create the agency's publication for ``tables`` or add the ones it lacks, where this
        role may; where only the tables' owner may, say what the owner is to run."""
        names = sql.SQL(", ").join(sql.Identifier(s, t) for s, t in tables)
        exists = self._scalar("SELECT 1 FROM pg_publication WHERE pubname = %s", self.publication)
        if not exists:
            self._owner_statement(
                sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                    sql.Identifier(self.publication), names
                )
            )
            return
        published = set(
            self._conn.execute(
                "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
                (self.publication,),
            ).fetchall()
        )
        missing = [t for t in tables if t not in published]
        if missing:
            log.info("adding %s to publication %s", missing, self.publication)
            self._owner_statement(
                sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(
                    sql.Identifier(self.publication),
                    sql.SQL(", ").join(sql.Identifier(s, t) for s, t in missing),
                )
            )

    def ensure_watermark_publication(self, table: tuple[str, str]) -> None:
        """The connector's own publication of its watermark table (it owns both)."""
        if self._scalar(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", self.watermark_publication
        ):
            return
        self._conn.execute(
            sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                sql.Identifier(self.watermark_publication), sql.Identifier(*table)
            )
        )

    def _owner_statement(self, statement: sql.Composed) -> None:
        """Run ``statement``, which only the tables' owner may run where roles are separated
        (a connector owns no agency table): refused, it is what the source is waiting for."""
        try:
            self._conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege as exc:
            text = statement.as_string(self._conn)
            raise self._not_ready(
                f"{str(exc).strip()}; the owner of the tables runs: {text}", "publication"
            ) from None

    def ensure_slot(self) -> bool:
        """Create the slot unless it exists. True when it was created now."""
        if self._scalar("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", self.slot):
            return False
        self._conn.execute(
            "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,)
        )
        log.info("created replication slot %s", self.slot)
        return True

    def peek(self, max_changes: int) -> Peeked:
        """Up to about ``max_changes`` pgoutput messages after the slot, whole transactions.

        The WAL flush position is read *before* decoding and bounds it; when fewer messages
        than the limit come back, every change committed before that position has been read,
        so the slot may advance to it once they are delivered even if none concern us. That
        is the heartbeat: an idle source (or one whose cluster's other databases write) does
        not pin WAL.
        """
        flushed = Lsn.parse(str(self._scalar("SELECT pg_current_wal_flush_lsn()::text")))
        rows = self._conn.execute(
            "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes("
            "%s, %s::pg_lsn, %s, 'proto_version', '1', 'publication_names', %s)",
            (self.slot, str(flushed), max_changes, self._publications),
        ).fetchall()
        messages = [(Lsn.parse(lsn), bytes(data)) for lsn, data in rows]
        return Peeked(messages, flushed if len(messages) < max_changes else None)

    @property
    def _publications(self) -> str:
        return f"{self.publication},{self.watermark_publication}"

    def confirmed(self) -> Lsn:
        """Where the slot stands: everything before it is released."""
        value = self._scalar(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            self.slot,
        )
        return Lsn.parse(str(value)) if value else Lsn(0)

    def invalidation(self) -> str | None:
        """Why PostgreSQL invalidated the slot (e.g. ``wal_removed`` once
        max_slot_wal_keep_size was exceeded), or None while it is usable."""
        row = self._conn.execute(
            "SELECT wal_status, invalidation_reason FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot,),
        ).fetchone()
        if row is None:
            return None
        status, reason = row
        return str(reason or status) if (reason or status == "lost") else None

    def drop_slot(self) -> None:
        self._conn.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,))

    def advance(self, lsn: Lsn) -> None:
        """Release WAL up to ``lsn``: call only once the broker acknowledged all before it."""
        self._conn.execute(
            "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, str(lsn))
        )

    def offer_restart_point(self) -> bool:
        """Log a running-transactions record now, where the role may (superuser, or EXECUTE
        on ``pg_log_standby_snapshot``). Every peek and advance decodes the WAL from the slot's
        ``restart_lsn``, which moves only to such a record the slot has decoded past;
        PostgreSQL writes one only every 15 s, so a busy slot would decode up to 15 s of WAL
        again on every call. Returns whether the record was logged."""
        if self._restart_points_refused:
            return False
        try:
            self._conn.execute("SELECT pg_log_standby_snapshot()")
        except (
            psycopg.errors.InsufficientPrivilege,  # GRANT EXECUTE missing
            psycopg.errors.ObjectNotInPrerequisiteState,  # a standby: its primary logs them
        ) as exc:
            self._restart_points_refused = True
            log.warning(
                "slot %s: pg_log_standby_snapshot() refused (%s), so each poll decodes up to "
                "15 s of WAL again; GRANT EXECUTE ON FUNCTION pg_log_standby_snapshot() TO the "
                "connector's role, in the source database",
                self.slot,
                str(exc).strip(),
            )
            return False
        return True

    def lag_bytes(self) -> int:
        value = self._scalar(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
            "FROM pg_replication_slots WHERE slot_name = %s",
            self.slot,
        )
        return int(str(value or 0))

    def _scalar(self, query: str, *params: object) -> object:
        row = self._conn.execute(query, params or None).fetchone()
        return row[0] if row else None


@dataclass(frozen=True, slots=True)
class Peeked:
    messages: list[tuple[Lsn, bytes]]
    complete_upto: Lsn | None  # every change committed before it was read; None if cut short
