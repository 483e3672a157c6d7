"""``GET /metrics``: Prometheus text exposition of this hive (no auth; outside ``/v1``)."""

from __future__ import annotations

import asyncio

import structlog
from litestar import Response, get

from vk_hive.api.deps import Ctx
from vk_hive.metrics import CONTENT_TYPE_LATEST
from vk_hive.store.repositories import activity, assignments

__all__ = ["metrics"]

log = structlog.get_logger("vk_hive.metrics")

SCRAPE_DB_TIMEOUT_S = 2.0


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(ctx: Ctx) -> Response[bytes]:
    """Gauges are read now: connected sessions from the gateway's registry, active leases with one
    COUNT on the partial lease index, the activity partitions from the catalog
    (``vk_hive_database_up`` 0 when that does not answer)."""
    gateway = ctx.gateway
    connected = len(gateway.registry) if gateway is not None else 0
    active: int | None
    partitions: int | None
    try:
        async with asyncio.timeout(SCRAPE_DB_TIMEOUT_S), ctx.database.acquire() as conn:
            active = await assignments.count_active_leases(conn)
            partitions = await activity.count_partitions(conn)
    except Exception as exc:
        log.warning("metrics.database_unreachable", error=type(exc).__name__)
        active = partitions = None
    body = ctx.metrics.render(
        connected_nodes=connected, active_leases=active, partitions=partitions
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST)
