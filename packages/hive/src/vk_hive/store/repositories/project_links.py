"""Links of a node's local project to a swarm project (``swarm_project_nodes``)."""

from __future__ import annotations

import uuid

import asyncpg

from vk_hive.errors import InvalidInput, LinkAlreadyExists, NotFound
from vk_hive.store.models import (
    DispatchTarget,
    LinkSyncInfo,
    ProjectNodeLink,
    from_row,
    from_rows,
)

# A link with the node's name and a project name: the local name, else the last path segment.
_SELECT = r"""
    SELECT l.id, l.swarm_project_id, l.node_id, l.local_project_id, l.git_repo_path, l.os_type,
        l.linked_at, l.is_owner, n.name AS node_name,
        COALESCE(lp.name, substring(l.git_repo_path FROM '([^/\\]+)[/\\]*$'), p.name)
            AS project_name
    FROM swarm_project_nodes l
    JOIN nodes n ON n.id = l.node_id
    JOIN swarm_projects p ON p.id = l.swarm_project_id
    LEFT JOIN node_local_projects lp
        ON lp.node_id = l.node_id AND lp.local_project_id = l.local_project_id
"""


async def _check_same_org(
    conn: asyncpg.Connection, swarm_project_id: uuid.UUID, node_id: uuid.UUID
) -> None:
    row = await conn.fetchrow(
        """
        SELECT (SELECT organization_id FROM swarm_projects WHERE id = $1) AS project_org,
               (SELECT organization_id FROM nodes WHERE id = $2) AS node_org
        """,
        swarm_project_id,
        node_id,
    )
    if row["project_org"] is None:
        raise NotFound(f"swarm project {swarm_project_id} not found")
    if row["node_org"] is None:
        raise NotFound(f"node {node_id} not found")
    if row["project_org"] != row["node_org"]:
        raise InvalidInput("node and swarm project belong to different organizations")


async def _fetch_link(conn: asyncpg.Connection, link_id: uuid.UUID) -> ProjectNodeLink:
    row = await conn.fetchrow(_SELECT + " WHERE l.id = $1", link_id)
    return from_row(ProjectNodeLink, row)


async def link_node(
    conn: asyncpg.Connection,
    swarm_project_id: uuid.UUID,
    node_id: uuid.UUID,
    local_project_id: uuid.UUID,
    git_repo_path: str,
    os_type: str | None = None,
    is_owner: bool = False,
) -> ProjectNodeLink:
    """Link a node's local project; LinkAlreadyExists when either side is already linked."""
    await _check_same_org(conn, swarm_project_id, node_id)
    try:
        async with conn.transaction():
            link_id = await conn.fetchval(
                """
                INSERT INTO swarm_project_nodes
                    (swarm_project_id, node_id, local_project_id, git_repo_path, os_type, is_owner)
                VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
                """,
                swarm_project_id,
                node_id,
                local_project_id,
                git_repo_path,
                os_type,
                is_owner,
            )
    except asyncpg.UniqueViolationError:
        raise LinkAlreadyExists("node or local project already linked") from None
    return await _fetch_link(conn, link_id)


async def link_node_pool(
    conn: asyncpg.Connection,
    swarm_project_id: uuid.UUID,
    node_id: uuid.UUID,
    local_project_id: uuid.UUID,
    git_repo_path: str,
    os_type: str | None = None,
) -> ProjectNodeLink:
    """Link (or relink) a local project: upsert on (node, local project)."""
    await _check_same_org(conn, swarm_project_id, node_id)
    try:
        async with conn.transaction():
            link_id = await conn.fetchval(
                """
                INSERT INTO swarm_project_nodes
                    (swarm_project_id, node_id, local_project_id, git_repo_path, os_type)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (node_id, local_project_id) DO UPDATE SET
                    swarm_project_id = EXCLUDED.swarm_project_id,
                    git_repo_path = EXCLUDED.git_repo_path, os_type = EXCLUDED.os_type,
                    linked_at = now()
                RETURNING id
                """,
                swarm_project_id,
                node_id,
                local_project_id,
                git_repo_path,
                os_type,
            )
    except asyncpg.UniqueViolationError:
        raise LinkAlreadyExists("node already linked to this swarm project") from None
    return await _fetch_link(conn, link_id)


async def unlink_node(
    conn: asyncpg.Connection, swarm_project_id: uuid.UUID, node_id: uuid.UUID
) -> bool:
    """Delete the (project, node) link; False when there was none."""
    result: str = await conn.execute(
        "DELETE FROM swarm_project_nodes WHERE swarm_project_id = $1 AND node_id = $2",
        swarm_project_id,
        node_id,
    )
    return result != "DELETE 0"


async def list_nodes(
    conn: asyncpg.Connection, swarm_project_id: uuid.UUID
) -> list[ProjectNodeLink]:
    rows = await conn.fetch(
        _SELECT + " WHERE l.swarm_project_id = $1 ORDER BY l.linked_at, l.id", swarm_project_id
    )
    return from_rows(ProjectNodeLink, rows)


async def list_by_node(conn: asyncpg.Connection, node_id: uuid.UUID) -> list[ProjectNodeLink]:
    """This node's links, newest first (also what ``auth_result`` carries)."""
    rows = await conn.fetch(
        _SELECT + " WHERE l.node_id = $1 ORDER BY l.linked_at DESC, l.id", node_id
    )
    return from_rows(ProjectNodeLink, rows)


list_for_node_auth = list_by_node


_SYNC_SELECT = """
    SELECT l.id AS link_id, l.swarm_project_id AS project_id, l.local_project_id,
        p.name AS project_name, l.git_repo_path,
        COALESCE(lp.default_branch, 'main') AS default_branch, l.node_id AS source_node_id,
        n.name AS source_node_name, n.public_url AS source_node_public_url, TRUE AS is_owned
    FROM swarm_project_nodes l
    JOIN nodes n ON n.id = l.node_id
    JOIN swarm_projects p ON p.id = l.swarm_project_id
    LEFT JOIN node_local_projects lp
        ON lp.node_id = l.node_id AND lp.local_project_id = l.local_project_id
"""


async def list_sync_infos_for_node(
    conn: asyncpg.Connection, node_id: uuid.UUID
) -> list[LinkSyncInfo]:
    """The node's links as ``auth_result.linked_projects`` carries them (swarm project names)."""
    rows = await conn.fetch(
        _SYNC_SELECT + " WHERE l.node_id = $1 ORDER BY l.linked_at, l.id", node_id
    )
    return from_rows(LinkSyncInfo, rows)


async def find_sync_info(
    conn: asyncpg.Connection, swarm_project_id: uuid.UUID, node_id: uuid.UUID
) -> LinkSyncInfo | None:
    row = await conn.fetchrow(
        _SYNC_SELECT + " WHERE l.swarm_project_id = $1 AND l.node_id = $2",
        swarm_project_id,
        node_id,
    )
    return None if row is None else from_row(LinkSyncInfo, row)


async def find_node_link(
    conn: asyncpg.Connection, swarm_project_id: uuid.UUID, node_id: uuid.UUID
) -> ProjectNodeLink | None:
    row = await conn.fetchrow(
        _SELECT + " WHERE l.swarm_project_id = $1 AND l.node_id = $2", swarm_project_id, node_id
    )
    return None if row is None else from_row(ProjectNodeLink, row)


async def find_by_local_project(
    conn: asyncpg.Connection, node_id: uuid.UUID, local_project_id: uuid.UUID
) -> ProjectNodeLink | None:
    row = await conn.fetchrow(
        _SELECT + " WHERE l.node_id = $1 AND l.local_project_id = $2", node_id, local_project_id
    )
    return None if row is None else from_row(ProjectNodeLink, row)


async def get_linked_node_ids(
    conn: asyncpg.Connection, swarm_project_id: uuid.UUID
) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT node_id FROM swarm_project_nodes WHERE swarm_project_id = $1 ORDER BY linked_at",
        swarm_project_id,
    )
    return [r["node_id"] for r in rows]


async def linked_projects(
    conn: asyncpg.Connection, node_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The swarm projects each of these nodes links."""
    rows = await conn.fetch(
        "SELECT node_id, swarm_project_id FROM swarm_project_nodes WHERE node_id = ANY($1::uuid[])",
        node_ids,
    )
    linked: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row in rows:
        linked.setdefault(row["node_id"], []).append(row["swarm_project_id"])
    return linked


async def find_nodes_for_dispatch(
    conn: asyncpg.Connection, swarm_project_id: uuid.UUID
) -> list[DispatchTarget]:
    """Linked nodes, least loaded first (fewest active assignments across all projects), then
    in link order; with the default branch from the inventory (else ``main``)."""
    rows = await conn.fetch(
        """
        SELECT l.id AS link_id, l.node_id, l.local_project_id, l.git_repo_path, l.linked_at,
            COALESCE(lp.default_branch, 'main') AS default_branch,
            (SELECT count(*) FROM node_task_assignments a
             WHERE a.node_id = l.node_id AND a.completed_at IS NULL) AS active_assignments
        FROM swarm_project_nodes l
        LEFT JOIN node_local_projects lp
            ON lp.node_id = l.node_id AND lp.local_project_id = l.local_project_id
        WHERE l.swarm_project_id = $1
        ORDER BY active_assignments, l.linked_at, l.id
        """,
        swarm_project_id,
    )
    return from_rows(DispatchTarget, rows)
