"""Activity dismissals and the activity feed (tasks that need attention).

Feed: tasks ``inreview``; tasks ``inprogress`` with a running process; tasks ``done`` updated in
the last 24 hours; most recent ``activity_at`` first. Dismissed tasks are left out unless asked.
A status change clears the dismissal (see ``tasks.update_status``).
"""

from __future__ import annotations

from uuid import UUID, uuid4

import aiosqlite
import msgspec

from vk_node.store.codec import now_db, uuid_to_db
from vk_node.store.models import ActivityFeedItem
from vk_node.store.sql import execute, fetch_models, fetch_value

__all__ = ["FeedCounts", "clear_for_task", "counts", "dismiss", "feed", "is_dismissed", "undismiss"]


class FeedCounts(msgspec.Struct, frozen=True, kw_only=True):
    total: int
    dismissed: int


async def dismiss(conn: aiosqlite.Connection, task_id: UUID) -> None:
    """Dismiss a task from the feed (idempotent)."""
    await execute(
        conn,
        """INSERT INTO activity_dismissals (id, task_id, dismissed_at) VALUES (?, ?, ?)
           ON CONFLICT (task_id) DO NOTHING""",
        (uuid4().bytes, uuid_to_db(task_id), now_db()),
    )


async def undismiss(conn: aiosqlite.Connection, task_id: UUID) -> bool:
    return await clear_for_task(conn, task_id)


async def clear_for_task(conn: aiosqlite.Connection, task_id: UUID) -> bool:
    return bool(
        await execute(
            conn, "DELETE FROM activity_dismissals WHERE task_id = ?", (uuid_to_db(task_id),)
        )
    )


async def is_dismissed(conn: aiosqlite.Connection, task_id: UUID) -> bool:
    return bool(
        await fetch_value(
            conn,
            "SELECT EXISTS (SELECT 1 FROM activity_dismissals WHERE task_id = ?)",
            (uuid_to_db(task_id),),
        )
    )


async def feed(
    conn: aiosqlite.Connection, *, include_dismissed: bool = False
) -> list[ActivityFeedItem]:
    return await fetch_models(
        conn,
        ActivityFeedItem,
        """SELECT * FROM (
               SELECT t.id AS task_id, t.project_id, t.title, t.status, t.activity_at,
                      t.updated_at,
                      EXISTS (SELECT 1 FROM activity_dismissals d WHERE d.task_id = t.id)
                        AS dismissed
               FROM tasks t
               WHERE t.archived_at IS NULL AND (
                   t.status = 'inreview'
                   OR (t.status = 'inprogress' AND EXISTS (
                       SELECT 1 FROM task_attempts a
                       JOIN execution_processes e ON e.task_attempt_id = a.id
                       WHERE a.task_id = t.id AND e.status = 'running'))
                   OR (t.status = 'done'
                       AND t.updated_at > strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 day'))))
           WHERE (? OR NOT dismissed)
           ORDER BY COALESCE(activity_at, updated_at) DESC""",
        (int(include_dismissed),),
    )


async def counts(conn: aiosqlite.Connection) -> FeedCounts:
    items = await feed(conn, include_dismissed=True)
    return FeedCounts(total=len(items), dismissed=sum(1 for i in items if i.dismissed))
