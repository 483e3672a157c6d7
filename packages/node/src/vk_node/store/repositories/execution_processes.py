"""Execution processes (setup script, coding agent, cleanup, dev server) of an attempt: creation
and completion (each appends ``execution.upsert`` for linked projects), crash-recovery helpers,
session lookups and the restore boundary."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import aiosqlite

from vk_node.errors import InvalidTransition, NotFound
from vk_node.store import milestones, outbox
from vk_node.store.codec import now_db, ts_to_db, uuid_to_db
from vk_node.store.models import ExecutionContext, ExecutionProcess
from vk_node.store.repositories import task_attempts, tasks
from vk_node.store.sql import execute, fetch_all, fetch_model, fetch_models, fetch_value

__all__ = [
    "count_later_than",
    "create",
    "drop_at_and_after",
    "find_by_id",
    "find_by_task_attempt_id",
    "find_latest_by_task_attempt_and_run_reason",
    "find_latest_for_attempt",
    "find_latest_session_id_by_task_attempt",
    "find_prev_after_head_commit",
    "find_previous_session_ids",
    "find_running",
    "find_running_by_instance",
    "find_running_by_task_attempt",
    "find_running_dev_servers_by_project",
    "find_running_dev_servers_by_task_attempt",
    "find_running_with_pids",
    "find_session_id_before_process",
    "get",
    "get_fence_attempt_count",
    "increment_fence_attempt_count",
    "latest_executor_profile_for_attempt",
    "load_context",
    "mark_orphaned_as_failed",
    "set_restore_boundary",
    "set_resume_state",
    "update_after_head_commit",
    "update_completion",
    "update_pid",
    "update_pid_and_start",
    "was_stopped",
]

_STATUSES = frozenset({"running", "completed", "failed", "killed"})


async def find_by_id(conn: aiosqlite.Connection, process_id: UUID) -> ExecutionProcess | None:
    return await fetch_model(
        conn,
        ExecutionProcess,
        "SELECT * FROM execution_processes WHERE id = ?",
        (uuid_to_db(process_id),),
    )


async def get(conn: aiosqlite.Connection, process_id: UUID) -> ExecutionProcess:
    """:func:`find_by_id` or :class:`NotFound`."""
    process = await find_by_id(conn, process_id)
    if process is None:
        raise NotFound(f"execution process {process_id} not found")
    return process


async def create(
    conn: aiosqlite.Connection,
    process_id: UUID,
    *,
    task_attempt_id: UUID,
    run_reason: str,
    executor_action: dict[str, Any] | str,
    before_head_commit: str | None = None,
    server_instance_id: str | None = None,
    pid: int | None = None,
) -> ExecutionProcess:
    """Insert a ``running`` process (timestamps now), touch the task's ``activity_at`` and append
    ``execution.upsert``."""
    action = executor_action if isinstance(executor_action, str) else json.dumps(executor_action)
    now = now_db()
    await execute(
        conn,
        """INSERT INTO execution_processes (id, task_attempt_id, run_reason, executor_action,
               status, before_head_commit, server_instance_id, pid, started_at, created_at,
               updated_at)
           VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)""",
        (
            uuid_to_db(process_id),
            uuid_to_db(task_attempt_id),
            run_reason,
            action,
            before_head_commit,
            server_instance_id,
            pid,
            now,
            now,
            now,
        ),
    )
    attempt = await task_attempts.get(conn, task_attempt_id)
    await tasks.touch_activity(conn, attempt.task_id)
    await outbox.enqueue_execution_upsert(conn, process_id)
    await milestones.process_started(conn, process_id)
    return await get(conn, process_id)


async def load_context(conn: aiosqlite.Connection, process_id: UUID) -> ExecutionContext:
    """The process with its attempt and task."""
    process = await get(conn, process_id)
    attempt = await task_attempts.get(conn, process.task_attempt_id)
    return ExecutionContext(
        execution_process=process,
        task_attempt=attempt,
        task=await tasks.get(conn, attempt.task_id),
    )


async def latest_executor_profile_for_attempt(
    conn: aiosqlite.Connection, attempt_id: UUID
) -> dict[str, Any] | None:
    """The ``executor_profile_id`` of the newest coding-agent action of the attempt, if any."""
    value = await fetch_value(
        conn,
        """SELECT json_extract(executor_action, '$.typ.executor_profile_id')
           FROM execution_processes
           WHERE task_attempt_id = ? AND run_reason = 'codingagent'
             AND json_valid(executor_action)
             AND json_extract(executor_action, '$.typ.executor_profile_id') IS NOT NULL
           ORDER BY created_at DESC, rowid DESC LIMIT 1""",
        (uuid_to_db(attempt_id),),
    )
    if value is None:
        return None
    parsed = json.loads(value) if isinstance(value, str) else value
    return parsed if isinstance(parsed, dict) else {"executor": parsed}


async def find_by_task_attempt_id(
    conn: aiosqlite.Connection, attempt_id: UUID, *, include_dropped: bool = False
) -> list[ExecutionProcess]:
    """The attempt's processes, oldest first."""
    return await fetch_models(
        conn,
        ExecutionProcess,
        """SELECT * FROM execution_processes WHERE task_attempt_id = ? AND (? OR dropped = 0)
           ORDER BY created_at, rowid""",
        (uuid_to_db(attempt_id), int(include_dropped)),
    )


async def find_running(conn: aiosqlite.Connection) -> list[ExecutionProcess]:
    return await fetch_models(
        conn,
        ExecutionProcess,
        "SELECT * FROM execution_processes WHERE status = 'running' ORDER BY created_at",
    )


async def find_running_by_instance(
    conn: aiosqlite.Connection, server_instance_id: str
) -> list[ExecutionProcess]:
    return await fetch_models(
        conn,
        ExecutionProcess,
        """SELECT * FROM execution_processes WHERE status = 'running'
           AND server_instance_id = ? ORDER BY created_at""",
        (server_instance_id,),
    )


async def find_running_with_pids(conn: aiosqlite.Connection) -> list[ExecutionProcess]:
    return await fetch_models(
        conn,
        ExecutionProcess,
        """SELECT * FROM execution_processes WHERE status = 'running' AND pid IS NOT NULL
           ORDER BY created_at""",
    )


async def find_running_by_task_attempt(
    conn: aiosqlite.Connection, attempt_id: UUID
) -> list[ExecutionProcess]:
    return await fetch_models(
        conn,
        ExecutionProcess,
        """SELECT * FROM execution_processes WHERE status = 'running' AND task_attempt_id = ?
           ORDER BY created_at""",
        (uuid_to_db(attempt_id),),
    )


async def find_running_dev_servers_by_project(
    conn: aiosqlite.Connection, project_id: UUID
) -> list[ExecutionProcess]:
    return await fetch_models(
        conn,
        ExecutionProcess,
        """SELECT e.* FROM execution_processes e
           JOIN task_attempts a ON a.id = e.task_attempt_id JOIN tasks t ON t.id = a.task_id
           WHERE e.status = 'running' AND e.run_reason = 'devserver' AND t.project_id = ?
           ORDER BY e.created_at""",
        (uuid_to_db(project_id),),
    )


async def find_running_dev_servers_by_task_attempt(
    conn: aiosqlite.Connection, attempt_id: UUID
) -> list[ExecutionProcess]:
    return await fetch_models(
        conn,
        ExecutionProcess,
        """SELECT * FROM execution_processes WHERE status = 'running'
           AND run_reason = 'devserver' AND task_attempt_id = ? ORDER BY created_at""",
        (uuid_to_db(attempt_id),),
    )


async def find_latest_by_task_attempt_and_run_reason(
    conn: aiosqlite.Connection, attempt_id: UUID, run_reason: str
) -> ExecutionProcess | None:
    return await fetch_model(
        conn,
        ExecutionProcess,
        """SELECT * FROM execution_processes
           WHERE task_attempt_id = ? AND run_reason = ? AND dropped = 0
           ORDER BY created_at DESC, rowid DESC LIMIT 1""",
        (uuid_to_db(attempt_id), run_reason),
    )


async def find_latest_for_attempt(
    conn: aiosqlite.Connection, attempt_id: UUID
) -> ExecutionProcess | None:
    return await fetch_model(
        conn,
        ExecutionProcess,
        """SELECT * FROM execution_processes WHERE task_attempt_id = ? AND dropped = 0
           ORDER BY created_at DESC, rowid DESC LIMIT 1""",
        (uuid_to_db(attempt_id),),
    )


_SESSIONS = """
SELECT s.session_id FROM execution_processes e
JOIN executor_sessions s ON s.execution_process_id = e.id
WHERE e.task_attempt_id = ? AND e.run_reason = 'codingagent' AND s.session_id IS NOT NULL
"""


async def find_latest_session_id_by_task_attempt(
    conn: aiosqlite.Connection, attempt_id: UUID
) -> str | None:
    """Newest agent session id of the attempt, preferring non-dropped processes."""
    value = await fetch_value(
        conn,
        _SESSIONS + " ORDER BY e.dropped ASC, e.created_at DESC, e.rowid DESC LIMIT 1",
        (uuid_to_db(attempt_id),),
    )
    return None if value is None else str(value)


async def find_previous_session_ids(
    conn: aiosqlite.Connection, attempt_id: UUID, limit: int
) -> list[str]:
    rows = await fetch_all(
        conn,
        _SESSIONS + " ORDER BY e.dropped ASC, e.created_at DESC, e.rowid DESC LIMIT ?",
        (uuid_to_db(attempt_id), int(limit)),
    )
    return [str(r[0]) for r in rows]


async def find_session_id_before_process(
    conn: aiosqlite.Connection, attempt_id: UUID, boundary_process_id: UUID
) -> str | None:
    """Newest non-dropped agent session strictly before the boundary process, in the
    (created_at, rowid) order every lookup here uses: timestamps have millisecond resolution,
    so two processes may share one."""
    boundary = await get(conn, boundary_process_id)
    value = await fetch_value(
        conn,
        _SESSIONS  # noqa: S608 (constants only; values are parameters)
        + """ AND e.dropped = 0 AND (e.created_at, e.rowid) <
               (?, (SELECT rowid FROM execution_processes WHERE id = ?))
           ORDER BY e.created_at DESC, e.rowid DESC LIMIT 1""",
        (uuid_to_db(attempt_id), _ts(boundary), uuid_to_db(boundary_process_id)),
    )
    return None if value is None else str(value)


def _ts(process: ExecutionProcess) -> str:
    return ts_to_db(process.created_at)


async def update_completion(
    conn: aiosqlite.Connection,
    process_id: UUID,
    *,
    status: str,
    exit_code: int | None = None,
    completion_reason: str | None = None,
    completion_message: str | None = None,
) -> ExecutionProcess:
    """Record the end of a process (``completed_at = now`` unless still running) and append
    ``execution.upsert``."""
    if status not in _STATUSES:
        raise InvalidTransition(f"not an execution status: {status!r}")
    now = now_db()
    changed = await execute(
        conn,
        """UPDATE execution_processes SET status = ?, exit_code = ?, completion_reason = ?,
               completion_message = ?,
               completed_at = CASE WHEN ? = 'running' THEN completed_at ELSE ? END,
               updated_at = ?
           WHERE id = ?""",
        (
            status,
            exit_code,
            completion_reason,
            completion_message,
            status,
            now,
            now,
            uuid_to_db(process_id),
        ),
    )
    if not changed:
        raise NotFound(f"execution process {process_id} not found")
    await outbox.enqueue_execution_upsert(conn, process_id)
    await milestones.process_ended(conn, process_id, status, exit_code)
    return await get(conn, process_id)


async def _set(
    conn: aiosqlite.Connection,
    process_id: UUID,
    assignment: str,
    params: tuple[Any, ...],
    *,
    publish: bool,
) -> None:
    # `assignment` is always a constant of this module, never caller input.
    changed = await execute(
        conn,
        f"UPDATE execution_processes SET {assignment}, updated_at = ? WHERE id = ?",  # noqa: S608
        (*params, now_db(), uuid_to_db(process_id)),
    )
    if not changed:
        raise NotFound(f"execution process {process_id} not found")
    if publish:
        await outbox.enqueue_execution_upsert(conn, process_id)


async def update_pid(conn: aiosqlite.Connection, process_id: UUID, pid: int | None) -> None:
    await _set(conn, process_id, "pid = ?", (pid,), publish=True)


async def update_pid_and_start(
    conn: aiosqlite.Connection, process_id: UUID, pid: int, start_ticks: int | None
) -> None:
    """Record the spawned process: its pid and start time (crash recovery needs both)."""
    await _set(conn, process_id, "pid = ?, pid_start_ticks = ?", (pid, start_ticks), publish=True)


async def update_after_head_commit(
    conn: aiosqlite.Connection, process_id: UUID, commit: str
) -> None:
    await _set(conn, process_id, "after_head_commit = ?", (commit,), publish=True)


async def was_stopped(conn: aiosqlite.Connection, process_id: UUID) -> bool:
    """Whether the process was killed or completed."""
    process = await get(conn, process_id)
    return process.status in ("killed", "completed")


async def set_restore_boundary(
    conn: aiosqlite.Connection, attempt_id: UUID, boundary_process_id: UUID
) -> int:
    """Drop the attempt's processes created strictly after the boundary (never un-drops)."""
    return await _drop(conn, attempt_id, boundary_process_id, inclusive=False)


async def drop_at_and_after(
    conn: aiosqlite.Connection, attempt_id: UUID, boundary_process_id: UUID
) -> int:
    """Drop the boundary process and every later one of the attempt (never un-drops)."""
    return await _drop(conn, attempt_id, boundary_process_id, inclusive=True)


async def _drop(
    conn: aiosqlite.Connection, attempt_id: UUID, boundary_process_id: UUID, *, inclusive: bool
) -> int:
    boundary = await get(conn, boundary_process_id)
    if boundary.task_attempt_id != attempt_id:
        raise NotFound(f"execution process {boundary_process_id} is not in attempt {attempt_id}")
    rows = await fetch_all(
        conn,
        """UPDATE execution_processes SET dropped = 1, updated_at = ?
           WHERE task_attempt_id = ? AND dropped = 0
             AND (created_at > ? OR (created_at = ? AND rowid > ?)
                  OR (? AND id = ?))
           RETURNING id""",
        (
            now_db(),
            uuid_to_db(attempt_id),
            _ts(boundary),
            _ts(boundary),
            await _rowid(conn, boundary_process_id),
            int(inclusive),
            uuid_to_db(boundary_process_id),
        ),
    )
    for row in rows:
        await outbox.enqueue_execution_upsert(conn, UUID(bytes=row[0]))
    return len(rows)


async def _rowid(conn: aiosqlite.Connection, process_id: UUID) -> int:
    return int(
        await fetch_value(
            conn, "SELECT rowid FROM execution_processes WHERE id = ?", (uuid_to_db(process_id),)
        )
    )


async def find_prev_after_head_commit(
    conn: aiosqlite.Connection, attempt_id: UUID, boundary_process_id: UUID
) -> str | None:
    """``after_head_commit`` of the newest process before the boundary that has one."""
    boundary = await get(conn, boundary_process_id)
    value = await fetch_value(
        conn,
        """SELECT after_head_commit FROM execution_processes
           WHERE task_attempt_id = ? AND after_head_commit IS NOT NULL
             AND (created_at, rowid) < (?, (SELECT rowid FROM execution_processes WHERE id = ?))
           ORDER BY created_at DESC, rowid DESC LIMIT 1""",
        (uuid_to_db(attempt_id), _ts(boundary), uuid_to_db(boundary_process_id)),
    )
    return None if value is None else str(value)


async def count_later_than(
    conn: aiosqlite.Connection, attempt_id: UUID, boundary_process_id: UUID
) -> int:
    """Number of the attempt's non-dropped processes after the boundary."""
    boundary = await get(conn, boundary_process_id)
    return int(
        await fetch_value(
            conn,
            """SELECT COUNT(*) FROM execution_processes
               WHERE task_attempt_id = ? AND dropped = 0
                 AND (created_at > ? OR (created_at = ? AND rowid > ?))""",
            (
                uuid_to_db(attempt_id),
                _ts(boundary),
                _ts(boundary),
                await _rowid(conn, boundary_process_id),
            ),
        )
    )


async def mark_orphaned_as_failed(conn: aiosqlite.Connection, server_instance_id: str) -> int:
    """Fail running processes of other (or unknown) instances that are not being resumed;
    appends ``execution.upsert`` for each."""
    now = now_db()
    rows = await fetch_all(
        conn,
        """UPDATE execution_processes
           SET status = 'failed', completed_at = ?, updated_at = ?,
               completion_reason = COALESCE(completion_reason, 'error'),
               completion_message = COALESCE(completion_message, 'orphaned by a restart')
           WHERE status = 'running'
             AND (server_instance_id IS NULL OR server_instance_id <> ?)
             AND (resume_state IS NULL OR resume_state NOT IN ('pending', 'resumed'))
           RETURNING id""",
        (now, now, server_instance_id),
    )
    for row in rows:
        await outbox.enqueue_execution_upsert(conn, UUID(bytes=row[0]))
    return len(rows)


async def set_resume_state(conn: aiosqlite.Connection, process_id: UUID, state: str | None) -> None:
    await _set(conn, process_id, "resume_state = ?", (state,), publish=False)


async def increment_fence_attempt_count(conn: aiosqlite.Connection, process_id: UUID) -> int:
    await _set(conn, process_id, "fence_attempt_count = fence_attempt_count + 1", (), publish=False)
    return await get_fence_attempt_count(conn, process_id)


async def get_fence_attempt_count(conn: aiosqlite.Connection, process_id: UUID) -> int:
    return (await get(conn, process_id)).fence_attempt_count
