"""``GET /api/metrics``: Prometheus text exposition of this node (loopback, like the rest of
``/api``)."""

from __future__ import annotations

from litestar import Response, get

from vk_node.api.deps import Ctx
from vk_node.metrics import CONTENT_TYPE_LATEST

__all__ = ["metrics"]


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(ctx: Ctx) -> Response[bytes]:
    body = await ctx.metrics.render(ctx)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
