"""``/api/activity``: tasks that need attention (in review, running, recently done), with
per-task dismissals that a later status change clears."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_204_NO_CONTENT

from vk_node.api.deps import Db
from vk_node.store.models import ActivityFeedItem
from vk_node.store.repositories import activity as activity_repo
from vk_node.store.repositories import tasks as tasks_repo

__all__ = ["ActivityController"]


class ActivityController(Controller):
    path = "/activity"
    tags: list[str] | None = ["activity"]

    @get("/", summary="The activity feed, most recent first")
    async def feed(
        self, store: Db, include_dismissed: FromQuery[bool] = False
    ) -> list[ActivityFeedItem]:
        async with store.read() as conn:
            return await activity_repo.feed(conn, include_dismissed=include_dismissed)

    @get("/counts", summary="How many feed items there are, and how many are dismissed")
    async def counts(self, store: Db) -> activity_repo.FeedCounts:
        async with store.read() as conn:
            return await activity_repo.counts(conn)

    @post("/{task_id:uuid}/dismiss", status_code=HTTP_204_NO_CONTENT, summary="Dismiss a task")
    async def dismiss(self, store: Db, task_id: FromPath[UUID]) -> None:
        async with store.transaction() as conn:
            await tasks_repo.get(conn, task_id)
            await activity_repo.dismiss(conn, task_id)

    @delete("/{task_id:uuid}/dismiss", summary="Restore a dismissed task")
    async def undismiss(self, store: Db, task_id: FromPath[UUID]) -> None:
        async with store.transaction() as conn:
            await tasks_repo.get(conn, task_id)
            await activity_repo.undismiss(conn, task_id)
