"""The node's lifespan: open the store (migrating first) and start the executor on startup; on
shutdown stop the executor (killing this instance's runs) and close the store.

Closing the store checkpoints the WAL (``PRAGMA wal_checkpoint(TRUNCATE)``), so a cleanly stopped
node leaves a single self-contained ``db.sqlite``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import structlog
from litestar import Litestar

from vk_node.executor.service import ExecutorService
from vk_node.settings import NodeSettings
from vk_node.store import Store

__all__ = ["NodeContext", "node_lifespan"]

log = structlog.get_logger("vk_node.lifespan")


@dataclass
class NodeContext:
    """What every request handler of one node shares: its settings and its open store."""

    settings: NodeSettings
    _store: Store | None = field(default=None, repr=False)
    _executor: ExecutorService | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the store is not open (outside the app lifespan)")
        return self._store

    @property
    def executor(self) -> ExecutorService:
        if self._executor is None:
            raise RuntimeError("the executor is not running (outside the app lifespan)")
        return self._executor


def node_lifespan(ctx: NodeContext) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Lifespan factory bound to one node's context."""

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        settings = ctx.settings
        settings.data_path.mkdir(parents=True, exist_ok=True)
        settings.worktrees_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(settings.db_path)
        ctx._store = store
        executor = ExecutorService(store, settings)
        await executor.start()
        ctx._executor = executor
        log.info(
            "node.started",
            host=settings.host,
            port=settings.port,
            db=str(settings.db_path),
            hive="standalone" if settings.standalone else settings.hive_url,
        )
        try:
            yield
        finally:
            ctx._executor = None
            try:
                await executor.close()
            finally:
                ctx._store = None
                await store.close()
            log.info("node.stopped", db=str(settings.db_path))

    return lifespan
