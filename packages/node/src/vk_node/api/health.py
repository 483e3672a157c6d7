"""``GET /api/health``: liveness plus what a UI shows in its footer and what a probe checks."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from vk_node import __version__
from vk_node.api.deps import Ctx
from vk_node.store import outbox

__all__ = ["Health", "health"]

STORE_TIMEOUT_S = 2.0


class Health(msgspec.Struct, frozen=True):
    status: str
    """``ok``, or ``degraded`` when the store does not answer (then the status code is 503)."""
    version: str
    node_name: str
    hive: str
    """``standalone`` when no hive is configured, else the hive URL."""
    executors: list[str]
    link: str = "standalone"
    """The hive link's state: ``standalone``, ``connecting``, ``connected``, ``disconnected``."""
    store: str = "ok"
    """``ok`` when the SQLite store answered a read within 2 s, else ``unavailable``."""
    outbox_backlog: int | None = None
    """Ops not yet acknowledged by the hive (``None`` when the store did not answer)."""


@get(
    "/health",
    summary="Liveness of the node",
    responses={503: ResponseSpec(Health, description="Degraded: the store does not answer")},
)
async def health(ctx: Ctx) -> Response[Health]:
    settings = ctx.settings
    backlog: int | None
    try:
        async with asyncio.timeout(STORE_TIMEOUT_S), ctx.store.read() as conn:
            backlog = await outbox.backlog_count(conn)
    except Exception:
        backlog = None
    link = ctx.link
    body = Health(
        status="ok" if backlog is not None else "degraded",
        version=__version__,
        node_name=settings.name,
        hive="standalone" if settings.standalone else settings.hive_url,
        executors=list(settings.executors),
        link="standalone" if link is None else link.state.state,
        store="ok" if backlog is not None else "unavailable",
        outbox_backlog=backlog,
    )
    return Response(body, status_code=200 if backlog is not None else 503)
