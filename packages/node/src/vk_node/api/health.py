"""``GET /api/health``: liveness plus what a UI shows in its footer."""

from __future__ import annotations

import msgspec
from litestar import get

from vk_node import __version__
from vk_node.api.deps import Ctx

__all__ = ["Health", "health"]


class Health(msgspec.Struct, frozen=True):
    status: str
    version: str
    node_name: str
    hive: str
    """``standalone`` when no hive is configured, else the hive URL."""
    executors: list[str]


@get("/health", summary="Liveness of the node", sync_to_thread=False)
def health(ctx: Ctx) -> Health:
    settings = ctx.settings
    return Health(
        status="ok",
        version=__version__,
        node_name=settings.name,
        hive="standalone" if settings.standalone else settings.hive_url,
        executors=list(settings.executors),
    )
