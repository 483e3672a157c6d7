"""Per swarm project: the last hive activity ``seq`` applied (written in the same transaction as
the event's effect)."""

from __future__ import annotations

from uuid import UUID

import aiosqlite

from vk_node.store.codec import now_db
from vk_node.store.models import ActivityCursor
from vk_node.store.sql import execute, fetch_model, fetch_models

__all__ = ["delete", "get", "list_all", "upsert"]


async def get(conn: aiosqlite.Connection, remote_project_id: UUID) -> ActivityCursor | None:
    return await fetch_model(
        conn,
        ActivityCursor,
        "SELECT * FROM shared_activity_cursors WHERE remote_project_id = ?",
        (remote_project_id.bytes,),
    )


async def list_all(conn: aiosqlite.Connection) -> list[ActivityCursor]:
    """Every cursor (sent in ``auth``)."""
    return await fetch_models(
        conn, ActivityCursor, "SELECT * FROM shared_activity_cursors ORDER BY remote_project_id"
    )


async def upsert(conn: aiosqlite.Connection, remote_project_id: UUID, last_seq: int) -> int:
    """Advance the cursor; it never moves backwards. Returns the stored seq."""
    await execute(
        conn,
        """INSERT INTO shared_activity_cursors (remote_project_id, last_seq, updated_at)
           VALUES (?, ?, ?)
           ON CONFLICT (remote_project_id) DO UPDATE SET last_seq = excluded.last_seq,
               updated_at = excluded.updated_at
           WHERE excluded.last_seq > shared_activity_cursors.last_seq""",
        (remote_project_id.bytes, int(last_seq), now_db()),
    )
    cursor = await get(conn, remote_project_id)
    assert cursor is not None
    return cursor.last_seq


async def delete(conn: aiosqlite.Connection, remote_project_id: UUID) -> bool:
    """Forget a cursor (resync from scratch, or the project was unlinked)."""
    return bool(
        await execute(
            conn,
            "DELETE FROM shared_activity_cursors WHERE remote_project_id = ?",
            (remote_project_id.bytes,),
        )
    )
