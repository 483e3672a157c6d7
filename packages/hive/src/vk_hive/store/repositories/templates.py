"""Organization-wide prompt templates (soft-deleted, optimistic versions)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from vk_hive.errors import Conflict, InvalidInput, NotFound, VersionConflict
from vk_hive.store.models import SwarmTemplate, from_row, from_rows

_COLUMNS = """id, organization_id, name, content, description, metadata, version, created_at,
    updated_at, deleted_at"""


async def create(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    name: str,
    content: str = "",
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> SwarmTemplate:
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                INSERT INTO swarm_templates (organization_id, name, content, description, metadata)
                VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}
                """,
                organization_id,
                name,
                content,
                description,
                metadata or {},
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a template named {name!r} already exists") from None
    return from_row(SwarmTemplate, row)


async def find_by_id(conn: asyncpg.Connection, template_id: uuid.UUID) -> SwarmTemplate | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM swarm_templates WHERE id = $1 AND deleted_at IS NULL",
        template_id,
    )
    return None if row is None else from_row(SwarmTemplate, row)


async def organization_id(conn: asyncpg.Connection, template_id: uuid.UUID) -> uuid.UUID | None:
    org: uuid.UUID | None = await conn.fetchval(
        "SELECT organization_id FROM swarm_templates WHERE id = $1", template_id
    )
    return org


async def list_by_organization(
    conn: asyncpg.Connection, organization_id: uuid.UUID
) -> list[SwarmTemplate]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM swarm_templates WHERE organization_id = $1 "
        "AND deleted_at IS NULL ORDER BY name, id",
        organization_id,
    )
    return from_rows(SwarmTemplate, rows)


async def update(
    conn: asyncpg.Connection,
    template_id: uuid.UUID,
    *,
    name: str | None = None,
    content: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    expected_version: int | None = None,
) -> SwarmTemplate:
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                UPDATE swarm_templates SET name = COALESCE($2, name),
                    content = COALESCE($3, content), description = COALESCE($4, description),
                    metadata = COALESCE($5, metadata), version = version + 1
                WHERE id = $1 AND deleted_at IS NULL AND ($6::bigint IS NULL OR version = $6)
                RETURNING {_COLUMNS}
                """,
                template_id,
                name,
                content,
                description,
                metadata,
                expected_version,
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a template named {name!r} already exists") from None
    if row is None:
        await _raise_missing_or_stale(conn, template_id)
    return from_row(SwarmTemplate, row)


async def _raise_missing_or_stale(conn: asyncpg.Connection, template_id: uuid.UUID) -> None:
    if await find_by_id(conn, template_id) is None:
        raise NotFound(f"template {template_id} not found")
    raise VersionConflict(f"template {template_id} was changed by someone else")


async def delete(
    conn: asyncpg.Connection, template_id: uuid.UUID, *, expected_version: int | None = None
) -> SwarmTemplate:
    row = await conn.fetchrow(
        f"""
        UPDATE swarm_templates SET deleted_at = now(), version = version + 1
        WHERE id = $1 AND deleted_at IS NULL AND ($2::bigint IS NULL OR version = $2)
        RETURNING {_COLUMNS}
        """,
        template_id,
        expected_version,
    )
    if row is None:
        await _raise_missing_or_stale(conn, template_id)
    return from_row(SwarmTemplate, row)


async def merge(
    conn: asyncpg.Connection, source_id: uuid.UUID, target_id: uuid.UUID
) -> SwarmTemplate:
    """Keep the target, soft-delete the source (same organization)."""
    if source_id == target_id:
        raise InvalidInput("cannot merge a template into itself")
    async with conn.transaction():
        source, target = await find_by_id(conn, source_id), await find_by_id(conn, target_id)
        if source is None or target is None:
            raise NotFound("template not found")
        if source.organization_id != target.organization_id:
            raise InvalidInput("templates belong to different organizations")
        await delete(conn, source_id)
        return target
