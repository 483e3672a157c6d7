"""What request handlers share: settings, the database, the token signer, the gateway's hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vk_hive.auth.tokens import TokenSigner
from vk_hive.jobs.runner import JobRunner
from vk_hive.metrics import HiveMetrics
from vk_hive.settings import HiveSettings
from vk_hive.store.db import Database
from vk_hive.store.models import Assignment, Label

__all__ = ["HiveContext"]


@dataclass
class HiveContext:
    settings: HiveSettings
    signer: TokenSigner
    db: Database | None = None
    jobs: JobRunner = field(default_factory=JobRunner)
    metrics: HiveMetrics = field(default_factory=HiveMetrics)
    """This app's Prometheus series (its own registry); code increments counters on it."""
    gateway: Any = None
    """The node gateway (``vk_hive.gateway.Gateway``) when the app serves ``/v1/nodes/ws``."""
    on_assignment: Callable[[Any], Awaitable[None]] | None = None
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
