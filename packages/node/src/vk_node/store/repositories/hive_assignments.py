"""Hive assignments this node accepted (``task_assign``), so a restart knows which attempts run for
the hive and with which fencing token.

A row is *live* until it is retired: the terminal ``assignment.status`` op of its run was acked
(or rejected) by the hive. Lease deadlines are monotonic and never stored (DESIGN.md §5).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import aiosqlite
import msgspec

from vk_node.store.codec import now_db, uuid_or_none, uuid_to_db
from vk_node.store.sql import execute, fetch_model, fetch_models
from vk_shared.status import ExecutionStatus

__all__ = [
    "HiveAssignment",
    "find",
    "list_live",
    "record",
    "retire_acked",
    "set_local_ids",
    "set_status",
    "update_token",
]


class HiveAssignment(msgspec.Struct, frozen=True, kw_only=True):
    assignment_id: UUID
    shared_task_id: UUID
    swarm_project_id: UUID
    local_project_id: UUID
    local_task_id: UUID | None
    local_attempt_id: UUID | None
    fencing_token: int
    status: ExecutionStatus
    terminal_seq: int | None
    retired_at: datetime | None
    created_at: datetime
    updated_at: datetime


async def find(conn: aiosqlite.Connection, assignment_id: UUID) -> HiveAssignment | None:
    return await fetch_model(
        conn,
        HiveAssignment,
        "SELECT * FROM hive_assignments WHERE assignment_id = ?",
        (uuid_to_db(assignment_id),),
    )


async def list_live(conn: aiosqlite.Connection) -> list[HiveAssignment]:
    """Assignments not retired yet, oldest first."""
    return await fetch_models(
        conn,
        HiveAssignment,
        "SELECT * FROM hive_assignments WHERE retired_at IS NULL ORDER BY created_at, rowid",
    )


async def record(
    conn: aiosqlite.Connection,
    *,
    assignment_id: UUID,
    shared_task_id: UUID,
    swarm_project_id: UUID,
    local_project_id: UUID,
    fencing_token: int,
) -> tuple[HiveAssignment, bool]:
    """Insert an assignment (``pending``); a repeated ``task_assign`` only raises the token.
    Returns the row and whether it is new."""
    existing = await find(conn, assignment_id)
    if existing is not None:
        await update_token(conn, assignment_id, fencing_token)
        current = await find(conn, assignment_id)
        assert current is not None
        return current, False
    now = now_db()
    await execute(
        conn,
        """INSERT INTO hive_assignments (assignment_id, shared_task_id, swarm_project_id,
               local_project_id, fencing_token, status, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)""",
        (
            uuid_to_db(assignment_id),
            uuid_to_db(shared_task_id),
            uuid_to_db(swarm_project_id),
            uuid_to_db(local_project_id),
            int(fencing_token),
            now,
            now,
        ),
    )
    row = await find(conn, assignment_id)
    assert row is not None
    return row, True


async def update_token(conn: aiosqlite.Connection, assignment_id: UUID, token: int) -> bool:
    """Raise the stored fencing token (never lowers it). Returns whether it changed."""
    return bool(
        await execute(
            conn,
            """UPDATE hive_assignments SET fencing_token = ?, updated_at = ?
               WHERE assignment_id = ? AND fencing_token < ?""",
            (int(token), now_db(), uuid_to_db(assignment_id), int(token)),
        )
    )


async def set_local_ids(
    conn: aiosqlite.Connection,
    assignment_id: UUID,
    *,
    local_task_id: UUID | None = None,
    local_attempt_id: UUID | None = None,
) -> None:
    """Record the local task and/or attempt created for the assignment (``None`` = keep)."""
    await execute(
        conn,
        """UPDATE hive_assignments SET local_task_id = COALESCE(?, local_task_id),
               local_attempt_id = COALESCE(?, local_attempt_id), updated_at = ?
           WHERE assignment_id = ?""",
        (
            uuid_or_none(local_task_id),
            uuid_or_none(local_attempt_id),
            now_db(),
            uuid_to_db(assignment_id),
        ),
    )


async def set_status(
    conn: aiosqlite.Connection,
    assignment_id: UUID,
    status: ExecutionStatus,
    *,
    terminal_seq: int | None = None,
) -> None:
    """Record the execution status the node reported (and the seq of a terminal report)."""
    await execute(
        conn,
        """UPDATE hive_assignments SET status = ?, terminal_seq = COALESCE(?, terminal_seq),
               updated_at = ?
           WHERE assignment_id = ?""",
        (ExecutionStatus(status).value, terminal_seq, now_db(), uuid_to_db(assignment_id)),
    )


async def retire_acked(conn: aiosqlite.Connection, acked_through: int) -> list[UUID]:
    """Retire live assignments whose terminal op has ``seq <= acked_through``; their ids."""
    rows = await fetch_models(
        conn,
        HiveAssignment,
        """SELECT * FROM hive_assignments WHERE retired_at IS NULL AND terminal_seq IS NOT NULL
             AND terminal_seq <= ?""",
        (int(acked_through),),
    )
    now = now_db()
    for row in rows:
        await execute(
            conn,
            "UPDATE hive_assignments SET retired_at = ?, updated_at = ? WHERE assignment_id = ?",
            (now, now, uuid_to_db(row.assignment_id)),
        )
    return [row.assignment_id for row in rows]
