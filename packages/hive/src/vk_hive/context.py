"""What request handlers share: settings, the database, the token signer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vk_hive.auth.tokens import TokenSigner
from vk_hive.jobs.runner import JobRunner
from vk_hive.settings import HiveSettings
from vk_hive.store.db import Database

__all__ = ["HiveContext"]


@dataclass
class HiveContext:
    settings: HiveSettings
    signer: TokenSigner
    db: Database | None = None
    jobs: JobRunner = field(default_factory=JobRunner)
    on_assignment: Callable[[Any], Awaitable[None]] | None = None
    """Installed by the node gateway: push ``task_assign`` for a committed assignment."""

    @property
    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError("the database is not open (outside the app lifespan)")
        return self.db
