"""Remembered deletes keep a keyed hash of the deleted row's key, never the key itself.

A replica remembers each deleted key (with the position of the delete) so that a late, older
event cannot bring the row back. For a person that key is a personal id, and a remembered
delete outlives the row by design; so ``govsync_state.<domain>__<entity>__deleted`` stores
HMAC-SHA256, under a secret of the agency's processor, of the table's name and the key values.
The guard needs nothing more: an event is matched to a remembered delete by the same hash.

The secret is the agency's entry ``remembered-deletes.<agency>`` in the processor's hash keys
(``GOVSYNC_HASH_KEYS_FILE``), beside its pseudonymisation keys and like them kept outside the
database: the hash is computed here, in the processor, and the secret never reaches
PostgreSQL. A manifest's own key names are identifiers, so none can take this name.

A replica created before keeps raw keys in that table; :func:`migrate_raw_deletes` hashes them
once, at the processor's start, and drops the raw table (see ``docs/privacy.md``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from uuid import UUID

import psycopg
from psycopg import sql

from sync.errors import ConfigError
from sync.replica.layout import STATE_SCHEMA, ReplicaTable

KEY_NAME_PREFIX = "remembered-deletes."
MIN_SECRET_BYTES = 32  # HMAC-SHA256's block of output: shorter secrets weaken it
HASH_COLUMN = "_key_hash"
_MIGRATION_CHUNK = 10_000


def deletes_key_name(agency: str) -> str:
    """The hash key an agency's remembered deletes are hashed under."""
    return f"{KEY_NAME_PREFIX}{agency}"


@dataclass(frozen=True)
class DeletedKeys:
    """Hashes the keys of one agency's deleted rows; the secret is never shown."""

    secret: bytes = field(repr=False)

    @classmethod
    def from_secrets(
        cls, agency: str, secrets: Mapping[str, bytes], where: str = "GOVSYNC_HASH_KEYS_FILE"
    ) -> DeletedKeys:
        """The agency's secret from its hash keys (read from ``where``); a ConfigError naming
        the key (never a secret's bytes) when it is missing or too short."""
        name = deletes_key_name(agency)
        secret = secrets.get(name)
        if secret is None:
            raise ConfigError(
                f"no secret for hash key {name!r} in {where}: the replica "
                "remembers deleted rows by a keyed hash of their key, under the agency's own "
                "secret (at least 32 random bytes, kept outside the database)"
            )
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"the secret of hash key {name!r} has {len(secret)} bytes; "
                f"HMAC-SHA256 needs at least {MIN_SECRET_BYTES}"
            )
        return cls(bytes(secret))

    def digest(self, table: str, values: Sequence[object]) -> bytes:
        """HMAC-SHA256 of ``table`` (``domain.entity``: the same key in two tables hashes
        apart) and the key ``values`` in the contract's key order."""
        return hmac.digest(self.secret, canonical_key(table, values), hashlib.sha256)


def canonical_key(table: str, values: Sequence[object]) -> bytes:
    """One unambiguous byte string for a table and its key values, equal for the values an
    event carries and the same values read back from PostgreSQL (with
    :func:`sync.temporal.register_pg_adapters`). Each part is its kind, its length and its
    text, so no two keys share a form."""
    parts = [_part("t", table), *(_part(*_typed_text(v)) for v in values)]
    return "".join(parts).encode()


def _part(kind: str, text: str) -> str:
    return f"{kind}{len(text)}:{text}"


def _typed_text(value: object) -> tuple[str, str]:
    if value is None:
        return "n", ""
    if isinstance(value, str):
        return "s", value
    if isinstance(value, bool):
        return "b", str(value).lower()
    if isinstance(value, int):  # the far dates and times of sync.temporal are ints by class
        return f"i{type(value).__name__}", str(int(value))
    if isinstance(value, Decimal):
        return "d", format(value.normalize(), "f")
    if isinstance(value, datetime):
        aware = value.tzinfo is not None
        return ("z" if aware else "l"), (value.astimezone(UTC) if aware else value).isoformat()
    if isinstance(value, date | time):
        return type(value).__name__[0], value.isoformat()
    if isinstance(value, UUID):
        return "u", str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "x", bytes(value).hex()
    if isinstance(value, float):
        return "f", repr(value)
    raise TypeError(f"a key value of type {type(value).__name__} has no canonical form")


async def migrate_raw_deletes(
    conn: psycopg.AsyncConnection[tuple[object, ...]], table: ReplicaTable, keys: DeletedKeys
) -> int | None:
    """Replace a remembered-deletes table of the old layout (raw key columns) by one of
    hashes, inside the caller's transaction; returns how many deletes it hashed, or None when
    the table is absent or already hashed. The raw table is dropped, so its files go."""
    columns = await _columns(conn, table)
    if not columns or HASH_COLUMN in columns:
        return None
    missing = [k for k in table.key_names if k not in columns]
    if missing:
        raise ConfigError(
            f"{_name(table)}: remembered deletes lack key column(s) {', '.join(missing)}; "
            "they cannot be hashed: move the table aside and restart the processor"
        )
    raw_name = f"{table.deleted_name}_raw"
    raw = sql.Identifier(STATE_SCHEMA, raw_name)
    await conn.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(table.deleted, sql.Identifier(raw_name))
    )
    await conn.execute(table.ddl())
    read = sql.SQL("SELECT {}, _source_lsn::text, _source_index, deleted_at FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, table.key_names)), raw
    )
    write = sql.SQL("COPY {} ({}, _source_lsn, _source_index, deleted_at) FROM STDIN").format(
        table.deleted, sql.Identifier(HASH_COLUMN)
    )
    n = len(table.key_names)
    name = _name(table)
    done = 0
    async with conn.cursor(name=f"govsync_migrate_{table.slug}") as source:
        await source.execute(read)
        while rows := await source.fetchmany(_MIGRATION_CHUNK):
            async with conn.cursor().copy(write) as copy:
                for row in rows:
                    await copy.write_row([keys.digest(name, row[:n]), *row[n:]])
            done += len(rows)
    await conn.execute(sql.SQL("DROP TABLE {}").format(raw))
    return done


def _name(table: ReplicaTable) -> str:
    return f"{table.contract.domain}.{table.contract.entity}"


async def _columns(
    conn: psycopg.AsyncConnection[tuple[object, ...]], table: ReplicaTable
) -> set[str]:
    cursor = await conn.execute(
        "SELECT attname FROM pg_attribute "
        "WHERE attrelid = to_regclass(quote_ident(%s) || '.' || quote_ident(%s)) "
        "AND attnum > 0 AND NOT attisdropped",
        (STATE_SCHEMA, table.deleted_name),
    )
    return {str(r[0]) for r in await cursor.fetchall()}
