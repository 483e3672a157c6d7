"""Tasks: create/update (each appends ``task.upsert`` for linked projects), hierarchy, archive,
the inbound hive upsert with its dirty guard, and the shared-id unlink helpers.

``activity_at`` (the list sort key) is set to now when the status changes and by
:func:`touch_activity` (execution start); plain edits leave it alone.

A local write is one ``INSERT``/``UPDATE … RETURNING`` of the whole row and whether its project is
linked; the ``task.upsert`` op is built from that row (nothing is read back).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import aiosqlite

from vk_node.errors import Conflict, NotFound
from vk_node.store import outbox
from vk_node.store.codec import (
    decode_row,
    now_db,
    ts_to_db,
    uuid_from_db,
    uuid_or_none,
    uuid_to_db,
)
from vk_node.store.models import Task, TaskAttempt, TaskRelationships, TaskWithAttemptStatus
from vk_node.store.sql import execute, fetch_all, fetch_model, fetch_models, fetch_value, run
from vk_shared.status import NodeTaskStatus

__all__ = [
    "archive",
    "archive_many",
    "clear_all_shared_task_ids_for_project",
    "count_archived_terminal_older_than",
    "create",
    "delete",
    "delete_archived_terminal_older_than",
    "find_archived_non_terminal",
    "find_by_id",
    "find_by_id_and_project_id",
    "find_by_project_id_with_attempt_status",
    "find_by_shared_task_id",
    "find_children_by_parent_id",
    "find_digest_entries",
    "find_purgeable_archived",
    "find_relationships_for_attempt",
    "get",
    "mark_refused_by_hive",
    "nullify_children_by_parent_id",
    "record_ack",
    "set_shared_task_id",
    "to_prompt",
    "touch_activity",
    "unarchive",
    "unarchive_if_archived",
    "unlink_by_shared_task_id",
    "unlink_stale_shared_tasks",
    "update",
    "update_status",
    "upsert_remote_task",
]

_TERMINAL = ("done", "cancelled")


async def count(conn: aiosqlite.Connection) -> int:
    """Number of tasks in the store (archived included)."""
    return int(await fetch_value(conn, "SELECT COUNT(*) FROM tasks"))


async def find_by_id(conn: aiosqlite.Connection, task_id: UUID) -> Task | None:
    return await fetch_model(conn, Task, "SELECT * FROM tasks WHERE id = ?", (uuid_to_db(task_id),))


async def get(conn: aiosqlite.Connection, task_id: UUID) -> Task:
    """:func:`find_by_id` or :class:`NotFound`."""
    task = await find_by_id(conn, task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


async def find_by_id_and_project_id(
    conn: aiosqlite.Connection, task_id: UUID, project_id: UUID
) -> Task | None:
    """Project-scoped lookup (prevents cross-project access)."""
    return await fetch_model(
        conn,
        Task,
        "SELECT * FROM tasks WHERE id = ? AND project_id = ?",
        (uuid_to_db(task_id), uuid_to_db(project_id)),
    )


async def find_by_shared_task_id(conn: aiosqlite.Connection, shared_task_id: UUID) -> Task | None:
    return await fetch_model(
        conn,
        Task,
        "SELECT * FROM tasks WHERE shared_task_id = ? LIMIT 1",
        (uuid_to_db(shared_task_id),),
    )


async def find_by_project_id_with_attempt_status(
    conn: aiosqlite.Connection, project_id: UUID, *, include_archived: bool = False
) -> list[TaskWithAttemptStatus]:
    """The project's visible tasks with their attempt state, most recent activity first.

    Visible: created locally (``remote_last_synced_at IS NULL``) or having at least one attempt
    here; archived tasks only with ``include_archived``.
    """
    return await fetch_models(
        conn,
        TaskWithAttemptStatus,
        """SELECT t.*,
              EXISTS (SELECT 1 FROM task_attempts a
                      JOIN execution_processes e ON e.task_attempt_id = a.id
                      WHERE a.task_id = t.id AND e.status = 'running'
                        AND e.run_reason IN ('setupscript', 'cleanupscript', 'codingagent'))
                AS has_in_progress_attempt,
              COALESCE((SELECT e.status IN ('failed', 'killed') FROM task_attempts a
                        JOIN execution_processes e ON e.task_attempt_id = a.id
                        WHERE a.task_id = t.id
                          AND e.run_reason IN ('setupscript', 'cleanupscript', 'codingagent')
                        ORDER BY e.created_at DESC, e.rowid DESC LIMIT 1), 0)
                AS last_attempt_failed,
              (SELECT a.executor FROM task_attempts a WHERE a.task_id = t.id
                ORDER BY a.created_at DESC, a.rowid DESC LIMIT 1) AS executor,
              (SELECT e.started_at FROM task_attempts a
                JOIN execution_processes e ON e.task_attempt_id = a.id
                WHERE a.task_id = t.id AND e.run_reason = 'codingagent' AND e.dropped = 0
                ORDER BY e.created_at DESC, e.rowid DESC LIMIT 1) AS latest_agent_started_at,
              (SELECT e.completed_at FROM task_attempts a
                JOIN execution_processes e ON e.task_attempt_id = a.id
                WHERE a.task_id = t.id AND e.run_reason = 'codingagent' AND e.dropped = 0
                ORDER BY e.created_at DESC, e.rowid DESC LIMIT 1) AS latest_agent_completed_at
           FROM tasks t
           WHERE t.project_id = ?
             AND (t.remote_last_synced_at IS NULL
                  OR EXISTS (SELECT 1 FROM task_attempts a WHERE a.task_id = t.id))
             AND (? OR t.archived_at IS NULL)
           ORDER BY COALESCE(t.activity_at, t.created_at) DESC, t.rowid DESC""",
        (uuid_to_db(project_id), int(include_archived)),
    )


async def create(
    conn: aiosqlite.Connection,
    task_id: UUID,
    *,
    project_id: UUID,
    title: str,
    description: str | None = None,
    status: NodeTaskStatus = NodeTaskStatus.TODO,
    parent_task_id: UUID | None = None,
    shared_task_id: UUID | None = None,
) -> Task:
    """Insert a task and append its ``task.upsert`` (linked projects only)."""
    now = now_db()
    (task,) = await _write_rows(
        conn,
        """INSERT INTO tasks (id, project_id, title, description, status, parent_task_id,
               shared_task_id, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            uuid_to_db(task_id),
            uuid_to_db(project_id),
            title,
            description,
            NodeTaskStatus(status).value,
            uuid_or_none(parent_task_id),
            uuid_or_none(shared_task_id),
            now,
            now,
        ),
    )
    return task


async def update(
    conn: aiosqlite.Connection,
    task_id: UUID,
    *,
    title: str,
    description: str | None,
    status: NodeTaskStatus,
    parent_task_id: UUID | None,
) -> Task:
    """Overwrite the editable fields and append ``task.upsert``; a status change also moves
    ``activity_at`` and clears an activity dismissal."""
    status = NodeTaskStatus(status)
    # Both statements compare with the stored status (an UPDATE's SET reads the old row).
    await run(
        conn,
        """DELETE FROM activity_dismissals WHERE task_id = ?
           AND EXISTS (SELECT 1 FROM tasks WHERE id = ? AND status <> ?)""",
        (uuid_to_db(task_id), uuid_to_db(task_id), status.value),
    )
    return await _write(
        conn,
        task_id,
        """title = ?, description = ?, parent_task_id = ?,
           activity_at = CASE WHEN status = ? THEN activity_at ELSE ? END, status = ?""",
        (title, description, uuid_or_none(parent_task_id), status.value, now_db(), status.value),
    )


async def update_status(conn: aiosqlite.Connection, task_id: UUID, status: NodeTaskStatus) -> Task:
    """Set the status, ``activity_at = now``, clear any activity dismissal; append
    ``task.upsert``."""
    return await _write(
        conn,
        task_id,
        "status = ?, activity_at = ?",
        (NodeTaskStatus(status).value, now_db()),
        status_changed=True,
    )


_RETURNING_LINKED = """
RETURNING *, (SELECT p.remote_project_id IS NOT NULL FROM projects p
              WHERE p.id = tasks.project_id) AS project_linked"""


async def _write_rows(conn: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> list[Task]:
    """Run an ``INSERT``/``UPDATE`` of tasks, take the written rows from its ``RETURNING`` and
    append each one's ``task.upsert``. ``sql`` is always a constant of this module."""
    rows = await fetch_all(conn, sql + _RETURNING_LINKED, params)
    written = []
    for row in rows:
        task = decode_row(Task, row)
        await outbox.enqueue_task(conn, task, linked=bool(row["project_linked"]))
        written.append(task)
    return written


async def _write(
    conn: aiosqlite.Connection,
    task_id: UUID,
    assignments: str,
    params: tuple[Any, ...],
    *,
    status_changed: bool = False,
) -> Task:
    # `assignments` is always a constant of this module, never caller input.
    written = await _write_rows(
        conn,
        f"UPDATE tasks SET {assignments}, updated_at = ? WHERE id = ?",  # noqa: S608
        (*params, now_db(), uuid_to_db(task_id)),
    )
    if not written:
        raise NotFound(f"task {task_id} not found")
    if status_changed:
        await run(conn, "DELETE FROM activity_dismissals WHERE task_id = ?", (uuid_to_db(task_id),))
    return written[0]


async def touch_activity(conn: aiosqlite.Connection, task_id: UUID) -> None:
    """Mark significant activity (an execution started): ``activity_at = now``."""
    await execute(
        conn, "UPDATE tasks SET activity_at = ? WHERE id = ?", (now_db(), uuid_to_db(task_id))
    )


async def delete(conn: aiosqlite.Connection, task_id: UUID) -> bool:
    """Hard delete (attempts, processes and logs cascade; children lose their parent)."""
    return bool(await execute(conn, "DELETE FROM tasks WHERE id = ?", (uuid_to_db(task_id),)))


async def nullify_children_by_parent_id(conn: aiosqlite.Connection, parent_id: UUID) -> int:
    return await execute(
        conn,
        "UPDATE tasks SET parent_task_id = NULL, updated_at = ? WHERE parent_task_id = ?",
        (now_db(), uuid_to_db(parent_id)),
    )


async def find_children_by_parent_id(conn: aiosqlite.Connection, parent_id: UUID) -> list[Task]:
    return await fetch_models(
        conn,
        Task,
        "SELECT * FROM tasks WHERE parent_task_id = ? ORDER BY created_at DESC, rowid DESC",
        (uuid_to_db(parent_id),),
    )


async def find_relationships_for_attempt(
    conn: aiosqlite.Connection, attempt: TaskAttempt
) -> TaskRelationships:
    """The attempt's task's parent, the attempt, and the task's children."""
    task = await get(conn, attempt.task_id)
    parent = None if task.parent_task_id is None else await find_by_id(conn, task.parent_task_id)
    children = await find_children_by_parent_id(conn, task.id)
    return TaskRelationships(parent_task=parent, current_attempt=attempt, children=children)


async def archive(conn: aiosqlite.Connection, task_id: UUID) -> Task:
    """Set ``archived_at`` (kept if already archived) and append ``task.upsert``."""
    return await _write(conn, task_id, "archived_at = COALESCE(archived_at, ?)", (now_db(),))


async def unarchive(conn: aiosqlite.Connection, task_id: UUID) -> Task:
    """Clear ``archived_at`` and append ``task.upsert``."""
    return await _write(conn, task_id, "archived_at = NULL", ())


async def unarchive_if_archived(conn: aiosqlite.Connection, task_id: UUID) -> bool:
    """Unarchive only an archived task; returns whether it was archived."""
    task = await get(conn, task_id)
    if task.archived_at is None:
        return False
    await unarchive(conn, task_id)
    return True


async def archive_many(conn: aiosqlite.Connection, task_ids: list[UUID]) -> int:
    """Archive several tasks in one statement; one ``task.upsert`` per task archived now."""
    if not task_ids:
        return 0
    ids = [uuid_to_db(t) for t in task_ids]
    marks = ", ".join("?" for _ in ids)
    now = now_db()
    written = await _write_rows(
        conn,
        f"""UPDATE tasks SET archived_at = ?, updated_at = ?
            WHERE archived_at IS NULL AND id IN ({marks})""",  # noqa: S608
        (now, now, *ids),
    )
    return len(written)


def to_prompt(task: Task) -> str:
    """Title, then a blank line and the description when it is not blank."""
    if task.description and task.description.strip():
        return f"{task.title}\n\n{task.description}"
    return task.title


# --- inbound hive state -----------------------------------------------------------------------


async def upsert_remote_task(
    conn: aiosqlite.Connection,
    *,
    project_id: UUID,
    shared_task_id: UUID,
    title: str,
    description: str | None,
    status: NodeTaskStatus,
    remote_version: int,
    local_id: UUID | None = None,
    activity_at: datetime | None = None,
    archived_at: datetime | None = None,
    assignee_user_id: UUID | None = None,
    assignee_name: str | None = None,
    assignee_username: str | None = None,
) -> Task:
    """Apply the hive's copy of a task (activity event or snapshot); never enqueues.

    Dirty guard: when the local task for ``shared_task_id`` (or ``local_id``) has unacked outbox
    ops, it is returned unchanged. Otherwise a new row is inserted, or the existing one updated
    only when ``remote_version`` is newer than the stored one (a task the node created and the hive
    now names is adopted regardless). The hive's copy is taken whole, ``archived_at`` included:
    a local archive the hive does not have was refused or undone there (an accepted archive op
    is never cleared by the node's own ops on the hive), so keeping it would leave the copy
    different from the hive's at an equal version.
    """
    existing = await find_by_shared_task_id(conn, shared_task_id)
    if existing is None and local_id is not None:
        existing = await find_by_id(conn, local_id)
        if existing is not None and existing.shared_task_id not in (None, shared_task_id):
            raise Conflict(f"task {local_id} is linked to another shared task")
    if existing is not None and await outbox.has_unacked_for_entity(conn, existing.id):
        return existing
    now = now_db()
    fields = (
        title,
        description,
        NodeTaskStatus(status).value,
        int(remote_version),
        None if activity_at is None else ts_to_db(activity_at),
        None if archived_at is None else ts_to_db(archived_at),
        uuid_or_none(assignee_user_id),
        assignee_name,
        assignee_username,
    )
    if existing is not None and existing.shared_task_id is None:
        await execute(
            conn,
            """UPDATE tasks SET title = ?, description = ?, status = ?, remote_version = ?,
                   activity_at = COALESCE(?, activity_at),
                   archived_at = ?, remote_assignee_user_id = ?,
                   remote_assignee_name = ?, remote_assignee_username = ?,
                   shared_task_id = ?, remote_last_synced_at = ?, updated_at = ?
               WHERE id = ?""",
            (*fields, uuid_to_db(shared_task_id), now, now, uuid_to_db(existing.id)),
        )
        return await get(conn, existing.id)
    new_id = existing.id if existing is not None else (local_id or uuid4())
    await execute(
        conn,
        """INSERT INTO tasks (id, project_id, shared_task_id, title, description, status,
               remote_version, activity_at, archived_at, remote_assignee_user_id,
               remote_assignee_name, remote_assignee_username, remote_last_synced_at,
               created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (shared_task_id) WHERE shared_task_id IS NOT NULL DO UPDATE SET
               title = excluded.title, description = excluded.description,
               status = excluded.status, remote_version = excluded.remote_version,
               activity_at = COALESCE(excluded.activity_at, tasks.activity_at),
               archived_at = excluded.archived_at,
               remote_assignee_user_id = excluded.remote_assignee_user_id,
               remote_assignee_name = excluded.remote_assignee_name,
               remote_assignee_username = excluded.remote_assignee_username,
               remote_last_synced_at = excluded.remote_last_synced_at,
               updated_at = excluded.updated_at
           WHERE excluded.remote_version > tasks.remote_version""",
        (
            uuid_to_db(new_id),
            uuid_to_db(project_id),
            uuid_to_db(shared_task_id),
            *fields,
            now,
            now,
            now,
        ),
    )
    task = await find_by_shared_task_id(conn, shared_task_id)
    assert task is not None
    return task


async def set_shared_task_id(
    conn: aiosqlite.Connection, task_id: UUID, shared_task_id: UUID
) -> bool:
    """Record the hive id of a task, only if it has none (or the same) and no other task holds
    it. Returns whether the task now carries ``shared_task_id``."""
    shared = uuid_to_db(shared_task_id)
    changed = await execute(
        conn,
        """UPDATE tasks SET shared_task_id = ?
           WHERE id = ? AND (shared_task_id IS NULL OR shared_task_id = ?)
             AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.shared_task_id = ? AND o.id <> ?)""",
        (shared, uuid_to_db(task_id), shared, shared, uuid_to_db(task_id)),
    )
    return changed > 0


async def record_ack(
    conn: aiosqlite.Connection, task_id: UUID, shared_task_id: UUID, version: int | None
) -> bool:
    """Record what the hive's ``op_ack`` says one of this node's ops did to the hive's copy of the
    task: its shared id (as :func:`set_shared_task_id` does) and the version the op produced
    (the remote version never goes down; ``None`` keeps it). Returns whether the task carries
    ``shared_task_id`` now."""
    shared = uuid_to_db(shared_task_id)
    local = uuid_to_db(task_id)
    changed = await execute(
        conn,
        """UPDATE tasks SET shared_task_id = ?,
               remote_version = MAX(remote_version, COALESCE(?, remote_version))
           WHERE id = ? AND (shared_task_id IS NULL OR shared_task_id = ?)
             AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.shared_task_id = ? AND o.id <> ?)""",
        (shared, version, local, shared, shared, local),
    )
    return changed > 0


async def clear_all_shared_task_ids_for_project(
    conn: aiosqlite.Connection, project_id: UUID
) -> int:
    """Unlink every task of a project (used when the project is unlinked)."""
    return await execute(
        conn,
        """UPDATE tasks SET shared_task_id = NULL, remote_version = 0,
               remote_last_synced_at = NULL
           WHERE project_id = ? AND shared_task_id IS NOT NULL""",
        (uuid_to_db(project_id),),
    )


async def mark_refused_by_hive(conn: aiosqlite.Connection, task_id: UUID) -> bool:
    """The hive refused a local change of this task: make the local copy older than any hive
    version (``remote_version = 0``) and drop a local archive (shown until the hive's copy comes),
    so the next hive copy (a pull, an activity event, or the digest's mismatch) replaces it."""
    return bool(
        await execute(
            conn,
            "UPDATE tasks SET remote_version = 0, archived_at = NULL WHERE id = ?",
            (uuid_to_db(task_id),),
        )
    )


async def unlink_by_shared_task_id(conn: aiosqlite.Connection, shared_task_id: UUID) -> bool:
    """Soft-unlink after a hive delete: keep the row and its history, drop the hive id."""
    return bool(
        await execute(
            conn,
            """UPDATE tasks SET shared_task_id = NULL, remote_version = 0, updated_at = ?
               WHERE shared_task_id = ?""",
            (now_db(), uuid_to_db(shared_task_id)),
        )
    )


async def unlink_stale_shared_tasks(
    conn: aiosqlite.Connection, project_id: UUID, keep_shared_ids: list[UUID]
) -> int:
    """Soft-unlink the project's linked tasks whose hive id is not in ``keep_shared_ids``
    (after a snapshot); an empty list unlinks every linked task of the project."""
    rows = await fetch_all(
        conn,
        "SELECT shared_task_id FROM tasks WHERE project_id = ? AND shared_task_id IS NOT NULL",
        (uuid_to_db(project_id),),
    )
    keep = set(keep_shared_ids)
    count = 0
    for row in rows:
        shared = uuid_from_db(row[0])
        if shared not in keep:
            count += int(await unlink_by_shared_task_id(conn, shared))
    return count


async def find_digest_entries(
    conn: aiosqlite.Connection, project_id: UUID | None = None
) -> list[tuple[UUID, UUID, int]]:
    """``(task id, shared task id, remote_version)`` of linked tasks, by task id."""
    rows = await fetch_all(
        conn,
        """SELECT id, shared_task_id, remote_version FROM tasks
           WHERE shared_task_id IS NOT NULL AND (? IS NULL OR project_id = ?) ORDER BY id""",
        (uuid_or_none(project_id), uuid_or_none(project_id)),
    )
    return [(uuid_from_db(r[0]), uuid_from_db(r[1]), int(r[2])) for r in rows]


# --- retention --------------------------------------------------------------------------------


async def count_archived_terminal_older_than(conn: aiosqlite.Connection, ts: datetime) -> int:
    return int(
        await fetch_value(
            conn,
            """SELECT COUNT(*) FROM tasks WHERE archived_at IS NOT NULL AND archived_at < ?
               AND status IN (?, ?)""",
            (ts_to_db(ts), *_TERMINAL),
        )
    )


async def delete_archived_terminal_older_than(conn: aiosqlite.Connection, ts: datetime) -> int:
    """Purge done/cancelled tasks archived before ``ts``."""
    return await execute(
        conn,
        """DELETE FROM tasks WHERE archived_at IS NOT NULL AND archived_at < ?
           AND status IN (?, ?)""",
        (ts_to_db(ts), *_TERMINAL),
    )


async def find_purgeable_archived(
    conn: aiosqlite.Connection, ts: datetime, limit: int
) -> list[UUID]:
    """Ids of at most ``limit`` done/cancelled tasks archived before ``ts`` in projects that are
    not linked to a hive (a shared task's copy is the hive's to delete), with no running process
    and no subtask (a parent goes once its children have)."""
    rows = await fetch_all(
        conn,
        """SELECT t.id FROM tasks t JOIN projects p ON p.id = t.project_id
           WHERE t.archived_at IS NOT NULL AND t.archived_at < ? AND t.status IN (?, ?)
             AND p.remote_project_id IS NULL
             AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_task_id = t.id)
             AND NOT EXISTS (
                 SELECT 1 FROM task_attempts a JOIN execution_processes e
                     ON e.task_attempt_id = a.id
                 WHERE a.task_id = t.id AND e.status = 'running')
           ORDER BY t.archived_at LIMIT ?""",
        (ts_to_db(ts), *_TERMINAL, int(limit)),
    )
    return [uuid_from_db(row[0]) for row in rows]


async def find_archived_non_terminal(conn: aiosqlite.Connection) -> list[Task]:
    return await fetch_models(
        conn,
        Task,
        """SELECT * FROM tasks WHERE archived_at IS NOT NULL AND status NOT IN (?, ?)
           ORDER BY archived_at""",
        _TERMINAL,
    )
