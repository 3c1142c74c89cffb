"""A small pool of psycopg ``AsyncConnection`` objects for the registry's request handlers.

The registry needs a handful of connections and nothing more (no background health checks,
no resizing), so rather than another dependency this keeps idle autocommit connections in a
list bounded by a semaphore. A connection goes back to the pool only when it is open, idle
and outside a transaction; anything else (a broken socket, a cancelled query) is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

log = logging.getLogger(__name__)


class ConnectionPool:
    """At most ``max_size`` connections to ``dsn``, opened on demand and reused."""

    def __init__(self, dsn: str, *, max_size: int = 8) -> None:
        self.dsn = dsn
        self.max_size = max_size
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[AsyncConnection[Any]] = []
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection in autocommit mode; open transactions with ``conn.transaction()``."""
        if self._closed:
            raise psycopg.OperationalError("the registry's connection pool is closed")
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed:
                conn = await AsyncConnection.connect(self.dsn, autocommit=True)
            try:
                yield conn
            finally:
                await self._give_back(conn)

    async def _give_back(self, conn: AsyncConnection[Any]) -> None:
        healthy = (
            not conn.closed
            and not conn.broken
            and conn.info.transaction_status == TransactionStatus.IDLE
        )
        if healthy and not self._closed:
            self._idle.append(conn)
            return
        with suppress(psycopg.Error):
            await conn.close()

    async def close(self) -> None:
        """Close idle connections; connections in use are closed when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            with suppress(psycopg.Error):
                await conn.close()
        log.debug("connection pool closed (%d idle connections)", len(idle))
