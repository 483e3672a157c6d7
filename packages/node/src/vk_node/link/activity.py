"""Applying the hive's view of tasks and labels to the local store (DESIGN.md §4).

Every function takes the open write connection, so the caller applies an event and its cursor in
ONE SQLite transaction. Hive task JSON (activity payloads, snapshots, pulled tasks) is parsed
leniently into :class:`RemoteTask`: unknown fields are ignored, a task that cannot be parsed is
skipped, never fatal.

Rules: a task is upserted only when its version is newer and the local task has no unacked
outbox op (dirty guard, :func:`vk_node.store.repositories.tasks.upsert_remote_task`); the node
that created a task matches it by ``source_task_id`` and records the shared id (even while its own
ops are still unacked — only the id is recorded then); a deleted task only loses its shared id.
A hive that knows the ``ack_tasks`` feature does not echo this node's own ops back (the node
learns the shared id and version from ``op_ack``); it sends ``activity_skipped`` instead, which
only moves the project's cursor. An older hive still echoes them: they are applied as any other
event, behind the same dirty guard and version check.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import aiosqlite
import msgspec
import structlog

from vk_node.errors import Conflict
from vk_node.store import outbox
from vk_node.store.repositories import labels as labels_repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import shared_activity_cursors as cursors_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.status import InvalidStatus, canonicalize, to_node
from vk_shared.wire import Activity, ActivitySkipped, LabelSync, SwarmLabelInfo

__all__ = [
    "Outcome",
    "RemoteLabel",
    "RemoteTask",
    "apply_activity",
    "apply_label",
    "apply_remote_task",
    "apply_skipped",
    "apply_snapshot",
    "parse_label",
    "parse_task",
]

log = structlog.get_logger("vk_node.link")

Outcome = Literal["applied", "skipped", "unlinked", "adopted", "dirty", "stale", "seen"]


class RemoteUser(msgspec.Struct, kw_only=True):
    id: UUID | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None


class RemoteTask(msgspec.Struct, kw_only=True):
    """The fields of a hive task the node uses."""

    id: UUID
    title: str
    status: str
    version: int = 0
    description: str | None = None
    swarm_project_id: UUID | None = None
    archived_at: datetime | None = None
    deleted_at: datetime | None = None
    source_node_id: UUID | None = None
    source_task_id: UUID | None = None
    assignee_user_id: UUID | None = None
    activity_at: datetime | None = None
    user: RemoteUser | None = None


class RemoteLabel(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    icon: str = ""
    color: str = ""
    version: int = 0
    deleted_at: datetime | None = None
    is_deleted: bool = False


def parse_task(obj: Any) -> RemoteTask | None:
    """A hive task from ``{...task}`` or ``{"task": {...}, "user": {...}}``; ``None`` if invalid."""
    if not isinstance(obj, dict):
        return None
    data = obj.get("task", obj)
    if not isinstance(data, dict):
        return None
    user = obj.get("user") if "task" in obj else data.get("user")
    try:
        task = msgspec.convert(data, RemoteTask, strict=False)
        if isinstance(user, dict):
            task.user = msgspec.convert(user, RemoteUser, strict=False)
    except msgspec.ValidationError as exc:
        log.warning("activity.bad_task", error=str(exc))
        return None
    return task


def parse_label(obj: Any) -> RemoteLabel | None:
    if not isinstance(obj, dict):
        return None
    data = obj.get("label", obj)
    try:
        return msgspec.convert(data, RemoteLabel, strict=False)
    except msgspec.ValidationError as exc:
        log.warning("activity.bad_label", error=str(exc))
        return None


def _display_name(user: RemoteUser | None) -> str | None:
    if user is None:
        return None
    name = " ".join(p for p in (user.first_name, user.last_name) if p)
    return name or user.username


async def apply_remote_task(
    conn: aiosqlite.Connection,
    local_project_id: UUID,
    task: RemoteTask,
    node_id: UUID | None,
) -> Outcome:
    """Upsert one hive task into ``local_project_id`` (see module docstring)."""
    if task.deleted_at is not None:
        return "unlinked" if await tasks_repo.unlink_by_shared_task_id(conn, task.id) else "seen"
    try:
        status = to_node(canonicalize(task.status))
    except InvalidStatus:
        log.warning("activity.bad_status", shared_task_id=str(task.id), status=task.status)
        return "skipped"
    local_id = (
        task.source_task_id if node_id is not None and task.source_node_id == node_id else None
    )
    existing = await tasks_repo.find_by_shared_task_id(conn, task.id)
    if existing is None and local_id is not None:
        own = await tasks_repo.find_by_id(conn, local_id)
        if own is not None and own.shared_task_id is None:
            if await outbox.has_unacked_for_entity(conn, own.id):
                await tasks_repo.set_shared_task_id(conn, own.id, task.id)
                return "adopted"
        elif own is not None and own.shared_task_id != task.id:
            local_id = None  # that local task is linked elsewhere; keep it
    if existing is not None:
        if await outbox.has_unacked_for_entity(conn, existing.id):
            return "dirty"
        if task.version <= existing.remote_version:
            return "stale"
    try:
        await tasks_repo.upsert_remote_task(
            conn,
            project_id=existing.project_id if existing is not None else local_project_id,
            shared_task_id=task.id,
            title=task.title,
            description=task.description,
            status=status,
            remote_version=task.version,
            local_id=local_id,
            activity_at=task.activity_at,
            archived_at=task.archived_at,
            assignee_user_id=task.assignee_user_id,
            assignee_name=_display_name(task.user),
            assignee_username=task.user.username if task.user is not None else None,
        )
    except Conflict as exc:
        log.warning("activity.task_conflict", shared_task_id=str(task.id), error=str(exc))
        return "skipped"
    return "applied"


async def apply_label(conn: aiosqlite.Connection, label: RemoteLabel | SwarmLabelInfo) -> None:
    """Upsert a hive label (higher version wins) or delete its local copy."""
    deleted = isinstance(label, RemoteLabel) and (label.is_deleted or label.deleted_at is not None)
    if deleted:
        local = await labels_repo.find_by_shared_label_id(conn, label.id)
        if local is not None:
            await labels_repo.delete(conn, local.id)
        return
    await labels_repo.upsert_from_hive(
        conn,
        shared_label_id=label.id,
        name=label.name,
        icon=label.icon or "tag",
        color=label.color or "#6b7280",
        version=label.version,
    )


def label_from_sync(msg: LabelSync) -> RemoteLabel:
    return RemoteLabel(
        id=msg.label_id,
        name=msg.name,
        icon=msg.icon,
        color=msg.color,
        version=msg.version,
        is_deleted=msg.is_deleted,
    )


async def apply_activity(
    conn: aiosqlite.Connection, event: Activity, node_id: UUID | None
) -> Outcome:
    """Apply one activity event and advance its project's cursor; ``seen`` when its seq is at or
    below the cursor (a replay)."""
    cursor = await cursors_repo.get(conn, event.project_id)
    if cursor is not None and event.seq <= cursor.last_seq:
        return "seen"
    outcome: Outcome = "skipped"
    kind = event.event_type
    if kind.startswith("task."):
        project = await projects_repo.find_by_remote_project_id(conn, event.project_id)
        task = parse_task(event.payload)
        if task is not None and kind == "task.deleted":
            deleted = await tasks_repo.unlink_by_shared_task_id(conn, task.id)
            outcome = "unlinked" if deleted else "seen"
        elif task is not None and project is not None:
            outcome = await apply_remote_task(conn, project.id, task, node_id)
    elif kind.startswith("label."):
        label = parse_label(event.payload)
        if label is not None:
            if kind == "label.deleted":
                label.is_deleted = True
            await apply_label(conn, label)
            outcome = "applied"
    await cursors_repo.upsert(conn, event.project_id, event.seq)
    return outcome


async def apply_skipped(conn: aiosqlite.Connection, msg: ActivitySkipped) -> Outcome:
    """Move a project's cursor over events the hive did not send (echoes of this node's ops)."""
    cursor = await cursors_repo.get(conn, msg.project_id)
    if cursor is not None and msg.seq <= cursor.last_seq:
        return "seen"
    await cursors_repo.upsert(conn, msg.project_id, msg.seq)
    return "skipped"


async def apply_snapshot(
    conn: aiosqlite.Connection,
    swarm_project_id: UUID,
    tasks: Iterable[RemoteTask],
    latest_seq: int,
    node_id: UUID | None,
) -> dict[str, int]:
    """Apply a project snapshot: upsert every task, unlink local tasks the hive no longer has,
    move the cursor to ``latest_seq``. Returns outcome counts."""
    counts: dict[str, int] = {}
    project = await projects_repo.find_by_remote_project_id(conn, swarm_project_id)
    if project is None:
        return counts
    keep: list[UUID] = []
    for task in tasks:
        if task.deleted_at is None:
            keep.append(task.id)
        outcome = await apply_remote_task(conn, project.id, task, node_id)
        counts[outcome] = counts.get(outcome, 0) + 1
    counts["unlinked"] = counts.get("unlinked", 0) + await tasks_repo.unlink_stale_shared_tasks(
        conn, project.id, keep
    )
    current = await cursors_repo.get(conn, swarm_project_id)
    if current is not None and current.last_seq > latest_seq:
        await cursors_repo.delete(conn, swarm_project_id)
    await cursors_repo.upsert(conn, swarm_project_id, latest_seq)
    return counts
