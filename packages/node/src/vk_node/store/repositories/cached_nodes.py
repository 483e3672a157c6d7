"""Other nodes of the organization as last pushed by the hive (for node-status display)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import aiosqlite

from vk_node.store.codec import now_db, ts_to_db
from vk_node.store.models import CachedNode
from vk_node.store.sql import execute, fetch_model, fetch_models

__all__ = [
    "find_by_id",
    "list_for_organization",
    "remove",
    "remove_stale",
    "upsert",
    "upsert_status",
]


def _ts(value: datetime | None) -> str | None:
    return None if value is None else ts_to_db(value)


async def upsert(
    conn: aiosqlite.Connection,
    *,
    node_id: UUID,
    organization_id: UUID,
    name: str,
    machine_id: str,
    status: str,
    capabilities: dict[str, Any],
    public_url: str | None,
    last_heartbeat_at: datetime | None,
    connected_at: datetime | None,
    disconnected_at: datetime | None,
    created_at: datetime,
    updated_at: datetime,
) -> CachedNode:
    await execute(
        conn,
        """INSERT INTO cached_nodes (id, organization_id, name, machine_id, status, capabilities,
               public_url, last_heartbeat_at, connected_at, disconnected_at, created_at,
               updated_at, last_synced_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET organization_id = excluded.organization_id,
               name = excluded.name, machine_id = excluded.machine_id, status = excluded.status,
               capabilities = excluded.capabilities, public_url = excluded.public_url,
               last_heartbeat_at = excluded.last_heartbeat_at,
               connected_at = excluded.connected_at, disconnected_at = excluded.disconnected_at,
               created_at = excluded.created_at, updated_at = excluded.updated_at,
               last_synced_at = excluded.last_synced_at""",
        (
            node_id.bytes,
            organization_id.bytes,
            name,
            machine_id,
            status,
            json.dumps(capabilities),
            public_url,
            _ts(last_heartbeat_at),
            _ts(connected_at),
            _ts(disconnected_at),
            ts_to_db(created_at),
            ts_to_db(updated_at),
            now_db(),
        ),
    )
    node = await find_by_id(conn, node_id)
    assert node is not None
    return node


async def upsert_status(
    conn: aiosqlite.Connection,
    *,
    node_id: UUID,
    organization_id: UUID,
    status: str,
    name: str | None = None,
    public_url: str | None = None,
    last_heartbeat_at: datetime | None = None,
) -> CachedNode:
    """Apply a pushed status change (``node_status``, ``project_sync``): insert the node when it
    is unknown (name defaults to its id), else update its status and the fields given."""
    now = now_db()
    await execute(
        conn,
        """INSERT INTO cached_nodes (id, organization_id, name, machine_id, status, public_url,
               last_heartbeat_at, created_at, updated_at, last_synced_at)
           VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET status = excluded.status,
               name = COALESCE(?, cached_nodes.name),
               public_url = COALESCE(excluded.public_url, cached_nodes.public_url),
               last_heartbeat_at = COALESCE(excluded.last_heartbeat_at,
                                            cached_nodes.last_heartbeat_at),
               updated_at = excluded.updated_at, last_synced_at = excluded.last_synced_at""",
        (
            node_id.bytes,
            organization_id.bytes,
            name or str(node_id),
            status,
            public_url,
            _ts(last_heartbeat_at),
            now,
            now,
            now,
            name,
        ),
    )
    node = await find_by_id(conn, node_id)
    assert node is not None
    return node


async def find_by_id(conn: aiosqlite.Connection, node_id: UUID) -> CachedNode | None:
    return await fetch_model(
        conn, CachedNode, "SELECT * FROM cached_nodes WHERE id = ?", (node_id.bytes,)
    )


async def list_for_organization(
    conn: aiosqlite.Connection, organization_id: UUID
) -> list[CachedNode]:
    return await fetch_models(
        conn,
        CachedNode,
        "SELECT * FROM cached_nodes WHERE organization_id = ? ORDER BY name",
        (organization_id.bytes,),
    )


async def remove(conn: aiosqlite.Connection, node_id: UUID) -> bool:
    return bool(await execute(conn, "DELETE FROM cached_nodes WHERE id = ?", (node_id.bytes,)))


async def remove_stale(
    conn: aiosqlite.Connection, organization_id: UUID, keep_ids: list[UUID]
) -> int:
    """Delete the organization's cached nodes not in ``keep_ids`` (after a snapshot)."""
    keep = {k.bytes for k in keep_ids}
    removed = 0
    for node in await list_for_organization(conn, organization_id):
        if node.id.bytes not in keep:
            removed += int(await remove(conn, node.id))
    return removed
