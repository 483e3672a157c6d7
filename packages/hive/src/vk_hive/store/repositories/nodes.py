"""Node registry: registration, heartbeats, staleness, merge."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg

from vk_hive.errors import InvalidInput, NotFound
from vk_hive.store.models import Node, NodeRegistration, NodeStatusEntry, from_row, from_rows
from vk_shared.status import NodeStatus

_COLUMNS = """id, organization_id, name, machine_id, status, capabilities, public_url,
    last_heartbeat_at, connected_at, disconnected_at, created_at, updated_at, session_id"""


async def create(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    reg: NodeRegistration,
    session_id: uuid.UUID | None = None,
) -> Node:
    """Insert a new node, online (a key's first use). Never looks for an existing node: what a
    node says about itself (machine id, name) is metadata, not identity (DESIGN.md §10)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO nodes (organization_id, name, machine_id, capabilities, public_url,
                           status, connected_at, last_heartbeat_at, session_id)
        VALUES ($1, $2, $3, $4, $5, 'online', now(), now(), $6)
        RETURNING {_COLUMNS}
        """,
        organization_id,
        reg.name,
        reg.machine_id,
        reg.capabilities,
        reg.public_url,
        session_id,
    )
    return from_row(Node, row)


async def connected(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    reg: NodeRegistration,
    session_id: uuid.UUID | None = None,
) -> Node:
    """Mark the node online with the details of the instance that just authenticated as it;
    ``session_id`` becomes its current session."""
    row = await conn.fetchrow(
        f"""
        UPDATE nodes SET name = $2, machine_id = $3, capabilities = $4, public_url = $5,
            status = 'online', connected_at = now(), last_heartbeat_at = now(),
            disconnected_at = NULL, session_id = $6
        WHERE id = $1
        RETURNING {_COLUMNS}
        """,
        node_id,
        reg.name,
        reg.machine_id,
        reg.capabilities,
        reg.public_url,
        session_id,
    )
    if row is None:
        raise NotFound(f"node {node_id} not found")
    return from_row(Node, row)


async def find_by_id(conn: asyncpg.Connection, node_id: uuid.UUID) -> Node | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM nodes WHERE id = $1", node_id)
    return None if row is None else from_row(Node, row)


async def get(conn: asyncpg.Connection, node_id: uuid.UUID) -> Node:
    """Like ``find_by_id`` but raises NotFound."""
    node = await find_by_id(conn, node_id)
    if node is None:
        raise NotFound(f"node {node_id} not found")
    return node


async def list_by_organization(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[Node]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM nodes WHERE organization_id = $1 ORDER BY name, id",
        organization_id,
    )
    return from_rows(Node, rows)


async def get_statuses_by_ids(
    conn: asyncpg.Connection, node_ids: Sequence[uuid.UUID]
) -> list[NodeStatusEntry]:
    rows = await conn.fetch(
        "SELECT id, status, last_heartbeat_at FROM nodes WHERE id = ANY($1::uuid[])",
        list(node_ids),
    )
    return from_rows(NodeStatusEntry, rows)


async def heartbeat(conn: asyncpg.Connection, node_id: uuid.UUID, status: NodeStatus) -> Node:
    """Record a heartbeat (or a status change such as offline on disconnect)."""
    row = await conn.fetchrow(
        f"""
        UPDATE nodes SET status = $2, last_heartbeat_at = now(),
            disconnected_at = CASE WHEN $2::node_status = 'offline' THEN now()
                                   ELSE disconnected_at END
        WHERE id = $1 RETURNING {_COLUMNS}
        """,
        node_id,
        NodeStatus(status).value,
    )
    if row is None:
        raise NotFound(f"node {node_id} not found")
    return from_row(Node, row)


async def disconnected(
    conn: asyncpg.Connection, node_id: uuid.UUID, session_id: uuid.UUID
) -> Node | None:
    """Mark the node offline as its session ``session_id`` ends — only if that is still its
    current session (None otherwise: it connected again, here or to another hive process, or
    was deleted)."""
    row = await conn.fetchrow(
        f"""
        UPDATE nodes SET status = 'offline', last_heartbeat_at = now(), disconnected_at = now(),
            session_id = NULL
        WHERE id = $1 AND session_id = $2
        RETURNING {_COLUMNS}
        """,
        node_id,
        session_id,
    )
    return None if row is None else from_row(Node, row)


async def current_sessions(
    conn: asyncpg.Connection, node_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each existing node's current session id (a missing node is left out)."""
    rows = await conn.fetch(
        "SELECT id, session_id FROM nodes WHERE id = ANY($1::uuid[])", list(node_ids)
    )
    return {r["id"]: r["session_id"] for r in rows}


async def find_by_ids(conn: asyncpg.Connection, node_ids: Sequence[uuid.UUID]) -> list[Node]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM nodes WHERE id = ANY($1::uuid[])", list(node_ids)
    )
    return from_rows(Node, rows)


async def mark_stale_offline(conn: asyncpg.Connection, threshold: dt.timedelta) -> list[uuid.UUID]:
    """Online/busy nodes whose last heartbeat is older than now() - threshold go offline."""
    rows = await conn.fetch(
        """
        UPDATE nodes SET status = 'offline', disconnected_at = now(), session_id = NULL
        WHERE status IN ('online', 'busy')
          AND (last_heartbeat_at IS NULL OR last_heartbeat_at < now() - $1::interval)
        RETURNING id
        """,
        threshold,
    )
    return [r["id"] for r in rows]


async def update_public_url(
    conn: asyncpg.Connection, node_id: uuid.UUID, public_url: str | None
) -> None:
    result = await conn.execute(
        "UPDATE nodes SET public_url = $2 WHERE id = $1", node_id, public_url
    )
    if result == "UPDATE 0":
        raise NotFound(f"node {node_id} not found")


async def delete(conn: asyncpg.Connection, node_id: uuid.UUID) -> None:
    """Delete a node; links, assignments, attempts and inventory cascade."""
    result = await conn.execute("DELETE FROM nodes WHERE id = $1", node_id)
    if result == "DELETE 0":
        raise NotFound(f"node {node_id} not found")


async def merge_nodes(conn: asyncpg.Connection, source_id: uuid.UUID, target_id: uuid.UUID) -> Node:
    """Fold ``source`` into ``target`` (same organization) and delete ``source``.

    Links move where the target lacks that swarm project (the rest are deleted); inventory rows
    move where the target lacks them, keeping their swarm link only if the target has that link;
    usable (non-revoked, non-blocked) API keys are rebound to the target with counters reset.
    """
    if source_id == target_id:
        raise InvalidInput("cannot merge a node into itself")
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT id, organization_id FROM nodes WHERE id = ANY($1::uuid[]) FOR UPDATE",
            [source_id, target_id],
        )
        orgs = {r["id"]: r["organization_id"] for r in rows}
        if source_id not in orgs or target_id not in orgs:
            raise NotFound("node not found")
        if orgs[source_id] != orgs[target_id]:
            raise InvalidInput("nodes belong to different organizations")
        await conn.execute(
            """
            UPDATE swarm_project_nodes s SET node_id = $2
            WHERE s.node_id = $1
              AND NOT EXISTS (SELECT 1 FROM swarm_project_nodes t
                              WHERE t.node_id = $2 AND t.swarm_project_id = s.swarm_project_id)
              AND NOT EXISTS (SELECT 1 FROM swarm_project_nodes t
                              WHERE t.node_id = $2 AND t.local_project_id = s.local_project_id)
            """,
            source_id,
            target_id,
        )
        await conn.execute(
            """
            UPDATE node_local_projects s SET node_id = $2,
                swarm_project_id = CASE WHEN EXISTS (
                    SELECT 1 FROM swarm_project_nodes l
                    WHERE l.node_id = $2 AND l.swarm_project_id = s.swarm_project_id)
                  THEN s.swarm_project_id ELSE NULL END
            WHERE s.node_id = $1
              AND NOT EXISTS (SELECT 1 FROM node_local_projects t
                              WHERE t.node_id = $2 AND t.local_project_id = s.local_project_id)
            """,
            source_id,
            target_id,
        )
        await conn.execute(
            """
            UPDATE node_api_keys SET node_id = $2, takeover_count = 0, takeover_window_start = NULL
            WHERE node_id = $1 AND revoked_at IS NULL AND blocked_at IS NULL
            """,
            source_id,
            target_id,
        )
        await conn.execute("DELETE FROM nodes WHERE id = $1", source_id)
        return await get(conn, target_id)
