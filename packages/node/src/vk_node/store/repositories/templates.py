"""Prompt templates (referenced in prompts as ``@name``)."""

from __future__ import annotations

import sqlite3
from uuid import UUID

import aiosqlite

from vk_node.errors import Conflict, NotFound
from vk_node.store.codec import now_db
from vk_node.store.models import Template
from vk_node.store.sql import execute, fetch_model, fetch_models

__all__ = ["create", "delete", "find_all", "find_by_id", "update"]


async def find_all(conn: aiosqlite.Connection) -> list[Template]:
    return await fetch_models(conn, Template, "SELECT * FROM templates ORDER BY template_name")


async def find_by_id(conn: aiosqlite.Connection, template_id: UUID) -> Template | None:
    return await fetch_model(
        conn, Template, "SELECT * FROM templates WHERE id = ?", (template_id.bytes,)
    )


async def create(
    conn: aiosqlite.Connection, template_id: UUID, *, template_name: str, content: str
) -> Template:
    """Insert; :class:`Conflict` when the name has spaces or the content is empty."""
    now = now_db()
    try:
        await execute(
            conn,
            """INSERT INTO templates (id, template_name, content, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?)""",
            (template_id.bytes, template_name, content, now, now),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"invalid template: {exc}") from exc
    found = await find_by_id(conn, template_id)
    assert found is not None
    return found


async def update(
    conn: aiosqlite.Connection, template_id: UUID, *, template_name: str, content: str
) -> Template:
    try:
        changed = await execute(
            conn,
            "UPDATE templates SET template_name = ?, content = ?, updated_at = ? WHERE id = ?",
            (template_name, content, now_db(), template_id.bytes),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"invalid template: {exc}") from exc
    if not changed:
        raise NotFound(f"template {template_id} not found")
    found = await find_by_id(conn, template_id)
    assert found is not None
    return found


async def delete(conn: aiosqlite.Connection, template_id: UUID) -> bool:
    return bool(await execute(conn, "DELETE FROM templates WHERE id = ?", (template_id.bytes,)))
