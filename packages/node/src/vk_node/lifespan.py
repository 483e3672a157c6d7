"""The node's lifespan: make the data dir private (``0700``), open the store (migrating first),
start the webhook delivery worker, the executor, the pull request monitor, the retention job
(:mod:`vk_node.retention`) and — when ``VK_HIVE_URL`` is set — the hive link on startup; on
shutdown stop the monitor, the link and the retention job, then the executor (killing this
instance's runs), then the delivery worker, then close the store.

Closing the store checkpoints the WAL (``PRAGMA wal_checkpoint(TRUNCATE)``), so a cleanly stopped
node leaves a single self-contained ``db.sqlite``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import structlog
from litestar import Litestar

from vk_node.context import NodeContext
from vk_node.executor.pull_requests import PrMonitor
from vk_node.executor.service import ExecutorService
from vk_node.link import HiveLink
from vk_node.link.identity import resolve_machine_id
from vk_node.retention import RetentionJob
from vk_node.store import Store
from vk_node.store.files import secure_data_dir
from vk_node.webhooks.worker import DeliveryWorker

__all__ = ["node_lifespan"]

log = structlog.get_logger("vk_node.lifespan")


def node_lifespan(ctx: NodeContext) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Lifespan factory bound to one node's context."""

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        settings = ctx.settings
        secure_data_dir(settings.data_path)
        settings.worktrees_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(settings.db_path)
        ctx._store = store
        machine_id = await resolve_machine_id(store, settings)
        webhooks = DeliveryWorker(store, settings)
        await webhooks.start()
        ctx._webhooks = webhooks
        executor = ExecutorService(store, settings, on_webhooks=webhooks.wake)
        await executor.start()
        ctx._executor = executor
        retention = RetentionJob(store, settings, executor.remove_task_worktrees)
        retention.start()
        ctx._retention = retention
        link: HiveLink | None = None
        if not settings.standalone:
            link = HiveLink(store, settings, executor)
            try:
                await link.start()
            except BaseException:
                await link.close()
                await retention.close()
                await executor.close()
                await webhooks.close()
                await store.close()
                raise
            ctx._link = link
        monitor = PrMonitor(executor, settings.pr_monitor_interval_s)
        monitor.start()
        log.info(
            "node.started",
            host=settings.host,
            port=settings.port,
            db=str(settings.db_path),
            machine_id=machine_id,
            hive="standalone" if settings.standalone else settings.hive_url,
        )
        try:
            yield
        finally:
            await monitor.close()
            ctx._link = None
            if link is not None:
                try:
                    await link.close()
                except Exception:
                    log.exception("link.close_failed")
            ctx._retention = None
            await retention.close()
            ctx._executor = None
            try:
                await executor.close()
            finally:
                # After the executor: runs it stopped have written their deliveries; those the
                # worker has not sent stay pending for the next start.
                ctx._webhooks = None
                try:
                    await webhooks.close()
                finally:
                    ctx._store = None
                    await store.close()
            log.info("node.stopped", db=str(settings.db_path))

    return lifespan
