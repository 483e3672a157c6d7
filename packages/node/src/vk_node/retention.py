"""Retention on the node (spec features.md N-09): old logs, old archived tasks, unused images.

One :class:`RetentionJob` per node, owned by the lifespan: it runs :func:`run_retention` once
``retention_first_delay_s`` after start, then every ``retention_interval_s``; a failed run is
logged and the next one runs on schedule. Each run deletes

* the log entries (and raw JSONL chunks) of runs that **finished** more than
  ``log_retention_days`` ago — a run still going keeps its whole log (0 = keep forever);
* done/cancelled tasks archived more than ``archived_task_retention_days`` ago, in projects not
  linked to a hive (a shared task's copy is the hive's), with their worktrees, attempts, logs
  and the images no other task uses (0, the default, = keep forever);
* uploaded images no task uses, older than ``image_orphan_grace_s``.

Everything is deleted in transactions of at most ``retention_batch`` rows, so the store's single
writer is never held for long and runs, the API and the hive link keep writing in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import aiosqlite
import structlog

from vk_node.services import images
from vk_node.settings import NodeSettings
from vk_node.store import Store
from vk_node.store.repositories import images as images_repo
from vk_node.store.repositories import log_entries as logs_repo
from vk_node.store.repositories import tasks as tasks_repo

__all__ = ["RetentionJob", "RetentionReport", "run_retention"]

log = structlog.get_logger("vk_node.retention")

RemoveWorktrees = Callable[[UUID], Awaitable[int]]
"""Removes a task's worktrees (the executor's ``remove_task_worktrees``)."""


@dataclass(frozen=True)
class RetentionReport:
    """What one run deleted."""

    log_entries: int = 0
    log_chunks: int = 0
    tasks: int = 0
    images: int = 0


async def _purge_logs(store: Store, before: datetime, batch: int) -> tuple[int, int]:
    entries = chunks = 0
    while True:

        async def body(conn: aiosqlite.Connection) -> tuple[int, int]:
            return await logs_repo.delete_of_processes_finished_before(conn, before, batch)

        deleted_entries, deleted_chunks = await store.write(body)
        entries += deleted_entries
        chunks += deleted_chunks
        if deleted_entries < batch and deleted_chunks < batch:
            return entries, chunks
        await asyncio.sleep(0)  # let other writers in between batches


async def _purge_tasks(
    store: Store, settings: NodeSettings, before: datetime, remove_worktrees: RemoveWorktrees
) -> tuple[int, int]:
    tasks = removed_images = 0
    while True:
        async with store.read() as conn:
            ids = await tasks_repo.find_purgeable_archived(conn, before, settings.retention_batch)
        for task_id in ids:
            await remove_worktrees(task_id)

            async def body(conn: aiosqlite.Connection, task_id: UUID = task_id) -> list[UUID]:
                attached = [i.id for i in await images_repo.find_by_task_id(conn, task_id)]
                await tasks_repo.delete(conn, task_id)
                return attached

            attached = await store.write(body)
            removed_images += await images.delete_unused(store, settings.images_dir, attached)
            tasks += 1
        if len(ids) < settings.retention_batch:
            return tasks, removed_images


async def run_retention(
    store: Store,
    settings: NodeSettings,
    remove_worktrees: RemoveWorktrees,
    *,
    now: datetime | None = None,
) -> RetentionReport:
    """One retention run (see the module docstring); logs and returns what it deleted."""
    now = now or datetime.now(UTC)
    entries = chunks = tasks = removed_images = 0
    if settings.log_retention_days:
        before = now - timedelta(days=settings.log_retention_days)
        entries, chunks = await _purge_logs(store, before, settings.retention_batch)
    if settings.archived_task_retention_days:
        before = now - timedelta(days=settings.archived_task_retention_days)
        tasks, removed_images = await _purge_tasks(store, settings, before, remove_worktrees)
    removed_images += await images.purge_orphans(
        store, settings.images_dir, timedelta(seconds=settings.image_orphan_grace_s)
    )
    report = RetentionReport(
        log_entries=entries, log_chunks=chunks, tasks=tasks, images=removed_images
    )
    log.info(
        "retention.done",
        log_entries=entries,
        log_chunks=chunks,
        tasks=tasks,
        images=removed_images,
        log_retention_days=settings.log_retention_days,
    )
    return report


@dataclass
class RetentionJob:
    """The periodic owner of :func:`run_retention` (started and closed by the lifespan)."""

    store: Store
    settings: NodeSettings
    remove_worktrees: RemoveWorktrees
    runs: int = 0
    failures: int = 0
    deleted: RetentionReport = field(default_factory=RetentionReport)
    """Totals since start."""
    last_run: float = 0.0
    """Unix time of the last finished run (0: none yet)."""
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="vk-node-retention")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> RetentionReport:
        report = await run_retention(self.store, self.settings, self.remove_worktrees)
        self.runs += 1
        self.last_run = time.time()
        self.deleted = RetentionReport(
            log_entries=self.deleted.log_entries + report.log_entries,
            log_chunks=self.deleted.log_chunks + report.log_chunks,
            tasks=self.deleted.tasks + report.tasks,
            images=self.deleted.images + report.images,
        )
        return report

    async def _loop(self) -> None:
        await asyncio.sleep(self.settings.retention_first_delay_s)
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                log.warning("retention.failed", error=type(exc).__name__, message=str(exc))
            await asyncio.sleep(self.settings.retention_interval_s)
