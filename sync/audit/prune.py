"""Retention: audit entries are kept at least 12 months (Decree 53/2022; configurable, never
less), then ``govsync audit prune`` removes those older than a date, leaving a signed ``cut``
checkpoint where it cut so the rest of the chain still verifies.

A prune first verifies the whole chain (signatures and checkpoints included): pruning a
broken chain would destroy the evidence of what broke it. It then deletes as the store's
owner role, which the append-only trigger lets delete only entries at or below a cut.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import psycopg
from psycopg import sql

from sync.audit.reader import chain_agencies, chain_start, snapshot, walk_chain
from sync.audit.roles import OWNER
from sync.audit.schema import ENTRIES, HEADS, STARTS
from sync.audit.signing import Checkpoint, Signer, TrustedKeys
from sync.errors import AuditError

log = logging.getLogger(__name__)

_FIRST_KEPT = sql.SQL("SELECT min(seq) FROM {} WHERE agency = %s AND recorded_at >= %s").format(
    ENTRIES
)
_LAST = sql.SQL("SELECT max(seq) FROM {} WHERE agency = %s").format(ENTRIES)
_HASH_AT = sql.SQL("SELECT hash FROM {} WHERE agency = %s AND seq = %s").format(ENTRIES)
_LOCK_HEAD = sql.SQL("SELECT seq FROM {} WHERE agency = %s FOR UPDATE").format(HEADS)
_SET_START = sql.SQL(
    """
    INSERT INTO {} (agency, seq, hash, signed_at, key_id, signature)
    VALUES (%s, %s, %s, %s, %s, %s)
    ON CONFLICT (agency) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
        signed_at = excluded.signed_at, key_id = excluded.key_id,
        signature = excluded.signature
    """
).format(STARTS)
_DELETE = sql.SQL("DELETE FROM {} WHERE agency = %s AND seq <= %s").format(ENTRIES)


@dataclass(frozen=True, slots=True)
class Cut:
    """One agency's prune: entries up to ``checkpoint.seq`` removed (``removed`` of them)."""

    checkpoint: Checkpoint
    removed: int


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (the month's last day if shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def earliest_allowed(retention_months: int, today: date | None = None) -> date:
    """The latest ``--before`` a prune accepts: entries younger than the retention stay."""
    if retention_months < 12:
        raise AuditError("audit entries are kept at least 12 months")
    return months_before(today or datetime.now(UTC).date(), retention_months)


def prune(
    dsn: str,
    before: date,
    signer: Signer,
    keys: TrustedKeys,
    retention_months: int,
    agencies: Iterable[str] = (),
    anchors: Mapping[str, Mapping[int, bytes]] | None = None,
    today: date | None = None,
) -> list[Cut]:
    """Remove every agency's (or ``agencies``') entries recorded before ``before`` (UTC
    midnight), each chain cut at a checkpoint ``signer`` signs. Refuses a date inside the
    retention period and any chain that does not verify."""
    limit = earliest_allowed(retention_months, today)
    if before > limit:
        raise AuditError(
            f"audit entries are kept {retention_months} months: --before may be at most "
            f"{limit.isoformat()}, not {before.isoformat()}"
        )
    moment = datetime.combine(before, time(), tzinfo=UTC)
    with snapshot(dsn) as conn:
        names = list(agencies) or chain_agencies(conn)
        plans = [_plan(conn, a, moment, keys, (anchors or {}).get(a)) for a in names]
    cuts = []
    for agency, seq, digest in (p for p in plans if p is not None):
        cut = signer.sign("cut", agency, seq, digest, datetime.now(UTC))
        cuts.append(Cut(cut, _apply(dsn, cut)))
    return cuts


def _plan(
    conn: psycopg.Connection[Any],
    agency: str,
    moment: datetime,
    keys: TrustedKeys,
    anchors: Mapping[int, bytes] | None,
) -> tuple[str, int, bytes] | None:
    """Where to cut ``agency``'s verified chain: the last seq before the first entry
    recorded at or after ``moment``; None when there is nothing to remove."""
    walk = walk_chain(conn, agency, anchors, keys=keys)
    if walk.problem is not None:
        raise AuditError(f"not pruning a broken chain: {walk.problem}", agency=agency)
    first_kept = _scalar(conn, _FIRST_KEPT, (agency, moment))
    last = _scalar(conn, _LAST, (agency,))
    seq = (first_kept - 1) if first_kept is not None else last
    start = chain_start(conn, agency)
    if seq is None or seq <= (start.seq if start else 0):
        return None
    row = conn.execute(_HASH_AT, (agency, seq)).fetchone()
    assert row is not None
    return agency, seq, bytes(row[0])


def _apply(dsn: str, cut: Checkpoint) -> int:
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(OWNER)))
        conn.execute(_LOCK_HEAD, (cut.agency,))
        row = conn.execute(_HASH_AT, (cut.agency, cut.seq)).fetchone()
        if row is None or bytes(row[0]) != cut.head:
            raise AuditError(f"agency {cut.agency}: seq {cut.seq} changed while pruning")
        conn.execute(
            _SET_START,
            (cut.agency, cut.seq, cut.head, cut.at, cut.key_id, cut.signature),
        )
        removed = conn.execute(_DELETE, (cut.agency, cut.seq)).rowcount
    log.info("agency %s: pruned %d audit entries up to seq %d", cut.agency, removed, cut.seq)
    return removed


def _scalar(conn: psycopg.Connection[Any], query: sql.Composed, args: tuple[Any, ...]) -> Any:
    row = conn.execute(query, args).fetchone()
    return None if row is None else row[0]
