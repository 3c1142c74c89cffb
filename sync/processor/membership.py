"""One active member per agency: when several workers host an agency, one applies and the
others stand by, so a source transaction still reaches the replica whole.

Why this design rather than staging parts of transactions in the replica: one worker is
enough. The benchmark (``bench/results/latest.md``) has one worker applying one agency's
backlog at 9,300 to 9,600 events/s on 2 cores, above what one connector delivers (3,800
events/s streaming, 6,500 from a snapshot). Measured again for this choice on the same 2 cores,
busy with other work (a 100,000-event topic, two rounds): one worker drained it at 3,057 and
3,684 events/s, two workers sharing its partitions (nothing held) at 3,523 and 4,523, with the
same CPU per event (about 110 microseconds): a second active member gains 15 to 23 % from a
spare core, where staging would spend a replica write and read on every event of each split
transaction and a coordination protocol on top. A standby costs one idle connection. Work is
still spread over workers by agency: each agency's group has its own lock, so the active
members of different agencies can be on different workers.

The arbiter is the agency's replica, which already holds the position of record: a session-level
advisory lock keyed by the group, taken on the very connection the applier writes through.

- A standby waits for the lock in one blocking ``pg_advisory_lock``, without a deadline: it
  holds it the moment the active member's session ends, and only then starts reading (every
  partition, assigned by hand: see :mod:`sync.processor.consumer`).
- Every write of the applier checks, inside its own transaction, that its session holds the
  lock (:meth:`MemberLock.assert_held`). A session lock is released only when its session ends
  (nothing of ours unlocks it), so a commit that passed the check was made while holding it:
  two members never both write, not even for a moment. The check also refuses a session that
  lost the lock some other way (``DISCARD ALL``, a transaction-pooling proxy in between).
- The active member confirms the lock every :data:`LOCK_CHECK_INTERVAL` seconds, idle or not;
  on any failure it stops reading at once and stands by again.
- TCP keepalives on both ends bound how long a vanished host keeps a lock or a wait.
"""

from __future__ import annotations

import hashlib

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sync.errors import GovsyncError

LOCK_CHECK_INTERVAL = 2.0  # seconds between checks of an idle active member's lock

# a vanished client or server is noticed after about 10 + 3 * 5 = 25 s
_CLIENT_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}
_SERVER_SETTINGS = sql.SQL(
    "SET LOCAL lock_timeout = 0; SET LOCAL statement_timeout = 0; "
    "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; "
    "SET tcp_keepalives_count = 3"
)
_HELD = sql.SQL(
    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
    "AND granted AND mode = 'ExclusiveLock' AND objsubid = 1 "
    "AND classid = %s::bigint::oid AND objid = %s::bigint::oid"
)


class MembershipLost(GovsyncError):
    """This worker no longer holds its agency's member lock: it stops consuming and applying
    at once, and stands by. Neither retryable nor fatal: the service starts a new term."""


def member_lock_key(group_id: str) -> int:
    """The advisory lock key of a consumer group: stable across versions and processes, and
    non-negative, so that ``pg_locks`` shows it as two unsigned halves."""
    digest = hashlib.blake2b(group_id.encode(), digest_size=8, person=b"govsync-member").digest()
    return int.from_bytes(digest, "big") >> 1


class MemberLock:
    """The member lock of one agency's group in its replica."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.key = member_lock_key(group_id)

    def conninfo(self, dsn: str) -> str:
        """``dsn`` with client keepalives for the lock's connection, where it sets none."""
        given = conninfo_to_dict(dsn)
        return make_conninfo(dsn, **{k: v for k, v in _CLIENT_KEEPALIVES.items() if k not in given})

    async def wait(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        """Block until ``conn``'s session holds the lock; no deadline (cancel the task to give
        up: psycopg cancels the wait in the server)."""
        async with conn.transaction():
            await conn.execute(_SERVER_SETTINGS)
            await conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))

    async def assert_held(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        """Raise :class:`MembershipLost` unless ``conn``'s session holds the lock."""
        cursor = await conn.execute(_HELD, (self.key >> 32, self.key & 0xFFFF_FFFF))
        if await cursor.fetchone() is None:
            raise MembershipLost(
                f"the replica session no longer holds the member lock of {self.group_id}",
                group_id=self.group_id,
            )
