"""Activity catch-up: ``GET /v1/activity?project_id=&after=&limit=`` (paged by seq)."""

from __future__ import annotations

import uuid

import msgspec
from litestar import get
from litestar.params import FromQuery

from vk_hive.api.access import member_of_entity
from vk_hive.api.deps import Auth, Ctx
from vk_hive.api.types import Cursor, PageLimit
from vk_hive.store.models import ActivityEvent
from vk_hive.store.repositories import activity, swarm_projects
from vk_shared.openapi import answers

__all__ = ["activity_page"]


class ActivityPage(msgspec.Struct, frozen=True):
    events: list[ActivityEvent]
    next_after: int
    latest_seq: int
    resync_required: bool


@get(
    "/activity",
    summary="Activity of a swarm project after a seq",
    tags=["activity"],
    opt=answers(404),
)
async def activity_page(
    ctx: Ctx,
    principal: Auth,
    project_id: FromQuery[uuid.UUID],
    after: Cursor = 0,
    limit: PageLimit = 200,
) -> ActivityPage:
    async with ctx.database.acquire() as conn:
        await member_of_entity(
            conn, swarm_projects.organization_id, project_id, principal, "swarm project"
        )
        events = await activity.fetch_since(conn, project_id, after, limit)
        latest = await activity.last_seq(conn, project_id)
        oldest = await activity.min_retained_seq(conn, project_id)
    # The cursor is older than what retention kept: the client must take a snapshot.
    resync = after < oldest - 1
    return ActivityPage(
        events=events,
        next_after=events[-1].seq if events else after,
        latest_seq=latest,
        resync_required=resync,
    )
