"""Where the registry parses schemas: worker processes, away from the event loop.

Parsing and compatibility checks are CPU-bound Python. On the event loop they would stop every
other request; in a thread they would still hold the interpreter lock most of the time. So
they run in a small pool of worker processes (``workers`` of them, spawned, never forked from
the running server), and requests that need no parsing, ``GET /subjects`` among them, are
answered while the workers are busy. With ``workers=0`` the work runs in one thread of the
server's own process instead: for tests and the smallest installations.

A worker that dies (killed for memory, say) breaks a process pool for every job in it; the
pool is then replaced and the job tried once more before it is answered 42201.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import TypeVar

from sync.registry import parsing
from sync.registry.limits import DEFAULT_LIMITS, SchemaLimits
from sync.registry.model import Compatibility, Reference, SchemaInput, invalid_schema
from sync.registry.parsing import Earlier, Prepared

log = logging.getLogger(__name__)

T = TypeVar("T")


class ParserPool:
    """Runs :mod:`sync.registry.parsing` off the event loop, held to ``limits``."""

    def __init__(self, limits: SchemaLimits = DEFAULT_LIMITS, *, workers: int = 2) -> None:
        if workers < 0:
            raise ValueError("workers must be 0 (a thread) or more (processes)")
        self.limits = limits
        self.workers = workers
        self._executor: Executor | None = None
        self._closed = False

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def decode(self, raw: bytes) -> SchemaInput:
        return await self._run(parsing.decode_schema_body, raw)

    async def prepare(
        self, text: str, dependencies: Sequence[str], references: Sequence[Reference]
    ) -> Prepared:
        args = (text, tuple(dependencies), tuple(references), self.limits)
        return await self._run(parsing.prepare, *args)

    async def check(
        self,
        level: Compatibility,
        text: str,
        dependencies: Sequence[str],
        history: Sequence[Earlier],
    ) -> list[str]:
        args = (level, text, tuple(dependencies), tuple(history), self.limits)
        return await self._run(parsing.check, *args)

    async def warm_up(self) -> None:
        """Start every worker now rather than on the first request; a failure is only logged,
        as the next request starts the workers again."""
        jobs = (self._run(parsing.ready) for _ in range(max(self.workers, 1)))
        try:
            await asyncio.gather(*jobs)
        except Exception:
            log.exception("the schema parser workers could not start")

    def close(self) -> None:
        """Stop taking work: queued jobs are cancelled, running ones (bounded by the limits)
        finish, and the workers exit. Idempotent."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            # waiting leaves nothing for the interpreter's exit hook, which otherwise writes
            # to a pipe the shutdown has closed
            executor.shutdown(wait=True, cancel_futures=True)

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            executor = self._current()
            try:
                return await loop.run_in_executor(executor, function, *args)
            except BrokenProcessPool:
                log.warning("a schema parser process died (attempt %d); starting new ones", attempt)
                self._replace(executor)
        raise invalid_schema("the schema parser stopped while reading this schema")

    def _current(self) -> Executor:
        if self._closed:
            raise RuntimeError("the schema parser pool is closed")
        if self._executor is None:
            self._executor = self._new_executor()
        return self._executor

    def _new_executor(self) -> Executor:
        if self.workers == 0:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-parser")
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )

    def _replace(self, broken: Executor) -> None:
        if self._executor is broken:
            self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)


def _exit_with_parent(parent: int) -> None:
    """A worker leaves as soon as the registry process that spawned it is gone, even when
    that process was killed and could not shut its pool down."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="govsync-parent-watch", daemon=True).start()
