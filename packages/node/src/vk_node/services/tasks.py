"""Task rules of the local API.

* A task belongs to a project; a parent task must be in the same project and may not create a
  cycle.
* Status changes follow DESIGN.md §5. A local-only task (its project is not linked) belongs to this
  node alone, so the local user may make any legal transition. A task of a linked project is
  shared: the local user may only make node-authored transitions (``inprogress → inreview``,
  ``inprogress → done``); the others are the hive's (409). Setting the current status is a no-op.
* Archiving takes the subtasks along and is refused while an attempt of any of them is running.
* Deleting a task detaches its children (their change is queued for the hive like any edit).
* Every write is one ``Store.write`` transaction: one round trip to the store's writer thread.
* Title and description together hold at most ``MAX_TASK_TEXT_BYTES`` bytes of UTF-8 — the limit
  the hive applies to every task it learns — on create and on every edit (400), so a task the
  node accepts is never one the hive rejects.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import aiosqlite
import msgspec

from vk_node.errors import Conflict, InvalidInput, Unprocessable
from vk_node.store import Store, outbox
from vk_node.store.models import Project, Task
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.protocol import MAX_TASK_TEXT_BYTES
from vk_shared.status import Author, NodeTaskStatus, to_hive, transition_author

__all__ = [
    "TaskChanges",
    "archive_task",
    "check_not_running",
    "check_text_size",
    "check_transition",
    "create_task",
    "delete_task",
    "unarchive_task",
    "update_task",
]

_MAX_DEPTH = 64


class TaskChanges(msgspec.Struct, frozen=True, kw_only=True):
    """Fields of a task a local user may change (``UNSET`` = keep)."""

    title: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    status: NodeTaskStatus | msgspec.UnsetType = msgspec.UNSET
    parent_task_id: UUID | msgspec.UnsetType | None = msgspec.UNSET


def check_transition(project: Project, frm: NodeTaskStatus, to: NodeTaskStatus) -> None:
    """Raise :class:`Conflict` (409) when the local user may not move a task ``frm → to``."""
    if frm == to:
        return
    author = transition_author(to_hive(frm), to_hive(to))
    if author is None:
        raise Conflict(f"a task cannot move from {frm.value} to {to.value}")
    if project.remote_project_id is not None and author is not Author.NODE:
        raise Conflict(
            f"{frm.value} → {to.value} is decided by the hive for tasks of a linked project"
        )


def check_text_size(title: str, description: str | None) -> None:
    """Raise :class:`InvalidInput` when title plus description exceed the hive's byte limit."""
    size = len(title.encode("utf-8", "surrogatepass")) + len(
        (description or "").encode("utf-8", "surrogatepass")
    )
    if size > MAX_TASK_TEXT_BYTES:
        raise InvalidInput(
            f"title and description hold {size} bytes of UTF-8; at most {MAX_TASK_TEXT_BYTES} "
            "are allowed together"
        )


async def _check_parent(
    conn: aiosqlite.Connection, project_id: UUID, task_id: UUID | None, parent_id: UUID
) -> None:
    parent = await tasks_repo.find_by_id(conn, parent_id)
    if parent is None:
        raise Unprocessable(f"parent task {parent_id} not found")
    if parent.project_id != project_id:
        raise Unprocessable("the parent task belongs to another project")
    seen: set[UUID] = set()
    current: Task | None = parent
    while current is not None and len(seen) < _MAX_DEPTH:
        if current.id == task_id:
            raise Unprocessable("a task cannot be its own ancestor")
        seen.add(current.id)
        nxt = current.parent_task_id
        current = None if nxt is None or nxt in seen else await tasks_repo.find_by_id(conn, nxt)


async def create_task(
    store: Store,
    *,
    project_id: UUID,
    title: str,
    description: str | None,
    parent_task_id: UUID | None,
) -> Task:
    check_text_size(title, description)

    async def body(conn: aiosqlite.Connection) -> Task:
        await projects_repo.get(conn, project_id)
        if parent_task_id is not None:
            await _check_parent(conn, project_id, None, parent_task_id)
        return await tasks_repo.create(
            conn,
            uuid4(),
            project_id=project_id,
            title=title,
            description=description,
            parent_task_id=parent_task_id,
        )

    return await store.write(body)


async def update_task(store: Store, task_id: UUID, changes: TaskChanges) -> Task:
    """Apply ``changes`` (one transaction, one round trip to the writer)."""
    return await store.write(lambda conn: _update_task(conn, task_id, changes))


async def _update_task(conn: aiosqlite.Connection, task_id: UUID, changes: TaskChanges) -> Task:
    task = await tasks_repo.get(conn, task_id)
    project = await projects_repo.get(conn, task.project_id)
    status = task.status if changes.status is msgspec.UNSET else changes.status
    check_transition(project, task.status, status)
    parent = task.parent_task_id
    if changes.parent_task_id is not msgspec.UNSET:
        parent = changes.parent_task_id
        if parent is not None and parent != task.parent_task_id:
            await _check_parent(conn, task.project_id, task.id, parent)
    title = task.title if changes.title is msgspec.UNSET else changes.title
    description = task.description if changes.description is msgspec.UNSET else changes.description
    if title != task.title or description != task.description:
        check_text_size(title, description)
    return await tasks_repo.update(
        conn,
        task_id,
        title=title,
        description=description,
        status=status,
        parent_task_id=parent,
    )


async def _subtree(conn: aiosqlite.Connection, task_id: UUID) -> list[UUID]:
    """The task and all its descendants (breadth first, cycle safe)."""
    order, queue, seen = [], [task_id], {task_id}
    while queue:
        current = queue.pop(0)
        order.append(current)
        for child in await tasks_repo.find_children_by_parent_id(conn, current):
            if child.id not in seen:
                seen.add(child.id)
                queue.append(child.id)
    return order


async def _refuse_if_running(
    conn: aiosqlite.Connection, project_id: UUID, task_ids: list[UUID], action: str
) -> None:
    board = await tasks_repo.find_by_project_id_with_attempt_status(
        conn, project_id, include_archived=True
    )
    wanted = set(task_ids)
    running = [t.id for t in board if t.id in wanted and t.has_in_progress_attempt]
    if running:
        raise Conflict(f"task {running[0]} has a running attempt; stop it before {action}")


async def check_not_running(store: Store, task_id: UUID, action: str) -> None:
    """404 for an unknown task; 409 while it has a running attempt."""
    async with store.read() as conn:
        task = await tasks_repo.get(conn, task_id)
        await _refuse_if_running(conn, task.project_id, [task_id], action)


async def archive_task(store: Store, task_id: UUID) -> tuple[Task, list[UUID]]:
    """Archive the task and its subtasks; 409 while one of them has a running attempt.

    Returns the task and the ids archived with it (whose worktrees the caller may remove)."""

    async def body(conn: aiosqlite.Connection) -> tuple[Task, list[UUID]]:
        task = await tasks_repo.get(conn, task_id)
        ids = await _subtree(conn, task_id)
        await _refuse_if_running(conn, task.project_id, ids, "archiving")
        await tasks_repo.archive_many(conn, ids)
        return await tasks_repo.get(conn, task_id), ids

    return await store.write(body)


async def unarchive_task(store: Store, task_id: UUID) -> Task:
    """Unarchive the task (its subtasks stay as they are)."""

    async def body(conn: aiosqlite.Connection) -> Task:
        await tasks_repo.unarchive_if_archived(conn, task_id)
        return await tasks_repo.get(conn, task_id)

    return await store.write(body)


async def delete_task(store: Store, task_id: UUID) -> None:
    """Delete the task (attempts and logs cascade); its children become top-level tasks.
    409 while the task has a running attempt."""

    async def body(conn: aiosqlite.Connection) -> None:
        task = await tasks_repo.get(conn, task_id)
        await _refuse_if_running(conn, task.project_id, [task_id], "deleting")
        children = await tasks_repo.find_children_by_parent_id(conn, task_id)
        await tasks_repo.nullify_children_by_parent_id(conn, task_id)
        for child in children:
            await outbox.enqueue_task_upsert(conn, child.id)
        await tasks_repo.delete(conn, task_id)

    await store.write(body)
