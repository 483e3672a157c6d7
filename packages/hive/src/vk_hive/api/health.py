"""``GET /v1/health``: no auth; reports whether the database answers."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from vk_hive import __version__
from vk_hive.api.deps import Ctx
from vk_shared.protocol import PROTOCOL_VERSION

__all__ = ["health"]


class Health(msgspec.Struct, frozen=True):
    status: str
    database: str
    version: str
    protocol_version: int


@get(
    "/health",
    summary="Liveness and database reachability",
    responses={503: ResponseSpec(Health, description="Degraded: the store does not answer")},
)
async def health(ctx: Ctx) -> Response[Health]:
    try:
        async with asyncio.timeout(3.0), ctx.database.acquire() as conn:
            await conn.fetchval("SELECT 1")
        db_state = "ok"
    except Exception:
        db_state = "unreachable"
    ok = db_state == "ok"
    body = Health(
        status="ok" if ok else "degraded",
        database=db_state,
        version=__version__,
        protocol_version=PROTOCOL_VERSION,
    )
    return Response(body, status_code=200 if ok else 503)
