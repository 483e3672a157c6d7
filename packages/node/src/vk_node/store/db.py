"""The node's SQLite connection layer.

One :class:`Store` per database file holds three connections in autocommit mode:

* the **writer**: ``async with store.transaction() as conn`` runs ``BEGIN IMMEDIATE`` … ``COMMIT``
  (``ROLLBACK`` on any exception). An ``asyncio.Lock`` serializes transactions, so statements of
  two coroutines never interleave on the connection. Every statement is one round trip to the
  connection's thread.
* the **one-hop writer** (:mod:`vk_node.store.inline`): ``await store.write(body)`` runs a whole
  transaction body on its own thread, ``BEGIN IMMEDIATE`` to ``COMMIT``, in one round trip — the
  hot write paths (task writes of the API). It takes the same lock as ``transaction()``: one
  writer at a time.

A :class:`~vk_node.store.inline.Checkpointer` (its own connection and thread) runs a passive WAL
checkpoint every ``CHECKPOINT_EVERY`` commits, off the write path.
* the **reader**: ``async with store.read() as conn`` runs a deferred read transaction (one
  consistent WAL snapshot of committed data) under its own lock; reads never wait for writers.

Repository functions take the connection first, so a caller composes any number of them in one
transaction. Writes that must reach the hive append their outbox op on that same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiosqlite

from vk_node.store.files import secure_db_file
from vk_node.store.inline import Checkpointer, WriteBody, WriteThread
from vk_node.store.migrate import apply_migrations
from vk_node.store.signals import take_enqueued

__all__ = ["PRAGMAS", "Store"]

PRAGMAS: tuple[tuple[str, str], ...] = (
    ("foreign_keys", "ON"),
    ("synchronous", "NORMAL"),
    ("temp_store", "MEMORY"),
    ("cache_size", "-64000"),
    ("wal_autocheckpoint", "2000"),
)
"""Per-connection pragmas (spec/node-store.md), set after the busy timeout and WAL mode."""

DEFAULT_BUSY_TIMEOUT_MS = 5000

CHECKPOINT_EVERY = 64
"""Write commits between two passive checkpoints: a task update adds ~14 WAL pages, so the WAL
stays well below ``wal_autocheckpoint`` (2000 pages) and commits seldom checkpoint themselves."""

T = TypeVar("T")


def _setup_statements(busy_timeout_ms: int) -> list[str]:
    return [
        f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
        "PRAGMA journal_mode = WAL",
        *(f"PRAGMA {name} = {value}" for name, value in PRAGMAS),
    ]


async def _connect(path: Path, busy_timeout_ms: int) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        for statement in _setup_statements(busy_timeout_ms):
            await conn.execute(statement)
    except BaseException:
        await conn.close()
        raise
    return conn


def _setup(busy_timeout_ms: int) -> Callable[[sqlite3.Connection], None]:
    def setup(raw: sqlite3.Connection) -> None:
        for statement in _setup_statements(busy_timeout_ms):
            raw.execute(statement)

    return setup


class Store:
    """An open node database: a writer and a reader connection (see module docstring)."""

    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        write_thread: WriteThread,
        checkpointer: Checkpointer,
        schema_version: int,
        applied: list[str],
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_thread = write_thread
        self._checkpointer = checkpointer
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._closed = False
        self._outbox_listeners: list[Callable[[], None]] = []
        self.schema_version = schema_version
        """Highest applied migration version at open time."""
        self.applied_migrations = applied
        """Migrations applied by :meth:`open` (empty when the file was current)."""

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrate: bool = True,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> Store:
        """Open (creating the file ``0600`` and its directory ``0700``), set pragmas, and apply
        pending migrations."""
        path = Path(path)
        await asyncio.to_thread(secure_db_file, path)
        writer = await _connect(path, busy_timeout_ms)
        reader: aiosqlite.Connection | None = None
        write_thread: WriteThread | None = None
        try:
            applied = await apply_migrations(writer) if migrate else []
            reader = await _connect(path, busy_timeout_ms)
            write_thread = await WriteThread.open(path, _setup(busy_timeout_ms))
            checkpointer = await Checkpointer.open(path, _setup(busy_timeout_ms), CHECKPOINT_EVERY)
        except BaseException:
            if write_thread is not None:
                await write_thread.close()
            if reader is not None:
                await reader.close()
            await writer.close()
            raise
        store = cls(path, writer, reader, write_thread, checkpointer, 0, applied)
        try:
            store.schema_version = await store.read_schema_version()
        except BaseException:
            await store.close()
            raise
        return store

    async def read_schema_version(self) -> int:
        """Highest version in ``schema_migrations`` (0 when none)."""
        async with self.read() as conn:
            try:
                async with conn.execute("SELECT MAX(version) FROM schema_migrations") as cur:
                    row = await cur.fetchone()
            except sqlite3.OperationalError:
                return 0
        return int(row[0] or 0) if row is not None else 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``) on the writer; commits on normal exit.

        After a commit that appended outbox ops, the outbox listeners are called."""
        self._check_open()
        async with self._write_lock:
            conn = self._writer
            await _begin(conn, "BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                take_enqueued(conn)
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
            else:
                try:
                    await conn.execute("COMMIT")
                finally:
                    notify = take_enqueued(conn)
                self._checkpointer.committed()
        if notify:
            self._notify_outbox()

    async def write(self, body: WriteBody[T]) -> T:
        """Run ``await body(conn)`` as one write transaction in ONE round trip to a writer
        thread (``BEGIN IMMEDIATE`` … ``COMMIT``, ``ROLLBACK`` when it raises) and return its
        value; see :mod:`vk_node.store.inline`. ``body`` may await store statements only (the
        repositories); anything else raises ``RuntimeError`` and rolls back.

        Cancelling the caller does not interrupt the transaction: it ends (committed or rolled
        back) before the lock is released. After a commit that appended outbox ops, the outbox
        listeners are called."""
        self._check_open()
        async with self._write_lock:
            pending = self._write_thread.run(body)
            try:
                result, notify = await asyncio.shield(pending)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    if (await pending)[1]:
                        self._notify_outbox()
                raise
            self._checkpointer.committed()
        if notify:
            self._notify_outbox()
        return result

    def _notify_outbox(self) -> None:
        for listener in list(self._outbox_listeners):
            listener()

    def add_outbox_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` (synchronously, on the event loop) after every commit that
        appended outbox ops. Returns a function that removes it."""
        self._outbox_listeners.append(listener)

        def remove() -> None:
            if listener in self._outbox_listeners:
                self._outbox_listeners.remove(listener)

        return remove

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only snapshot of committed data on the reader connection."""
        self._check_open()
        async with self._read_lock:
            conn = self._reader
            await _begin(conn, "BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")

    async def close(self) -> None:
        """Checkpoint the WAL into the main file (TRUNCATE) and close both connections."""
        if self._closed:
            return
        self._closed = True
        async with self._write_lock, self._read_lock:
            try:
                await self._reader.close()
                await self._write_thread.close()
                await self._checkpointer.close()
                await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                await self._writer.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _begin(conn: aiosqlite.Connection, statement: str) -> None:
    """Start a transaction, cancellation-safe: a statement runs on the connection's thread even
    when the task awaiting it is cancelled, so a cancelled BEGIN is waited for and rolled back
    before the connection's lock is released — the next user never finds a transaction open."""
    begin = asyncio.ensure_future(conn.execute(statement))
    try:
        await asyncio.shield(begin)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await begin
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
        raise
