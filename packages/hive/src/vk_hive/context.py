"""What request handlers share: settings, the database, the token signer, the gateway's hooks."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sized
from dataclasses import dataclass, field
from typing import Any, Protocol

from litestar import WebSocket

from vk_hive.auth.tokens import TokenSigner
from vk_hive.jobs.leader import Leadership
from vk_hive.jobs.runner import JobRunner
from vk_hive.metrics import HiveMetrics
from vk_hive.settings import HiveSettings
from vk_hive.store.db import Database
from vk_hive.store.models import Assignment, Label
from vk_hive.webhooks.worker import DeliveryWorker

__all__ = ["HiveContext", "NodeGateway"]


class NodeGateway(Protocol):
    """What the app and its REST handlers may ask of the node gateway (``vk_hive.gateway``)."""

    @property
    def registry(self) -> Sized:
        """The connected nodes (how many, for the metrics)."""
        ...

    def disconnect(self, node_id: uuid.UUID, reason: str) -> None:
        """Close the node's connection (its access was taken away)."""
        ...

    async def serve(self, socket: WebSocket[Any, Any, Any]) -> None:
        """Serve one node's ``/v1/nodes/ws`` connection until it ends."""
        ...


@dataclass
class HiveContext:
    settings: HiveSettings
    signer: TokenSigner
    db: Database | None = None
    jobs: JobRunner = field(default_factory=JobRunner)
    metrics: HiveMetrics = field(default_factory=HiveMetrics)
    """This app's Prometheus series (its own registry); code increments counters on it."""
    leader: Leadership | None = None
    """Whether this process runs the cluster-wide jobs (set by the lifespan)."""
    webhooks: DeliveryWorker | None = None
    """This process's webhook delivery worker (set by the lifespan)."""
    gateway: NodeGateway | None = None
    """The node gateway (``vk_hive.gateway.Gateway``) when the app serves ``/v1/nodes/ws``."""
    on_assignment: Callable[[Assignment], Awaitable[None]] | None = None
    """Installed by the node gateway: push ``task_assign`` for a committed assignment."""
    on_task_cancel: Callable[[Assignment, str | None], Awaitable[None]] | None = None
    """Installed by the node gateway: push ``task_cancel`` for an assignment an operator closed."""
    on_label_change: Callable[[Label], Awaitable[None]] | None = None
    """Installed by the node gateway: push ``label_sync`` to the organization's nodes."""

    @property
    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError("the database is not open (outside the app lifespan)")
        return self.db

    async def notify_cancel(self, assignment: Assignment | None, reason: str | None) -> None:
        """After commit: tell the holder of a closed assignment to stop (if a gateway listens)."""
        if assignment is not None and self.on_task_cancel is not None:
            await self.on_task_cancel(assignment, reason)

    async def notify_label(self, *changed: Label) -> None:
        """After commit: announce created/changed/deleted labels (if a gateway listens)."""
        if self.on_label_change is not None:
            for label in changed:
                await self.on_label_change(label)
