"""Which hive process runs the cluster-wide jobs (the lease sweeper, the stale-node sweep,
maintenance) when several processes share one database.

The leader is the process whose own PostgreSQL connection holds a session advisory lock. The
lock lives as long as that connection: when the leader stops, crashes or loses its network,
PostgreSQL ends the backend and releases the lock, and the next process that tries takes it over
(every ``check_s``). A process that loses its connection stops leading at once and tries again
after reconnecting.

Leadership is an economy, not a safety mechanism: for a moment after a connection is lost two
processes may both believe they lead, and every job is written to be safe run twice at once
(row locks and conditional updates; retention takes its own advisory lock).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

__all__ = ["LEADER_LOCK_KEY", "Leadership"]

log = structlog.get_logger("vk_hive.leader")

LEADER_LOCK_KEY = 0x766B5F6C656164
"""``pg_try_advisory_lock`` key of the leader ("vk_lead")."""
APPLICATION_NAME = "vk-hive-leader"


class Leadership:
    """Try to hold the leader lock; :attr:`is_leader` says whether this process holds it."""

    def __init__(self, database_url: str, check_s: float) -> None:
        self._url = database_url
        self._check_s = check_s
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.is_leader = False
        self.terms = 0
        """How many times this process became the leader."""

    async def start(self) -> None:
        """Make a first attempt now (a lone hive leads before its jobs start), then keep trying
        in the background."""
        self._stopping.clear()
        with contextlib.suppress(Exception):
            await self._attempt()
        self._task = asyncio.create_task(self._run(), name="vk-hive-leader")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)
            self._task = None
        await self._drop()

    def only(self, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
        """``job`` run only while this process leads (a periodic job's ``run``)."""

        async def run_if_leader() -> object:
            if not self.is_leader:
                return None
            return await job()

        return run_if_leader

    async def _attempt(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._lost()
            self._conn = await asyncpg.connect(
                self._url, server_settings={"application_name": APPLICATION_NAME}, timeout=10
            )
        if self.is_leader:
            await asyncio.wait_for(self._conn.fetchval("SELECT 1"), self._check_s)
            return
        if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY):
            self.is_leader = True
            self.terms += 1
            log.info("leader.acquired", terms=self.terms)

    def _lost(self) -> None:
        if self.is_leader:
            self.is_leader = False
            log.warning("leader.lost")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._check_s)
            if self._stopping.is_set():
                return
            try:
                await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("leader.check_failed", error=type(exc).__name__)
                self._lost()
                await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.is_leader = False
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:
                conn.terminate()
