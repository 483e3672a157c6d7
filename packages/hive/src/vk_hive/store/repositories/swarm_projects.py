"""Swarm projects: the organization-wide projects that nodes link their local projects to."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from vk_hive.errors import Conflict, InvalidInput, NotFound
from vk_hive.store.models import SwarmProject, SwarmProjectWithCounts, from_row, from_rows
from vk_hive.store.repositories import shared_tasks

_COLUMNS = "id, organization_id, name, description, metadata, created_at, updated_at"


async def create(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    name: str,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> SwarmProject:
    try:
        async with conn.transaction():  # a savepoint inside a caller's transaction
            row = await conn.fetchrow(
                f"""
                INSERT INTO swarm_projects (organization_id, name, description, metadata)
                VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}
                """,
                organization_id,
                name,
                description,
                metadata or {},
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a swarm project named {name!r} already exists") from None
    return from_row(SwarmProject, row)


async def find_by_id(conn: asyncpg.Connection, project_id: uuid.UUID) -> SwarmProject | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM swarm_projects WHERE id = $1", project_id)
    return None if row is None else from_row(SwarmProject, row)


async def get(conn: asyncpg.Connection, project_id: uuid.UUID) -> SwarmProject:
    project = await find_by_id(conn, project_id)
    if project is None:
        raise NotFound(f"swarm project {project_id} not found")
    return project


async def exists(conn: asyncpg.Connection, project_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM swarm_projects WHERE id = $1", project_id))


async def organization_id(conn: asyncpg.Connection, project_id: uuid.UUID) -> uuid.UUID | None:
    org: uuid.UUID | None = await conn.fetchval(
        "SELECT organization_id FROM swarm_projects WHERE id = $1", project_id
    )
    return org


async def list_by_organization(
    conn: asyncpg.Connection, organization_id: uuid.UUID
) -> list[SwarmProject]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM swarm_projects WHERE organization_id = $1 "
        "ORDER BY created_at DESC, id",
        organization_id,
    )
    return from_rows(SwarmProject, rows)


async def list_with_nodes_count(
    conn: asyncpg.Connection, organization_id: uuid.UUID
) -> list[SwarmProjectWithCounts]:
    """Projects (newest first) with their linked-node count and per-status task counts."""
    rows = await conn.fetch(
        f"""
        SELECT {", ".join("p." + c.strip() for c in _COLUMNS.split(","))},
            (SELECT count(*) FROM swarm_project_nodes l WHERE l.swarm_project_id = p.id)
                AS node_count,
            COALESCE((SELECT jsonb_object_agg(s.status, s.n) FROM (
                SELECT t.status::text AS status, count(*) AS n FROM shared_tasks t
                WHERE t.swarm_project_id = p.id AND t.deleted_at IS NULL GROUP BY t.status
            ) s), '{{}}'::jsonb) AS task_counts
        FROM swarm_projects p WHERE p.organization_id = $1
        ORDER BY p.created_at DESC, p.id
        """,
        organization_id,
    )
    return from_rows(SwarmProjectWithCounts, rows)


async def update(
    conn: asyncpg.Connection,
    project_id: uuid.UUID,
    *,
    name: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> SwarmProject:
    try:
        async with conn.transaction():  # a savepoint inside a caller's transaction
            row = await conn.fetchrow(
                f"""
                UPDATE swarm_projects SET name = COALESCE($2, name),
                    description = COALESCE($3, description), metadata = COALESCE($4, metadata)
                WHERE id = $1 RETURNING {_COLUMNS}
                """,
                project_id,
                name,
                description,
                metadata,
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a swarm project named {name!r} already exists") from None
    if row is None:
        raise NotFound(f"swarm project {project_id} not found")
    return from_row(SwarmProject, row)


async def delete(conn: asyncpg.Connection, project_id: uuid.UUID) -> None:
    """Delete a project; links cascade, tasks keep their rows with swarm_project_id NULL."""
    if await conn.execute("DELETE FROM swarm_projects WHERE id = $1", project_id) == "DELETE 0":
        raise NotFound(f"swarm project {project_id} not found")


async def merge(conn: asyncpg.Connection, source_id: uuid.UUID, target_id: uuid.UUID) -> None:
    """Fold ``source`` into ``target`` (same organization) and delete ``source``.

    Node links move where the node is not linked to the target yet (others are dropped); tasks
    and inventory rows move to the target too, so no task loses its project.
    """
    if source_id == target_id:
        raise InvalidInput("cannot merge a swarm project into itself")
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT id, organization_id FROM swarm_projects WHERE id = ANY($1::uuid[]) FOR UPDATE",
            [source_id, target_id],
        )
        orgs = {r["id"]: r["organization_id"] for r in rows}
        if source_id not in orgs or target_id not in orgs:
            raise NotFound("swarm project not found")
        if orgs[source_id] != orgs[target_id]:
            raise InvalidInput("swarm projects belong to different organizations")
        await conn.execute(
            """
            UPDATE swarm_project_nodes s SET swarm_project_id = $2
            WHERE s.swarm_project_id = $1
              AND NOT EXISTS (SELECT 1 FROM swarm_project_nodes t
                              WHERE t.swarm_project_id = $2 AND t.node_id = s.node_id)
            """,
            source_id,
            target_id,
        )
        moved = await conn.fetch(
            """
            UPDATE shared_tasks SET swarm_project_id = $2, project_id = $2, version = version + 1
            WHERE swarm_project_id = $1 OR project_id = $1
            RETURNING id, deleted_at IS NULL AS live
            """,
            source_id,
            target_id,
        )
        for row in sorted(moved, key=lambda r: r["id"]):
            if row["live"]:
                await shared_tasks.announce(conn, row["id"], "task.updated")
        await conn.execute(
            """
            UPDATE node_local_projects n SET swarm_project_id = CASE WHEN EXISTS (
                    SELECT 1 FROM swarm_project_nodes l
                    WHERE l.swarm_project_id = $2 AND l.node_id = n.node_id
                      AND l.local_project_id = n.local_project_id)
                THEN $2 ELSE NULL END
            WHERE n.swarm_project_id = $1
            """,
            source_id,
            target_id,
        )
        await conn.execute("DELETE FROM swarm_projects WHERE id = $1", source_id)
