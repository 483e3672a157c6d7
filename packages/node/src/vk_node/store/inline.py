"""One-hop write transactions: a whole transaction body on the writer thread, in one round trip.

Each aiosqlite statement is a round trip between the event loop and the connection's thread
(a queue put, a thread wake-up, a ``call_soon_threadsafe`` back), which costs more than the
statements of a typical write: a task update with its outbox op took six of them. A
:class:`WriteThread` owns a plain :mod:`sqlite3` connection on a dedicated thread and runs a
transaction's body there — ``BEGIN IMMEDIATE``, the body, ``COMMIT`` — so the loop waits once.

The body is an ordinary ``async def`` written against the repositories. It receives an
:class:`InlineConnection`, whose statements run synchronously on the thread and complete without
suspending, so the coroutine runs to its end in a single ``send()`` (:func:`drive`). A body that
awaits anything else (a lock, a sleep, I/O) would have to suspend; it is stopped, rolled back and
reported as a ``RuntimeError`` — such a body belongs in ``Store.transaction()``.

A :class:`Checkpointer` keeps WAL checkpoints off the write path (see its docstring).

The connection offers exactly what :mod:`vk_node.store.sql` and the outbox use of an aiosqlite
connection (``execute`` as an awaitable/async context manager with ``rowcount``,
``execute_fetchall``, ``in_transaction``; ``set_trace_callback`` for tests), so the repositories
serve both paths unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Generator, Iterable, Sequence
from pathlib import Path
from queue import SimpleQueue
from types import TracebackType
from typing import Any, TypeVar, cast

import aiosqlite
import structlog

from vk_node.store.signals import take_enqueued

__all__ = ["Checkpointer", "InlineConnection", "WriteBody", "WriteThread", "drive"]

log = structlog.get_logger("vk_node.store")

T = TypeVar("T")

WriteBody = Callable[[aiosqlite.Connection], Coroutine[Any, Any, T]]
"""A transaction body: called with the writer connection, awaited (driven) on the writer thread."""


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end and return its value."""
    try:
        yielded = coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise RuntimeError(
        f"a one-hop write awaited {yielded!r}; only store statements may be awaited there "
        "(use Store.transaction() for a body that waits on anything else)"
    )


class _Done:
    """A finished statement: awaitable (the cursor) and an async context manager like
    aiosqlite's ``Connection.execute`` result."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def __await__(self) -> Generator[Any, None, sqlite3.Cursor]:
        yield from ()  # a generator that returns at once: awaiting it never suspends
        return self._cursor

    async def __aenter__(self) -> sqlite3.Cursor:
        return self._cursor

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType
    ) -> None:
        self._cursor.close()


class InlineConnection:
    """The writer thread's connection as the repositories see it (see the module docstring).
    Only to be used on the writer thread, inside :meth:`WriteThread.run`."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    @property
    def in_transaction(self) -> bool:
        return self._raw.in_transaction

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Done:
        return _Done(self._raw.execute(sql, parameters))

    async def execute_fetchall(
        self, sql: str, parameters: Sequence[Any] = ()
    ) -> Iterable[sqlite3.Row]:
        return self._raw.execute(sql, parameters).fetchall()

    async def set_trace_callback(self, handler: Callable[[str], object] | None) -> None:
        self._raw.set_trace_callback(handler)


class _Worker:
    """One thread running calls in order; each result comes back through the caller's loop.

    Leaner than a ``ThreadPoolExecutor`` (no ``concurrent.futures.Future`` chained to the asyncio
    one, no idle semaphore): a call costs one queue put and one ``call_soon_threadsafe``."""

    def __init__(self, name: str) -> None:
        self._calls: SimpleQueue[tuple[asyncio.Future[Any], Callable[[], Any]] | None] = (
            SimpleQueue()
        )
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``fn()`` on the thread; it runs even if the returned future is cancelled."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls.put((future, fn))
        return future

    def stop(self) -> None:
        """End the thread after the calls already queued."""
        self._calls.put(None)

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            future, fn = item
            try:
                outcome: tuple[Any, BaseException | None] = (fn(), None)
            except BaseException as exc:  # handed to the caller, like any other outcome
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
                future.get_loop().call_soon_threadsafe(_settle, future, *outcome)
            del item, future, fn, outcome


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)


async def _open_on_thread(
    name: str, path: Path, setup: Callable[[sqlite3.Connection], None]
) -> tuple[_Worker, sqlite3.Connection]:
    """A new thread and a connection opened on it (``setup`` sets its pragmas there)."""
    worker = _Worker(name)

    def connect() -> sqlite3.Connection:
        raw = sqlite3.connect(path, isolation_level=None)
        try:
            raw.row_factory = sqlite3.Row
            setup(raw)
        except BaseException:
            raw.close()
            raise
        return raw

    try:
        return worker, await worker.call(connect)
    except BaseException:
        worker.stop()
        raise


class WriteThread:
    """A dedicated thread with its own writer connection; :meth:`run` executes one transaction.

    The :class:`~vk_node.store.db.Store` serializes it with its other writer under one lock, so
    the database still has one writer at a time."""

    def __init__(self, worker: _Worker, raw: sqlite3.Connection) -> None:
        self._worker = worker
        self._raw = raw
        self._conn = InlineConnection(raw)

    @classmethod
    async def open(cls, path: Path, setup: Callable[[sqlite3.Connection], None]) -> WriteThread:
        """Open the connection on a new thread (``setup`` sets its pragmas there)."""
        worker, raw = await _open_on_thread("vk-store-writer", path, setup)
        return cls(worker, raw)

    def run(self, body: WriteBody[T]) -> asyncio.Future[tuple[T, bool]]:
        """Schedule one transaction of ``body``: its value and whether it appended outbox ops.
        Once scheduled it runs to its end (commit or rollback) even if nobody awaits it."""
        return self._worker.call(lambda: self._transaction(body))

    def _transaction(self, body: WriteBody[T]) -> tuple[T, bool]:
        raw, conn = self._raw, self._conn
        typed = cast(aiosqlite.Connection, conn)
        raw.execute("BEGIN IMMEDIATE")
        try:
            result = drive(body(typed))
            raw.execute("COMMIT")
        except BaseException:
            take_enqueued(typed)
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise
        return result, take_enqueued(typed)

    async def close(self) -> None:
        try:
            await self._worker.call(self._raw.close)
        finally:
            self._worker.stop()


class Checkpointer:
    """``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection and thread, started after every
    ``every`` write commits (at most one at a time), so that a write seldom pays for one.

    Without it the WAL grows until a commit crosses ``wal_autocheckpoint`` and that commit runs
    the checkpoint before it returns — on this project's machine 1-70 ms (two fsyncs), a
    write's p99. A passive checkpoint copies what it can without blocking the writer; once the
    WAL is copied, the next write starts it over from the beginning, so it stays below the
    autocheckpoint threshold, which remains in force as the backstop (a long read can keep the
    WAL from being reset)."""

    def __init__(self, worker: _Worker, raw: sqlite3.Connection, every: int) -> None:
        self._worker = worker
        self._raw = raw
        self._every = every
        self._commits = 0
        self._running: asyncio.Future[None] | None = None

    @classmethod
    async def open(
        cls, path: Path, setup: Callable[[sqlite3.Connection], None], every: int
    ) -> Checkpointer:
        worker, raw = await _open_on_thread("vk-store-checkpointer", path, setup)
        return cls(worker, raw, every)

    def committed(self) -> None:
        """A write transaction committed (called on the event loop)."""
        self._commits += 1
        if self._commits < self._every or self._running is not None:
            return
        self._commits = 0
        self._running = self._worker.call(self._checkpoint)
        self._running.add_done_callback(self._finished)

    def _checkpoint(self) -> None:
        self._raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _finished(self, done: asyncio.Future[None]) -> None:
        self._running = None
        if not done.cancelled() and (exc := done.exception()) is not None:
            log.warning("store.checkpoint_failed", error=str(exc))

    async def close(self) -> None:
        """Wait for a running checkpoint, then close the connection and end the thread."""
        try:
            if self._running is not None:
                await asyncio.wait([self._running])
            await self._worker.call(self._raw.close)
        finally:
            self._worker.stop()
