"""Images (deduplicated by SHA-256) and their association with tasks."""

from __future__ import annotations

from uuid import UUID, uuid4

import aiosqlite

from vk_node.store.codec import now_db, uuid_to_db
from vk_node.store.models import Image
from vk_node.store.sql import execute, fetch_model, fetch_models

__all__ = [
    "associate",
    "create",
    "delete",
    "delete_by_task_id",
    "delete_unused",
    "detach",
    "find_by_file_path",
    "find_by_hash",
    "find_by_id",
    "find_by_task_id",
    "find_orphaned_images",
]


async def create(
    conn: aiosqlite.Connection,
    *,
    file_path: str,
    original_name: str,
    hash: str,
    mime_type: str | None = None,
    size_bytes: int | None = None,
) -> Image:
    """Insert an image, or return the existing one with the same hash (dedup)."""
    existing = await find_by_hash(conn, hash)
    if existing is not None:
        return existing
    image_id = uuid4()
    now = now_db()
    await execute(
        conn,
        """INSERT INTO images (id, file_path, original_name, mime_type, size_bytes, hash,
               created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        (image_id.bytes, file_path, original_name, mime_type, size_bytes, hash, now, now),
    )
    found = await find_by_id(conn, image_id)
    assert found is not None
    return found


async def find_by_id(conn: aiosqlite.Connection, image_id: UUID) -> Image | None:
    return await fetch_model(conn, Image, "SELECT * FROM images WHERE id = ?", (image_id.bytes,))


async def find_by_hash(conn: aiosqlite.Connection, hash: str) -> Image | None:
    return await fetch_model(conn, Image, "SELECT * FROM images WHERE hash = ?", (hash,))


async def find_by_file_path(conn: aiosqlite.Connection, file_path: str) -> Image | None:
    return await fetch_model(
        conn, Image, "SELECT * FROM images WHERE file_path = ? LIMIT 1", (file_path,)
    )


async def find_by_task_id(conn: aiosqlite.Connection, task_id: UUID) -> list[Image]:
    return await fetch_models(
        conn,
        Image,
        """SELECT i.* FROM images i JOIN task_images ti ON ti.image_id = i.id
           WHERE ti.task_id = ? ORDER BY ti.created_at, ti.rowid""",
        (uuid_to_db(task_id),),
    )


async def delete(conn: aiosqlite.Connection, image_id: UUID) -> bool:
    return bool(await execute(conn, "DELETE FROM images WHERE id = ?", (image_id.bytes,)))


async def find_orphaned_images(conn: aiosqlite.Connection) -> list[Image]:
    """Images no task refers to."""
    return await fetch_models(
        conn,
        Image,
        """SELECT * FROM images i
           WHERE NOT EXISTS (SELECT 1 FROM task_images ti WHERE ti.image_id = i.id)
           ORDER BY created_at""",
    )


async def associate(conn: aiosqlite.Connection, task_id: UUID, image_ids: list[UUID]) -> None:
    """Attach images to a task (already attached ones are skipped)."""
    for image_id in image_ids:
        await execute(
            conn,
            """INSERT INTO task_images (id, task_id, image_id, created_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (task_id, image_id) DO NOTHING""",
            (uuid4().bytes, uuid_to_db(task_id), image_id.bytes, now_db()),
        )


async def delete_by_task_id(conn: aiosqlite.Connection, task_id: UUID) -> int:
    return await execute(conn, "DELETE FROM task_images WHERE task_id = ?", (uuid_to_db(task_id),))


async def detach(conn: aiosqlite.Connection, task_id: UUID, image_id: UUID) -> bool:
    """Detach one image from a task; False when it was not attached."""
    return bool(
        await execute(
            conn,
            "DELETE FROM task_images WHERE task_id = ? AND image_id = ?",
            (uuid_to_db(task_id), image_id.bytes),
        )
    )


async def delete_unused(conn: aiosqlite.Connection, image_ids: list[UUID]) -> list[Image]:
    """Delete those of ``image_ids`` no task uses; returns the deleted rows (their files are the
    caller's to remove)."""
    deleted: list[Image] = []
    for image_id in image_ids:
        image = await fetch_model(
            conn,
            Image,
            """SELECT * FROM images i WHERE id = ?
               AND NOT EXISTS (SELECT 1 FROM task_images ti WHERE ti.image_id = i.id)""",
            (image_id.bytes,),
        )
        if image is not None:
            await delete(conn, image_id)
            deleted.append(image)
    return deleted
