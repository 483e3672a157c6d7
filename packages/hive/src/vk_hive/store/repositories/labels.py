"""Hive-managed labels (org-global when ``project_id`` is NULL) and their task links."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from vk_hive.errors import Conflict, InvalidInput, NotFound, VersionConflict
from vk_hive.store.models import Label, from_row, from_rows

_COLUMNS = """id, organization_id, project_id, origin_node_id, name, icon, color, version,
    deleted_at, created_at, updated_at"""
_L_COLUMNS = ", ".join("l." + c.strip() for c in _COLUMNS.split(","))


async def create(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    name: str,
    *,
    project_id: uuid.UUID | None = None,
    icon: str = "tag",
    color: str = "#6b7280",
    origin_node_id: uuid.UUID | None = None,
) -> Label:
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                INSERT INTO labels (organization_id, project_id, name, icon, color, origin_node_id)
                VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}
                """,
                organization_id,
                project_id,
                name,
                icon,
                color,
                origin_node_id,
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a label named {name!r} already exists") from None
    return from_row(Label, row)


async def find_by_id(conn: asyncpg.Connection, label_id: uuid.UUID) -> Label | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM labels WHERE id = $1 AND deleted_at IS NULL", label_id
    )
    return None if row is None else from_row(Label, row)


async def find_including_deleted(conn: asyncpg.Connection, label_id: uuid.UUID) -> Label | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM labels WHERE id = $1", label_id)
    return None if row is None else from_row(Label, row)


async def upsert_from_node(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    *,
    label_id: uuid.UUID,
    organization_id: uuid.UUID,
    project_id: uuid.UUID,
    name: str,
    icon: str,
    color: str,
) -> Label:
    """A node's label (``label.upsert``): created with the node's id for it, or its name, icon
    and colour replaced (version + 1) when they differ. A label of the same name in the project
    is a :class:`Conflict`."""
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                INSERT INTO labels (id, organization_id, project_id, name, icon, color,
                    origin_node_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, icon = EXCLUDED.icon,
                    color = EXCLUDED.color, version = labels.version + 1
                WHERE labels.deleted_at IS NULL
                  AND labels.organization_id = EXCLUDED.organization_id
                  AND (labels.name, labels.icon, labels.color)
                      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.icon, EXCLUDED.color)
                RETURNING {_COLUMNS}
                """,
                label_id,
                organization_id,
                project_id,
                name,
                icon,
                color,
                node_id,
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a label named {name!r} already exists in the project") from None
    if row is None:  # unchanged (the plan checked organization and deletion)
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM labels WHERE id = $1", label_id)
    return from_row(Label, row)


async def organization_id(conn: asyncpg.Connection, label_id: uuid.UUID) -> uuid.UUID | None:
    org: uuid.UUID | None = await conn.fetchval(
        "SELECT organization_id FROM labels WHERE id = $1", label_id
    )
    return org


async def find_by_organization(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[Label]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM labels WHERE organization_id = $1 AND deleted_at IS NULL "
        "ORDER BY name, id",
        organization_id,
    )
    return from_rows(Label, rows)


async def find_swarm_labels(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[Label]:
    """The organization's global labels (no project)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM labels WHERE organization_id = $1 AND project_id IS NULL "
        "AND deleted_at IS NULL ORDER BY name, id",
        organization_id,
    )
    return from_rows(Label, rows)


async def find_for_project(
    conn: asyncpg.Connection, organization_id: uuid.UUID, project_id: uuid.UUID
) -> list[Label]:
    """Global labels plus the project's own."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM labels WHERE organization_id = $1 AND deleted_at IS NULL
          AND (project_id IS NULL OR project_id = $2) ORDER BY name, id
        """,
        organization_id,
        project_id,
    )
    return from_rows(Label, rows)


async def find_by_task(conn: asyncpg.Connection, task_id: uuid.UUID) -> list[Label]:
    rows = await conn.fetch(
        f"""
        SELECT {_L_COLUMNS} FROM labels l
        JOIN shared_task_labels tl ON tl.label_id = l.id
        WHERE tl.shared_task_id = $1 AND l.deleted_at IS NULL ORDER BY l.name, l.id
        """,
        task_id,
    )
    return from_rows(Label, rows)


async def find_by_tasks(
    conn: asyncpg.Connection, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Label]]:
    """The live labels of many tasks in one query, by task (tasks without labels are absent)."""
    rows = await conn.fetch(
        f"""
        SELECT tl.shared_task_id, {_L_COLUMNS} FROM labels l
        JOIN shared_task_labels tl ON tl.label_id = l.id
        WHERE tl.shared_task_id = ANY($1::uuid[]) AND l.deleted_at IS NULL
        ORDER BY l.name, l.id
        """,
        list(task_ids),
    )
    found: dict[uuid.UUID, list[Label]] = {}
    for row in rows:
        found.setdefault(row["shared_task_id"], []).append(from_row(Label, row))
    return found


async def update(
    conn: asyncpg.Connection,
    label_id: uuid.UUID,
    *,
    name: str | None = None,
    icon: str | None = None,
    color: str | None = None,
    expected_version: int | None = None,
) -> Label:
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                UPDATE labels SET name = COALESCE($2, name), icon = COALESCE($3, icon),
                    color = COALESCE($4, color), version = version + 1
                WHERE id = $1 AND deleted_at IS NULL AND ($5::bigint IS NULL OR version = $5)
                RETURNING {_COLUMNS}
                """,
                label_id,
                name,
                icon,
                color,
                expected_version,
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a label named {name!r} already exists") from None
    if row is None:
        await _raise_missing_or_stale(conn, label_id)
    return from_row(Label, row)


async def _raise_missing_or_stale(conn: asyncpg.Connection, label_id: uuid.UUID) -> None:
    if await find_by_id(conn, label_id) is None:
        raise NotFound(f"label {label_id} not found")
    raise VersionConflict(f"label {label_id} was changed by someone else")


async def delete(
    conn: asyncpg.Connection, label_id: uuid.UUID, *, expected_version: int | None = None
) -> Label:
    """Soft delete (version+1)."""
    row = await conn.fetchrow(
        f"""
        UPDATE labels SET deleted_at = now(), version = version + 1
        WHERE id = $1 AND deleted_at IS NULL AND ($2::bigint IS NULL OR version = $2)
        RETURNING {_COLUMNS}
        """,
        label_id,
        expected_version,
    )
    if row is None:
        await _raise_missing_or_stale(conn, label_id)
    return from_row(Label, row)


async def attach(conn: asyncpg.Connection, task_id: uuid.UUID, label_id: uuid.UUID) -> None:
    await conn.execute(
        "INSERT INTO shared_task_labels (shared_task_id, label_id) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        task_id,
        label_id,
    )


async def detach(conn: asyncpg.Connection, task_id: uuid.UUID, label_id: uuid.UUID) -> None:
    await conn.execute(
        "DELETE FROM shared_task_labels WHERE shared_task_id = $1 AND label_id = $2",
        task_id,
        label_id,
    )


async def set_task_labels(
    conn: asyncpg.Connection, task_id: uuid.UUID, label_ids: Sequence[uuid.UUID]
) -> None:
    """Make the task's labels exactly ``label_ids``."""
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM shared_task_labels WHERE shared_task_id = $1 "
            "AND NOT (label_id = ANY($2::uuid[]))",
            task_id,
            list(label_ids),
        )
        await conn.execute(
            "INSERT INTO shared_task_labels (shared_task_id, label_id) "
            "SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
            task_id,
            list(label_ids),
        )


async def merge_labels(
    conn: asyncpg.Connection, source_id: uuid.UUID, target_id: uuid.UUID
) -> Label:
    """Move the source's task links to the target (skipping duplicates), soft-delete the source."""
    if source_id == target_id:
        raise InvalidInput("cannot merge a label into itself")
    async with conn.transaction():
        source, target = await find_by_id(conn, source_id), await find_by_id(conn, target_id)
        if source is None or target is None:
            raise NotFound("label not found")
        if source.organization_id != target.organization_id:
            raise InvalidInput("labels belong to different organizations")
        await conn.execute(
            """
            INSERT INTO shared_task_labels (shared_task_id, label_id)
            SELECT shared_task_id, $2 FROM shared_task_labels WHERE label_id = $1
            ON CONFLICT DO NOTHING
            """,
            source_id,
            target_id,
        )
        await conn.execute("DELETE FROM shared_task_labels WHERE label_id = $1", source_id)
        await delete(conn, source_id)
        found = await find_by_id(conn, target_id)
        assert found is not None
        return found


async def promote_to_swarm(conn: asyncpg.Connection, label_id: uuid.UUID) -> Label:
    """Make a project label global; Conflict if a global label with that name exists."""
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                UPDATE labels SET project_id = NULL, version = version + 1
                WHERE id = $1 AND deleted_at IS NULL AND NOT EXISTS (
                    SELECT 1 FROM labels g WHERE g.organization_id = labels.organization_id
                      AND g.project_id IS NULL AND g.name = labels.name
                      AND g.deleted_at IS NULL AND g.id <> labels.id)
                RETURNING {_COLUMNS}
                """,
                label_id,
            )
    except asyncpg.UniqueViolationError:
        row = None
    if row is None:
        if await find_by_id(conn, label_id) is None:
            raise NotFound(f"label {label_id} not found")
        raise Conflict("a global label with that name already exists")
    return from_row(Label, row)
