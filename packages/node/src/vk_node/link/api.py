"""``GET /api/link/status``: what the hive link is doing right now."""

from __future__ import annotations

from litestar import get

from vk_node.api.deps import Ctx
from vk_node.link.state import LinkStatus

__all__ = ["link_status"]


@get("/link/status", summary="State of the hive link")
async def link_status(ctx: Ctx) -> LinkStatus:
    """``standalone`` when no hive is configured; else the connection state, since when, the last
    error, when the next reconnect is due, the outbox backlog and the leases held."""
    link = ctx.link
    if link is None:
        settings = ctx.settings
        return LinkStatus(
            state="standalone", hive_url=settings.hive_url, hive_urls=list(settings.hive_urls)
        )
    return await link.status()
