"""Executor sessions: the coding agent's own session id, prompt and summary per agent process."""

from __future__ import annotations

from uuid import UUID, uuid4

import aiosqlite

from vk_node.errors import NotFound
from vk_node.store.codec import now_db, uuid_to_db
from vk_node.store.models import ExecutorSession
from vk_node.store.sql import execute, fetch_model, fetch_models, fetch_value

__all__ = [
    "count_fixable_sessions",
    "create",
    "find_by_id",
    "find_by_task_attempt_id",
    "invalidate_failed_sessions",
    "mark_session_invalid",
    "update_session_id",
    "update_summary",
]


async def create(
    conn: aiosqlite.Connection, attempt_id: UUID, process_id: UUID, prompt: str | None
) -> ExecutorSession:
    session_id = uuid4()
    now = now_db()
    await execute(
        conn,
        """INSERT INTO executor_sessions (id, task_attempt_id, execution_process_id, prompt,
               created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)""",
        (session_id.bytes, uuid_to_db(attempt_id), uuid_to_db(process_id), prompt, now, now),
    )
    found = await find_by_id(conn, session_id)
    assert found is not None
    return found


async def find_by_id(conn: aiosqlite.Connection, session_id: UUID) -> ExecutorSession | None:
    return await fetch_model(
        conn, ExecutorSession, "SELECT * FROM executor_sessions WHERE id = ?", (session_id.bytes,)
    )


async def find_by_task_attempt_id(
    conn: aiosqlite.Connection, attempt_id: UUID
) -> list[ExecutorSession]:
    return await fetch_models(
        conn,
        ExecutorSession,
        "SELECT * FROM executor_sessions WHERE task_attempt_id = ? ORDER BY created_at, rowid",
        (uuid_to_db(attempt_id),),
    )


async def _update(conn: aiosqlite.Connection, sql: str, params: tuple[object, ...]) -> None:
    if not await execute(conn, sql, params):
        raise NotFound("executor session not found")


async def update_session_id(
    conn: aiosqlite.Connection, process_id: UUID, agent_session_id: str
) -> None:
    await _update(
        conn,
        """UPDATE executor_sessions SET session_id = ?, updated_at = ?
           WHERE execution_process_id = ?""",
        (agent_session_id, now_db(), uuid_to_db(process_id)),
    )


async def update_summary(conn: aiosqlite.Connection, process_id: UUID, summary: str) -> None:
    await _update(
        conn,
        """UPDATE executor_sessions SET summary = ?, updated_at = ?
           WHERE execution_process_id = ?""",
        (summary, now_db(), uuid_to_db(process_id)),
    )


async def mark_session_invalid(conn: aiosqlite.Connection, agent_session_id: str) -> int:
    """Forget an agent session id wherever it appears (forces a fresh session)."""
    return await execute(
        conn,
        "UPDATE executor_sessions SET session_id = NULL, updated_at = ? WHERE session_id = ?",
        (now_db(), agent_session_id),
    )


async def count_fixable_sessions(conn: aiosqlite.Connection, attempt_id: UUID) -> int:
    """Sessions of the attempt whose process failed or was killed but still carry a session id."""
    return int(
        await fetch_value(
            conn,
            """SELECT COUNT(*) FROM executor_sessions s
               JOIN execution_processes e ON e.id = s.execution_process_id
               WHERE s.task_attempt_id = ? AND s.session_id IS NOT NULL
                 AND e.status IN ('failed', 'killed')""",
            (uuid_to_db(attempt_id),),
        )
    )


async def invalidate_failed_sessions(conn: aiosqlite.Connection, attempt_id: UUID) -> int:
    """The "fix sessions" action: clear the ids counted by :func:`count_fixable_sessions`."""
    return await execute(
        conn,
        """UPDATE executor_sessions SET session_id = NULL, updated_at = ?
           WHERE task_attempt_id = ? AND session_id IS NOT NULL
             AND execution_process_id IN
                 (SELECT id FROM execution_processes WHERE status IN ('failed', 'killed'))""",
        (now_db(), uuid_to_db(attempt_id)),
    )
