"""Workstream state (view ``v_workstream_state``): process + attempt + session, for recovery."""

from __future__ import annotations

from uuid import UUID

import aiosqlite

from vk_node.store.codec import uuid_to_db
from vk_node.store.models import WorkstreamState
from vk_node.store.sql import fetch_models

__all__ = ["find_by_task_attempt", "find_resumable_running"]


async def find_by_task_attempt(
    conn: aiosqlite.Connection, attempt_id: UUID
) -> list[WorkstreamState]:
    return await fetch_models(
        conn,
        WorkstreamState,
        "SELECT * FROM v_workstream_state WHERE task_attempt_id = ? ORDER BY created_at",
        (uuid_to_db(attempt_id),),
    )


async def find_resumable_running(conn: aiosqlite.Connection) -> list[WorkstreamState]:
    """Running processes marked for resumption (``resume_state = 'pending'``) with a worktree."""
    return await fetch_models(
        conn,
        WorkstreamState,
        """SELECT * FROM v_workstream_state
           WHERE status = 'running' AND resume_state = 'pending' AND container_ref IS NOT NULL
           ORDER BY created_at""",
    )
