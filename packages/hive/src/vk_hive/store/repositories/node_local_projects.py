"""Inventory of every node's local projects (for linking and for op routing)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg

from vk_hive.errors import NotFound
from vk_hive.store.models import LocalProjectInfo, NodeLocalProject, from_row, from_rows

_SELECT = """
    SELECT lp.id, lp.node_id, lp.local_project_id, lp.name, lp.git_repo_path, lp.default_branch,
        lp.swarm_project_id, lp.last_seen_at, lp.created_at, p.name AS swarm_project_name
    FROM node_local_projects lp LEFT JOIN swarm_projects p ON p.id = lp.swarm_project_id
"""

_UPSERT = """
    INSERT INTO node_local_projects (node_id, local_project_id, name, git_repo_path, default_branch)
    SELECT $1, u.local_project_id, u.name, u.git_repo_path, u.default_branch
    FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[])
        AS u(local_project_id, name, git_repo_path, default_branch)
    ON CONFLICT (node_id, local_project_id) DO UPDATE SET name = EXCLUDED.name,
        git_repo_path = EXCLUDED.git_repo_path, default_branch = EXCLUDED.default_branch,
        last_seen_at = now()
"""


async def bulk_upsert(
    conn: asyncpg.Connection, node_id: uuid.UUID, projects: Sequence[LocalProjectInfo]
) -> None:
    """Record (or refresh) every listed project of a node; ``last_seen_at`` becomes now."""
    if not projects:
        return
    await conn.execute(
        _UPSERT,
        node_id,
        [p.local_project_id for p in projects],
        [p.name for p in projects],
        [p.git_repo_path for p in projects],
        [p.default_branch for p in projects],
    )


async def delete_unlinked_except(
    conn: asyncpg.Connection, node_id: uuid.UUID, keep: Sequence[uuid.UUID]
) -> int:
    """Forget the node's unlinked projects that are not in ``keep`` (a full inventory replaces
    the previous one; linked rows stay until unlinked). Returns how many were deleted."""
    result = await conn.execute(
        """
        DELETE FROM node_local_projects lp
        WHERE lp.node_id = $1 AND lp.swarm_project_id IS NULL
          AND NOT (lp.local_project_id = ANY($2::uuid[]))
          AND NOT EXISTS (SELECT 1 FROM swarm_project_nodes l
                          WHERE l.node_id = lp.node_id AND l.local_project_id = lp.local_project_id)
        """,
        node_id,
        list(keep),
    )
    return int(result.split()[-1])


async def list_by_node(conn: asyncpg.Connection, node_id: uuid.UUID) -> list[NodeLocalProject]:
    rows = await conn.fetch(_SELECT + " WHERE lp.node_id = $1 ORDER BY lp.name, lp.id", node_id)
    return from_rows(NodeLocalProject, rows)


async def find_by_node_and_project(
    conn: asyncpg.Connection, node_id: uuid.UUID, local_project_id: uuid.UUID
) -> NodeLocalProject | None:
    row = await conn.fetchrow(
        _SELECT + " WHERE lp.node_id = $1 AND lp.local_project_id = $2", node_id, local_project_id
    )
    return None if row is None else from_row(NodeLocalProject, row)


async def link_to_swarm(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    local_project_id: uuid.UUID,
    swarm_project_id: uuid.UUID,
) -> None:
    result = await conn.execute(
        "UPDATE node_local_projects SET swarm_project_id = $3 "
        "WHERE node_id = $1 AND local_project_id = $2",
        node_id,
        local_project_id,
        swarm_project_id,
    )
    if result == "UPDATE 0":
        raise NotFound(f"local project {local_project_id} of node {node_id} not found")


async def link_to_swarm_with_upsert(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    project: LocalProjectInfo,
    swarm_project_id: uuid.UUID,
) -> NodeLocalProject:
    await bulk_upsert(conn, node_id, [project])
    await link_to_swarm(conn, node_id, project.local_project_id, swarm_project_id)
    found = await find_by_node_and_project(conn, node_id, project.local_project_id)
    assert found is not None
    return found


async def unlink_from_swarm(
    conn: asyncpg.Connection, node_id: uuid.UUID, local_project_id: uuid.UUID
) -> None:
    await conn.execute(
        "UPDATE node_local_projects SET swarm_project_id = NULL "
        "WHERE node_id = $1 AND local_project_id = $2",
        node_id,
        local_project_id,
    )


async def delete_stale(conn: asyncpg.Connection, threshold: dt.timedelta) -> int:
    """Delete rows of currently online nodes not seen for ``threshold``; returns how many."""
    result = await conn.execute(
        """
        DELETE FROM node_local_projects lp USING nodes n
        WHERE n.id = lp.node_id AND n.status IN ('online', 'busy')
          AND lp.last_seen_at < now() - $1::interval
        """,
        threshold,
    )
    return int(result.split()[-1])
