"""Task attempts: one git worktree and branch per attempt. Creating or changing an attempt of a
linked project appends ``attempt.upsert`` in the same transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import aiosqlite
import msgspec

from vk_node.errors import NotFound
from vk_node.store import outbox
from vk_node.store.codec import now_db, uuid_to_db
from vk_node.store.models import Project, Task, TaskAttempt
from vk_node.store.repositories import projects, tasks
from vk_node.store.sql import execute, fetch_all, fetch_model, fetch_models, fetch_value

__all__ = [
    "AttemptContext",
    "clear_container_ref",
    "container_ref_exists",
    "create",
    "delete",
    "fetch_all_attempts",
    "find_by_hive_assignment_id",
    "find_by_id",
    "find_by_worktree_deleted",
    "find_expired_for_cleanup",
    "get",
    "load_context",
    "mark_setup_completed",
    "mark_worktree_deleted",
    "reset_worktree_deleted",
    "resolve_container_ref",
    "set_hive_assignment_id",
    "update_branch_name",
    "update_container_ref",
    "update_target_branch",
    "update_target_branch_for_children_of_task",
]


class AttemptContext(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt with its task and project (validated to belong together)."""

    task_attempt: TaskAttempt
    task: Task
    project: Project


async def count(conn: aiosqlite.Connection) -> int:
    """Number of attempts in the store."""
    return int(await fetch_value(conn, "SELECT COUNT(*) FROM task_attempts"))


async def find_by_id(conn: aiosqlite.Connection, attempt_id: UUID) -> TaskAttempt | None:
    return await fetch_model(
        conn, TaskAttempt, "SELECT * FROM task_attempts WHERE id = ?", (uuid_to_db(attempt_id),)
    )


async def get(conn: aiosqlite.Connection, attempt_id: UUID) -> TaskAttempt:
    """:func:`find_by_id` or :class:`NotFound`."""
    attempt = await find_by_id(conn, attempt_id)
    if attempt is None:
        raise NotFound(f"task attempt {attempt_id} not found")
    return attempt


async def fetch_all_attempts(
    conn: aiosqlite.Connection, task_id: UUID | None = None
) -> list[TaskAttempt]:
    """A task's attempts, newest first; without a task the newest 500 of all."""
    if task_id is None:
        return await fetch_models(
            conn,
            TaskAttempt,
            "SELECT * FROM task_attempts ORDER BY created_at DESC, rowid DESC LIMIT 500",
        )
    return await fetch_models(
        conn,
        TaskAttempt,
        "SELECT * FROM task_attempts WHERE task_id = ? ORDER BY created_at DESC, rowid DESC",
        (uuid_to_db(task_id),),
    )


async def load_context(
    conn: aiosqlite.Connection, attempt_id: UUID, task_id: UUID, project_id: UUID
) -> AttemptContext:
    """The attempt, its task and project; :class:`NotFound` unless attempt ∈ task ∈ project."""
    ok = await fetch_value(
        conn,
        """SELECT 1 FROM task_attempts a JOIN tasks t ON t.id = a.task_id
           WHERE a.id = ? AND t.id = ? AND t.project_id = ?""",
        (uuid_to_db(attempt_id), uuid_to_db(task_id), uuid_to_db(project_id)),
    )
    if not ok:
        raise NotFound(f"task attempt {attempt_id} not found in task {task_id}")
    return AttemptContext(
        task_attempt=await get(conn, attempt_id),
        task=await tasks.get(conn, task_id),
        project=await projects.get(conn, project_id),
    )


async def find_by_hive_assignment_id(
    conn: aiosqlite.Connection, assignment_id: UUID
) -> TaskAttempt | None:
    return await fetch_model(
        conn,
        TaskAttempt,
        """SELECT * FROM task_attempts WHERE hive_assignment_id = ?
           ORDER BY created_at DESC LIMIT 1""",
        (str(assignment_id),),
    )


async def create(
    conn: aiosqlite.Connection,
    attempt_id: UUID,
    *,
    task_id: UUID,
    executor: str,
    base_branch: str,
    branch: str,
    origin_node_id: UUID | None = None,
    hive_assignment_id: UUID | None = None,
    fencing_token: int | None = None,
) -> TaskAttempt:
    """Insert an attempt (``target_branch`` = base branch) and append ``attempt.upsert``."""
    now = now_db()
    await execute(
        conn,
        """INSERT INTO task_attempts (id, task_id, executor, branch, target_branch,
               origin_node_id, hive_assignment_id, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            uuid_to_db(attempt_id),
            uuid_to_db(task_id),
            executor,
            branch,
            base_branch,
            None if origin_node_id is None else str(origin_node_id),
            None if hive_assignment_id is None else str(hive_assignment_id),
            now,
            now,
        ),
    )
    await outbox.enqueue_attempt_upsert(conn, attempt_id, fencing_token=fencing_token)
    return await get(conn, attempt_id)


async def _set(
    conn: aiosqlite.Connection,
    attempt_id: UUID,
    assignment: str,
    params: tuple[Any, ...],
    *,
    publish: bool = True,
) -> TaskAttempt:
    # `assignment` is always a constant of this module, never caller input.
    changed = await execute(
        conn,
        f"UPDATE task_attempts SET {assignment}, updated_at = ? WHERE id = ?",  # noqa: S608
        (*params, now_db(), uuid_to_db(attempt_id)),
    )
    if not changed:
        raise NotFound(f"task attempt {attempt_id} not found")
    if publish:
        await outbox.enqueue_attempt_upsert(conn, attempt_id)
    return await get(conn, attempt_id)


async def update_container_ref(
    conn: aiosqlite.Connection, attempt_id: UUID, container_ref: str
) -> TaskAttempt:
    """Record the worktree path (local detail: no op)."""
    return await _set(conn, attempt_id, "container_ref = ?", (container_ref,), publish=False)


async def clear_container_ref(conn: aiosqlite.Connection, attempt_id: UUID) -> TaskAttempt:
    return await _set(conn, attempt_id, "container_ref = NULL", (), publish=False)


async def mark_worktree_deleted(conn: aiosqlite.Connection, attempt_id: UUID) -> TaskAttempt:
    return await _set(conn, attempt_id, "worktree_deleted = 1", ())


async def reset_worktree_deleted(conn: aiosqlite.Connection, attempt_id: UUID) -> TaskAttempt:
    return await _set(conn, attempt_id, "worktree_deleted = 0", ())


async def mark_setup_completed(conn: aiosqlite.Connection, attempt_id: UUID) -> TaskAttempt:
    return await _set(conn, attempt_id, "setup_completed_at = ?", (now_db(),))


async def update_target_branch(
    conn: aiosqlite.Connection, attempt_id: UUID, target_branch: str
) -> TaskAttempt:
    return await _set(conn, attempt_id, "target_branch = ?", (target_branch,))


async def update_branch_name(
    conn: aiosqlite.Connection, attempt_id: UUID, branch: str
) -> TaskAttempt:
    return await _set(conn, attempt_id, "branch = ?", (branch,))


async def set_hive_assignment_id(
    conn: aiosqlite.Connection, attempt_id: UUID, assignment_id: UUID
) -> TaskAttempt:
    return await _set(conn, attempt_id, "hive_assignment_id = ?", (str(assignment_id),))


async def update_target_branch_for_children_of_task(
    conn: aiosqlite.Connection, parent_task_id: UUID, old_branch: str, new_branch: str
) -> int:
    """Retarget attempts of the child tasks that targeted ``old_branch``."""
    rows = await fetch_all(
        conn,
        """SELECT a.id FROM task_attempts a JOIN tasks t ON t.id = a.task_id
           WHERE t.parent_task_id = ? AND a.target_branch = ?""",
        (uuid_to_db(parent_task_id), old_branch),
    )
    for row in rows:
        await update_target_branch(conn, UUID(bytes=row[0]), new_branch)
    return len(rows)


async def find_by_worktree_deleted(conn: aiosqlite.Connection) -> list[TaskAttempt]:
    """Attempts whose worktree still exists."""
    return await fetch_models(
        conn,
        TaskAttempt,
        """SELECT * FROM task_attempts WHERE worktree_deleted = 0 AND container_ref IS NOT NULL
           ORDER BY created_at""",
    )


async def container_ref_exists(
    conn: aiosqlite.Connection, container_ref: str, *, besides: UUID | None = None
) -> bool:
    """Whether a live attempt (other than ``besides``) uses this worktree path."""
    other = b"" if besides is None else besides.bytes
    return bool(
        await fetch_value(
            conn,
            """SELECT EXISTS (SELECT 1 FROM task_attempts
                              WHERE container_ref = ? AND worktree_deleted = 0 AND id <> ?)""",
            (container_ref, other),
        )
    )


async def find_expired_for_cleanup(
    conn: aiosqlite.Connection, *, older_than_hours: float = 72.0
) -> list[TaskAttempt]:
    """Live worktrees with no running process whose last activity (latest process completion,
    else the attempt's update) is older than ``older_than_hours``."""
    return await fetch_models(
        conn,
        TaskAttempt,
        """SELECT a.* FROM task_attempts a
           WHERE a.worktree_deleted = 0 AND a.container_ref IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM execution_processes e
                             WHERE e.task_attempt_id = a.id AND e.status = 'running')
             AND COALESCE((SELECT MAX(e.completed_at) FROM execution_processes e
                           WHERE e.task_attempt_id = a.id), a.updated_at)
                 < strftime('%Y-%m-%d %H:%M:%f', 'now', ?)
           ORDER BY a.updated_at""",
        (f"-{float(older_than_hours) * 3600:.0f} seconds",),
    )


async def resolve_container_ref(
    conn: aiosqlite.Connection, container_ref: str
) -> AttemptContext | None:
    """The attempt using a worktree path (preferring one with a running process, then newest)."""
    attempt = await fetch_model(
        conn,
        TaskAttempt,
        """SELECT a.* FROM task_attempts a WHERE a.container_ref = ?
           ORDER BY EXISTS (SELECT 1 FROM execution_processes e
                            WHERE e.task_attempt_id = a.id AND e.status = 'running') DESC,
                    a.created_at DESC LIMIT 1""",
        (container_ref,),
    )
    if attempt is None:
        return None
    task = await tasks.get(conn, attempt.task_id)
    return AttemptContext(
        task_attempt=attempt, task=task, project=await projects.get(conn, task.project_id)
    )


async def delete(conn: aiosqlite.Connection, attempt_id: UUID) -> bool:
    return bool(
        await execute(conn, "DELETE FROM task_attempts WHERE id = ?", (uuid_to_db(attempt_id),))
    )
