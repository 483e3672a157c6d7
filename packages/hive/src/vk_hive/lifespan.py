"""The hive's lifespan: open the database, migrate, start background jobs; undo on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import structlog
from litestar import Litestar

from vk_hive.context import HiveContext
from vk_hive.jobs.leader import Leadership
from vk_hive.jobs.looplag import loop_lag_job
from vk_hive.jobs.maintenance import maintenance_jobs
from vk_hive.jobs.runner import JobRunner, PeriodicJob
from vk_hive.store.db import Database
from vk_hive.store.migrate import migrate
from vk_hive.webhooks.worker import DeliveryWorker

__all__ = ["ShutdownHook", "StartupHook", "hive_lifespan"]

log = structlog.get_logger("vk_hive.lifespan")

ShutdownHook = Callable[[], Awaitable[None]]
StartupHook = Callable[[HiveContext], Awaitable[ShutdownHook | None]]
"""Runs at startup; may return a coroutine function that the lifespan awaits on shutdown (in
reverse order of the hooks, after the periodic jobs stopped)."""


def hive_lifespan(
    ctx: HiveContext, *, on_startup: list[StartupHook] | None = None
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Lifespan context manager factory. ``on_startup`` hooks (e.g. the node gateway's) run after
    the database is open and before the server accepts requests. Maintenance runs only while
    this process leads (:class:`~vk_hive.jobs.leader.Leadership`: one process of those sharing
    the database)."""

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        settings = ctx.settings
        db = await Database.connect(
            settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        ctx.db = db
        ctx.jobs = JobRunner()
        leader = Leadership(settings.database_url, settings.leader_check_s)
        try:
            async with db.acquire() as conn:
                applied = await migrate(conn)
            log.info("hive.migrated", applied=applied)
            await leader.start()
            ctx.leader = leader
            for job in maintenance_jobs(
                db, settings.maintenance_interval_s, ctx.metrics.maintenance_done
            ):
                ctx.jobs.add(
                    PeriodicJob(job.name, job.interval_s, leader.only(job.run), job.delay_first)
                )
            ctx.jobs.add(loop_lag_job(ctx.metrics.event_loop_lag.observe))
            webhooks = DeliveryWorker(db, settings, tries=ctx.metrics.webhook_tries)
            await webhooks.start()
            ctx.webhooks = webhooks
            shutdown: list[ShutdownHook] = [webhooks.close]
            try:
                for hook in on_startup or ():
                    undo = await hook(ctx)
                    if undo is not None:
                        shutdown.append(undo)
                ctx.jobs.start()
                log.info("hive.started", host=settings.host, port=settings.port)
                try:
                    yield
                finally:
                    await ctx.jobs.stop()
            finally:
                for undo in reversed(shutdown):
                    try:
                        await undo()
                    except Exception as exc:
                        log.warning("hive.shutdown_hook_failed", error=type(exc).__name__)
        finally:
            ctx.webhooks = None
            ctx.leader = None
            await leader.stop()
            ctx.db = None
            await db.close()
            log.info("hive.stopped")

    return lifespan
