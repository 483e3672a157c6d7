"""What every request handler of one node shares: its settings, metrics and — while the app's
lifespan runs (:mod:`vk_node.lifespan`) — its store, executor and hive link."""

from __future__ import annotations

from dataclasses import dataclass, field

from vk_node.executor.service import ExecutorService
from vk_node.link import HiveLink
from vk_node.metrics import NodeMetrics
from vk_node.retention import RetentionJob
from vk_node.settings import NodeSettings
from vk_node.store import Store
from vk_node.webhooks.worker import DeliveryWorker

__all__ = ["NodeContext"]


@dataclass
class NodeContext:
    """What every request handler of one node shares: its settings and its open store."""

    settings: NodeSettings
    metrics: NodeMetrics = field(default_factory=NodeMetrics, repr=False)
    _store: Store | None = field(default=None, repr=False)
    _executor: ExecutorService | None = field(default=None, repr=False)
    _link: HiveLink | None = field(default=None, repr=False)
    _retention: RetentionJob | None = field(default=None, repr=False)
    _webhooks: DeliveryWorker | None = field(default=None, repr=False)

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

    @property
    def webhooks(self) -> DeliveryWorker:
        """The webhook delivery worker."""
        if self._webhooks is None:
            raise RuntimeError("the webhook worker is not running (outside the app lifespan)")
        return self._webhooks

    @property
    def link(self) -> HiveLink | None:
        """The hive link; ``None`` when standalone (or outside the app lifespan)."""
        return self._link

    @property
    def retention(self) -> RetentionJob | None:
        """The periodic retention job (``None`` outside the app lifespan)."""
        return self._retention
