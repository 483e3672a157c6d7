"""Labels (global or per project), task labels, and hive-managed labels (``shared_label_id``,
version rule: a hive copy applies only when its version is higher)."""

from __future__ import annotations

from uuid import UUID, uuid4

import aiosqlite

from vk_node.errors import NotFound
from vk_node.store import outbox
from vk_node.store.codec import now_db, uuid_or_none, uuid_to_db
from vk_node.store.models import Label
from vk_node.store.sql import execute, fetch_model, fetch_models

__all__ = [
    "attach",
    "clear_shared_label_id",
    "create",
    "delete",
    "find_by_id",
    "find_by_shared_label_id",
    "find_by_task_id",
    "find_for_project",
    "find_global",
    "set_shared_label_id",
    "set_task_labels",
    "update",
    "upsert_from_hive",
]


async def find_by_id(conn: aiosqlite.Connection, label_id: UUID) -> Label | None:
    return await fetch_model(conn, Label, "SELECT * FROM labels WHERE id = ?", (label_id.bytes,))


async def _get(conn: aiosqlite.Connection, label_id: UUID) -> Label:
    label = await find_by_id(conn, label_id)
    if label is None:
        raise NotFound(f"label {label_id} not found")
    return label


async def find_for_project(conn: aiosqlite.Connection, project_id: UUID) -> list[Label]:
    """Global labels and the project's own, by name."""
    return await fetch_models(
        conn,
        Label,
        "SELECT * FROM labels WHERE project_id IS NULL OR project_id = ? ORDER BY name",
        (uuid_to_db(project_id),),
    )


async def find_global(conn: aiosqlite.Connection) -> list[Label]:
    return await fetch_models(
        conn, Label, "SELECT * FROM labels WHERE project_id IS NULL ORDER BY name"
    )


async def create(
    conn: aiosqlite.Connection,
    label_id: UUID,
    *,
    name: str,
    project_id: UUID | None = None,
    icon: str = "tag",
    color: str = "#6b7280",
) -> Label:
    now = now_db()
    await execute(
        conn,
        """INSERT INTO labels (id, project_id, name, icon, color, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (label_id.bytes, uuid_or_none(project_id), name, icon, color, now, now),
    )
    return await _publish(conn, await _get(conn, label_id))


async def update(
    conn: aiosqlite.Connection, label_id: UUID, *, name: str, icon: str, color: str
) -> Label:
    """Edit a label; bumps its version (so the hive copy can tell it is newer)."""
    changed = await execute(
        conn,
        """UPDATE labels SET name = ?, icon = ?, color = ?, version = version + 1,
               updated_at = ? WHERE id = ?""",
        (name, icon, color, now_db(), label_id.bytes),
    )
    if not changed:
        raise NotFound(f"label {label_id} not found")
    return await _publish(conn, await _get(conn, label_id))


async def _publish(conn: aiosqlite.Connection, label: Label) -> Label:
    """A label of a linked project goes to the hive (``label.upsert``), which keeps its id:
    the label is its own hive copy from then on (``label_sync`` updates it in place)."""
    if await outbox.enqueue_label_upsert(conn, label) is None or label.shared_label_id is not None:
        return label
    return await set_shared_label_id(conn, label.id, label.id)


async def delete(conn: aiosqlite.Connection, label_id: UUID) -> bool:
    return bool(await execute(conn, "DELETE FROM labels WHERE id = ?", (label_id.bytes,)))


async def find_by_task_id(conn: aiosqlite.Connection, task_id: UUID) -> list[Label]:
    return await fetch_models(
        conn,
        Label,
        """SELECT l.* FROM labels l JOIN task_labels tl ON tl.label_id = l.id
           WHERE tl.task_id = ? ORDER BY l.name""",
        (uuid_to_db(task_id),),
    )


async def attach(conn: aiosqlite.Connection, task_id: UUID, label_id: UUID) -> None:
    """Attach a label to a task (idempotent)."""
    await execute(
        conn,
        """INSERT INTO task_labels (id, task_id, label_id, created_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (task_id, label_id) DO NOTHING""",
        (uuid4().bytes, uuid_to_db(task_id), label_id.bytes, now_db()),
    )


async def set_task_labels(
    conn: aiosqlite.Connection, task_id: UUID, label_ids: list[UUID]
) -> list[Label]:
    """Replace all labels of a task."""
    await execute(conn, "DELETE FROM task_labels WHERE task_id = ?", (uuid_to_db(task_id),))
    for label_id in dict.fromkeys(label_ids):
        await attach(conn, task_id, label_id)
    return await find_by_task_id(conn, task_id)


async def find_by_shared_label_id(conn: aiosqlite.Connection, shared_id: UUID) -> Label | None:
    return await fetch_model(
        conn, Label, "SELECT * FROM labels WHERE shared_label_id = ?", (shared_id.bytes,)
    )


async def set_shared_label_id(conn: aiosqlite.Connection, label_id: UUID, shared_id: UUID) -> Label:
    await execute(
        conn,
        "UPDATE labels SET shared_label_id = ?, synced_at = ? WHERE id = ?",
        (shared_id.bytes, now_db(), label_id.bytes),
    )
    return await _get(conn, label_id)


async def clear_shared_label_id(conn: aiosqlite.Connection, label_id: UUID) -> None:
    await execute(
        conn,
        "UPDATE labels SET shared_label_id = NULL, synced_at = NULL WHERE id = ?",
        (label_id.bytes,),
    )


async def upsert_from_hive(
    conn: aiosqlite.Connection,
    *,
    shared_label_id: UUID,
    name: str,
    icon: str,
    color: str,
    version: int,
) -> Label:
    """Apply a hive label (``label_sync``): insert it as a global label with a new local id, or
    update the local copy only when ``version`` is higher than the stored one."""
    now = now_db()
    await execute(
        conn,
        """INSERT INTO labels (id, project_id, name, icon, color, shared_label_id, version,
               synced_at, created_at, updated_at)
           VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (shared_label_id) WHERE shared_label_id IS NOT NULL DO UPDATE SET
               name = excluded.name, icon = excluded.icon, color = excluded.color,
               version = excluded.version, synced_at = excluded.synced_at,
               updated_at = excluded.updated_at
           WHERE excluded.version > labels.version""",
        (uuid4().bytes, name, icon, color, shared_label_id.bytes, int(version), now, now, now),
    )
    label = await find_by_shared_label_id(conn, shared_label_id)
    assert label is not None
    return label
