"""Webhooks (global or per project) fired on node events such as ``executor_finish``."""

from __future__ import annotations

import json
from uuid import UUID

import aiosqlite

from vk_node.errors import NotFound
from vk_node.store.codec import now_db, uuid_or_none, uuid_to_db
from vk_node.store.models import Webhook
from vk_node.store.sql import execute, fetch_model, fetch_models

__all__ = [
    "create",
    "delete",
    "find_all",
    "find_applicable",
    "find_by_id",
    "find_for_project",
    "find_global",
    "update",
]

_JSON = ("events", "headers")


async def find_by_id(conn: aiosqlite.Connection, webhook_id: UUID) -> Webhook | None:
    return await fetch_model(
        conn, Webhook, "SELECT * FROM webhooks WHERE id = ?", (webhook_id.bytes,), json=_JSON
    )


async def find_all(conn: aiosqlite.Connection) -> list[Webhook]:
    """Every webhook, global and per project, oldest first."""
    return await fetch_models(
        conn, Webhook, "SELECT * FROM webhooks ORDER BY created_at, rowid", json=_JSON
    )


async def find_global(conn: aiosqlite.Connection) -> list[Webhook]:
    return await fetch_models(
        conn,
        Webhook,
        "SELECT * FROM webhooks WHERE project_id IS NULL ORDER BY created_at",
        json=_JSON,
    )


async def find_for_project(conn: aiosqlite.Connection, project_id: UUID) -> list[Webhook]:
    return await fetch_models(
        conn,
        Webhook,
        "SELECT * FROM webhooks WHERE project_id = ? ORDER BY created_at",
        (uuid_to_db(project_id),),
        json=_JSON,
    )


async def find_applicable(
    conn: aiosqlite.Connection, project_id: UUID, event: str
) -> list[Webhook]:
    """Active project hooks for ``event`` plus active global ones, unless a matching project
    hook sets ``override_global``."""
    project_hooks = [
        h for h in await find_for_project(conn, project_id) if h.active and event in h.events
    ]
    if any(h.override_global for h in project_hooks):
        return project_hooks
    return project_hooks + [h for h in await find_global(conn) if h.active and event in h.events]


async def create(
    conn: aiosqlite.Connection,
    webhook_id: UUID,
    *,
    name: str,
    url: str,
    project_id: UUID | None = None,
    events: list[str] | None = None,
    headers: dict[str, str] | None = None,
    secret: str | None = None,
    payload_template: str | None = None,
    override_global: bool = False,
    active: bool = True,
) -> Webhook:
    now = now_db()
    await execute(
        conn,
        """INSERT INTO webhooks (id, project_id, name, url, events, headers, secret,
               payload_template, override_global, active, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            webhook_id.bytes,
            uuid_or_none(project_id),
            name,
            url,
            json.dumps(events if events is not None else ["executor_finish"]),
            json.dumps(headers or {}),
            secret,
            payload_template,
            int(override_global),
            int(active),
            now,
            now,
        ),
    )
    found = await find_by_id(conn, webhook_id)
    assert found is not None
    return found


async def update(
    conn: aiosqlite.Connection,
    webhook_id: UUID,
    *,
    name: str,
    url: str,
    events: list[str],
    headers: dict[str, str],
    secret: str | None,
    payload_template: str | None,
    override_global: bool,
    active: bool,
) -> Webhook:
    changed = await execute(
        conn,
        """UPDATE webhooks SET name = ?, url = ?, events = ?, headers = ?, secret = ?,
               payload_template = ?, override_global = ?, active = ?, updated_at = ?
           WHERE id = ?""",
        (
            name,
            url,
            json.dumps(events),
            json.dumps(headers),
            secret,
            payload_template,
            int(override_global),
            int(active),
            now_db(),
            webhook_id.bytes,
        ),
    )
    if not changed:
        raise NotFound(f"webhook {webhook_id} not found")
    found = await find_by_id(conn, webhook_id)
    assert found is not None
    return found


async def delete(conn: aiosqlite.Connection, webhook_id: UUID) -> bool:
    return bool(await execute(conn, "DELETE FROM webhooks WHERE id = ?", (webhook_id.bytes,)))
