"""Prove convergence: compare a replica table with its source, by counts and row hashes.

The source is read in key order in chunks; each chunk's row count and a hash of its rows'
hashes are compared with the same key range of the replica, and only a chunk that differs is
compared row by row. So a 100-million-row table is verified in bounded memory, moving one
digest per chunk, and every difference is still found. Both sides render rows as text with
the same types (the replica is created from the contract) in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from sync.temporal import register_pg_adapters

Key = tuple[Any, ...]


@dataclass(frozen=True)
class TableSide:
    dsn: str
    table: sql.Identifier


@dataclass
class TableReport:
    name: str
    source_rows: int = 0
    replica_rows: int = 0
    missing: list[Key] = field(default_factory=list)  # in the source, not in the replica
    extra: list[Key] = field(default_factory=list)  # in the replica, not in the source
    different: list[Key] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.different)


@dataclass(frozen=True)
class _Chunk:
    low: Key | None  # exclusive
    high: Key | None  # inclusive; None: to the end
    rows: int
    digest: str


class TableVerifier:
    def __init__(
        self,
        source: TableSide,
        replica: TableSide,
        columns: Sequence[str],
        keys: Sequence[str],
        chunk_rows: int = 10_000,
    ) -> None:
        self.source, self.replica = source, replica
        self.columns, self.keys, self.chunk_rows = list(columns), list(keys), chunk_rows

    def run(self, name: str) -> TableReport:
        report = TableReport(name)
        with _connect(self.source.dsn) as src, _connect(self.replica.dsn) as rep:
            for chunk in self._source_chunks(src):
                theirs = self._digest(rep, self.replica.table, chunk.low, chunk.high)
                report.source_rows += chunk.rows
                report.replica_rows += theirs[0]
                if (chunk.rows, chunk.digest) != theirs:
                    self._compare_rows(src, rep, chunk, report)
        return report

    def _source_chunks(self, conn: psycopg.Connection[Any]) -> Iterator[_Chunk]:
        low: Key | None = None
        while True:
            rows = conn.execute(self._chunk_query(low)).fetchall()
            last = len(rows) < self.chunk_rows
            high = None if last else tuple(rows[-1][:-1])
            count, digest = self._digest(conn, self.source.table, low, high)
            yield _Chunk(low, high, count, digest)
            if last:
                return
            low = high

    def _chunk_query(self, low: Key | None) -> sql.Composed:
        return sql.SQL("SELECT {keys}, 1 FROM {table} {where} ORDER BY {keys} LIMIT {n}").format(
            keys=self._key_list(),
            table=self.source.table,
            where=self._range(low, None),
            n=sql.Literal(self.chunk_rows),
        )

    def _digest(
        self,
        conn: psycopg.Connection[Any],
        table: sql.Identifier,
        low: Key | None,
        high: Key | None,
    ) -> tuple[int, str]:
        query = sql.SQL(
            "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY {keys})), '') "
            "FROM (SELECT {keys}, {hash} AS h FROM {table} {where}) t"
        ).format(
            keys=self._key_list(), hash=self._row_hash(), table=table, where=self._range(low, high)
        )
        row = conn.execute(query).fetchone()
        return (int(row[0]), str(row[1])) if row else (0, "")

    def _compare_rows(
        self,
        src: psycopg.Connection[Any],
        rep: psycopg.Connection[Any],
        chunk: _Chunk,
        report: TableReport,
    ) -> None:
        ours = self._row_hashes(src, self.source.table, chunk)
        theirs = self._row_hashes(rep, self.replica.table, chunk)
        report.missing += sorted(k for k in ours if k not in theirs)
        report.extra += sorted(k for k in theirs if k not in ours)
        report.different += sorted(k for k in ours if k in theirs and ours[k] != theirs[k])

    def _row_hashes(
        self, conn: psycopg.Connection[Any], table: sql.Identifier, chunk: _Chunk
    ) -> dict[Key, str]:
        query = sql.SQL("SELECT {keys}, {hash} FROM {table} {where}").format(
            keys=self._key_list(),
            hash=self._row_hash(),
            table=table,
            where=self._range(chunk.low, chunk.high),
        )
        return {tuple(r[:-1]): r[-1] for r in conn.execute(query)}

    def _key_list(self) -> sql.Composed:
        return sql.SQL(", ").join(map(sql.Identifier, self.keys))

    def _row_hash(self) -> sql.Composed:
        return sql.SQL("md5(ROW({})::text)").format(
            sql.SQL(", ").join(map(sql.Identifier, self.columns))
        )

    def _range(self, low: Key | None, high: Key | None) -> sql.Composable:
        bounds = []
        keys = sql.SQL("({})").format(self._key_list())
        if low is not None:
            bounds.append(sql.SQL("{} > ({})").format(keys, _literals(low)))
        if high is not None:
            bounds.append(sql.SQL("{} <= ({})").format(keys, _literals(high)))
        if not bounds:
            return sql.SQL("")
        return sql.SQL("WHERE ") + sql.SQL(" AND ").join(bounds)


def _literals(values: Key) -> sql.Composed:
    return sql.SQL(", ").join(sql.Literal(v) for v in values)


def _connect(dsn: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, autocommit=True)
    register_pg_adapters(conn)  # keys may be dates beyond Python's range
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET DateStyle = 'ISO, YMD'")
    conn.execute("SET extra_float_digits = 3")
    return conn
