"""Task assignments to nodes, with leases and fencing tokens (protocol.md §7, DESIGN.md §5).

The lease clock is the database's ``now()``; ``ttl`` and ``grace`` come from the caller's
settings. Fencing tokens come only from ``nextval('node_fencing_token_seq')``, so every claim and
every reclaim yields a strictly larger token than any token handed out before.
"""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from vk_hive.errors import AlreadyAssigned, NotFound
from vk_hive.store.models import (
    ActiveRun,
    Assignment,
    DispatchDetails,
    ReclaimedLease,
    from_row,
    from_rows,
)

_COLUMNS = """id, task_id, node_id, node_project_id, local_task_id, local_attempt_id,
    execution_status, assigned_at, started_at, completed_at, created_at, lease_expires_at,
    fencing_token"""

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "success"})


def _one(row: asyncpg.Record | None) -> Assignment | None:
    return None if row is None else from_row(Assignment, row)


async def create(
    conn: asyncpg.Connection, task_id: uuid.UUID, node_id: uuid.UUID, link_id: uuid.UUID
) -> Assignment:
    """A pending assignment without a lease; AlreadyAssigned when the task has an active one."""
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                INSERT INTO node_task_assignments (task_id, node_id, node_project_id)
                VALUES ($1, $2, $3) RETURNING {_COLUMNS}
                """,
                task_id,
                node_id,
                link_id,
            )
    except asyncpg.UniqueViolationError:
        raise AlreadyAssigned(f"task {task_id} already has an active assignment") from None
    return from_row(Assignment, row)


async def try_claim(
    conn: asyncpg.Connection,
    task_id: uuid.UUID,
    node_id: uuid.UUID,
    link_id: uuid.UUID,
    ttl: dt.timedelta,
    *,
    grace: dt.timedelta,
) -> Assignment | None:
    """Give ``node`` a lease on the task with a fresh fencing token; None if a lease is held.

    An active row whose lease is NULL (freed) or expired more than ``grace`` ago is taken over
    (new node, link, token, local ids reset, status pending) — the grace lets a partitioned
    holder fence itself first; without an active row a new one is inserted.
    """
    row = await conn.fetchrow(
        f"""
        UPDATE node_task_assignments SET node_id = $2, node_project_id = $3,
            lease_expires_at = now() + $4::interval,
            fencing_token = nextval('node_fencing_token_seq'),
            local_task_id = NULL, local_attempt_id = NULL, execution_status = 'pending',
            started_at = NULL, assigned_at = now()
        WHERE task_id = $1 AND completed_at IS NULL
          AND (lease_expires_at IS NULL OR lease_expires_at + $5::interval < now())
        RETURNING {_COLUMNS}
        """,
        task_id,
        node_id,
        link_id,
        ttl,
        grace,
    )
    if row is not None:
        return from_row(Assignment, row)
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                INSERT INTO node_task_assignments
                    (task_id, node_id, node_project_id, lease_expires_at, fencing_token)
                VALUES ($1, $2, $3, now() + $4::interval, nextval('node_fencing_token_seq'))
                RETURNING {_COLUMNS}
                """,
                task_id,
                node_id,
                link_id,
                ttl,
            )
    except asyncpg.UniqueViolationError:
        return None
    return from_row(Assignment, row)


async def renew_lease(
    conn: asyncpg.Connection, assignment_id: uuid.UUID, node_id: uuid.UUID, ttl: dt.timedelta
) -> Assignment | None:
    """Extend a live lease held by ``node`` (token unchanged); None when it is not renewable."""
    row = await conn.fetchrow(
        f"""
        UPDATE node_task_assignments SET lease_expires_at = now() + $3::interval
        WHERE id = $1 AND node_id = $2 AND completed_at IS NULL
          AND lease_expires_at IS NOT NULL AND lease_expires_at > now()
        RETURNING {_COLUMNS}
        """,
        assignment_id,
        node_id,
        ttl,
    )
    return _one(row)


async def renew_leases(
    conn: asyncpg.Connection,
    assignment_ids: list[uuid.UUID],
    node_id: uuid.UUID,
    ttl: dt.timedelta,
) -> list[Assignment]:
    """``renew_lease`` for many ids in one statement; returns the renewed rows."""
    rows = await conn.fetch(
        f"""
        UPDATE node_task_assignments SET lease_expires_at = now() + $3::interval
        WHERE id = ANY($1::uuid[]) AND node_id = $2 AND completed_at IS NULL
          AND lease_expires_at IS NOT NULL AND lease_expires_at > now()
        RETURNING {_COLUMNS}
        """,
        assignment_ids,
        node_id,
        ttl,
    )
    return from_rows(Assignment, rows)


async def complete_active_for_task(
    conn: asyncpg.Connection, task_id: uuid.UUID, execution_status: str
) -> Assignment | None:
    """Close the task's active assignment, if it has one (operator cancel, done, delete)."""
    row = await conn.fetchrow(
        f"""
        UPDATE node_task_assignments SET execution_status = $2, completed_at = now(),
            lease_expires_at = NULL
        WHERE task_id = $1 AND completed_at IS NULL RETURNING {_COLUMNS}
        """,
        task_id,
        execution_status,
    )
    return _one(row)


async def find_dispatch_details(
    conn: asyncpg.Connection, assignment_id: uuid.UUID
) -> DispatchDetails | None:
    """What ``task_assign`` carries for an active, leased assignment; the remaining lease time
    is computed by the database clock."""
    row = await conn.fetchrow(
        """
        SELECT a.id AS assignment_id, a.task_id, a.node_id, a.node_project_id AS link_id,
            a.fencing_token, t.swarm_project_id AS project_id, l.local_project_id,
            t.title, t.description, t.executor,
            COALESCE(lp.default_branch, 'main') AS base_branch,
            GREATEST(1, floor(extract(epoch FROM a.lease_expires_at - now()) * 1000))::bigint
                AS lease_ttl_ms,
            n.session_id AS node_session_id
        FROM node_task_assignments a
        JOIN nodes n ON n.id = a.node_id
        JOIN shared_tasks t ON t.id = a.task_id
        JOIN swarm_project_nodes l ON l.id = a.node_project_id
        LEFT JOIN node_local_projects lp
            ON lp.node_id = l.node_id AND lp.local_project_id = l.local_project_id
        WHERE a.id = $1 AND a.completed_at IS NULL AND a.lease_expires_at > now()
        """,
        assignment_id,
    )
    return None if row is None else from_row(DispatchDetails, row)


async def find_undelivered(conn: asyncpg.Connection, node_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Active assignments of these nodes under a live lease that no node op has acknowledged
    yet (no local attempt, execution still pending): their ``task_assign`` may not have
    arrived, and is pushed again when the node connects (a node ignores a repeat)."""
    rows = await conn.fetch(
        """
        SELECT id FROM node_task_assignments
        WHERE node_id = ANY($1::uuid[]) AND completed_at IS NULL AND lease_expires_at > now()
          AND local_attempt_id IS NULL AND execution_status = 'pending'
        ORDER BY assigned_at, id
        """,
        node_ids,
    )
    return [r["id"] for r in rows]


async def reclaim_expired_leases(
    conn: asyncpg.Connection, *, grace: dt.timedelta
) -> list[ReclaimedLease]:
    """Free every active lease that expired more than ``grace`` ago: new token, lease NULL."""
    rows = await conn.fetch(
        """
        UPDATE node_task_assignments SET fencing_token = nextval('node_fencing_token_seq'),
            lease_expires_at = NULL
        WHERE completed_at IS NULL AND lease_expires_at IS NOT NULL
          AND lease_expires_at + $1::interval < now()
        RETURNING id AS assignment_id, task_id, node_id, fencing_token
        """,
        grace,
    )
    return from_rows(ReclaimedLease, rows)


async def count_active_leases(conn: asyncpg.Connection) -> int:
    """Assignments whose lease is held and not yet expired (database clock); the predicate is
    the one of the partial index ``idx_task_assignments_lease``, so this reads only the index."""
    value = await conn.fetchval(
        """
        SELECT count(*) FROM node_task_assignments
        WHERE completed_at IS NULL AND lease_expires_at IS NOT NULL AND lease_expires_at > now()
        """
    )
    return int(value or 0)


async def find_active_lease_for_node(
    conn: asyncpg.Connection, assignment_id: uuid.UUID, node_id: uuid.UUID
) -> Assignment | None:
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS} FROM node_task_assignments
        WHERE id = $1 AND node_id = $2 AND completed_at IS NULL AND lease_expires_at > now()
        """,
        assignment_id,
        node_id,
    )
    return _one(row)


_FOR_SHARE = " FOR SHARE"
"""Fence reads lock the row they check: a concurrent reclaim, completion or re-claim of that
assignment waits until the checking transaction ends, and a check that comes second sees the
committed change (READ COMMITTED re-evaluates a locked row), so a write fenced by a token can
never commit after the token was revoked."""


async def find_by_id(
    conn: asyncpg.Connection, assignment_id: uuid.UUID, *, lock: bool = False
) -> Assignment | None:
    """``lock``: hold a share lock on the row until the transaction ends (fence checks)."""
    sql = f"SELECT {_COLUMNS} FROM node_task_assignments WHERE id = $1"
    return _one(await conn.fetchrow(sql + (_FOR_SHARE if lock else ""), assignment_id))


async def find_active_for_task(
    conn: asyncpg.Connection, task_id: uuid.UUID, *, lock: bool = False
) -> Assignment | None:
    """The task's active assignment; ``lock`` as in :func:`find_by_id`."""
    sql = (
        f"SELECT {_COLUMNS} FROM node_task_assignments WHERE task_id = $1 AND completed_at IS NULL"
    )
    return _one(await conn.fetchrow(sql + (_FOR_SHARE if lock else ""), task_id))


async def find_latest_by_task_id(
    conn: asyncpg.Connection, task_id: uuid.UUID, node_id: uuid.UUID | None = None
) -> Assignment | None:
    """The most recently assigned row of the task (optionally: of one node)."""
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS} FROM node_task_assignments
        WHERE task_id = $1 AND ($2::uuid IS NULL OR node_id = $2)
        ORDER BY assigned_at DESC, created_at DESC LIMIT 1
        """,
        task_id,
        node_id,
    )
    return _one(row)


async def list_by_task(conn: asyncpg.Connection, task_id: uuid.UUID) -> list[Assignment]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM node_task_assignments WHERE task_id = $1 "
        "ORDER BY assigned_at DESC, id",
        task_id,
    )
    return from_rows(Assignment, rows)


async def list_by_node(conn: asyncpg.Connection, node_id: uuid.UUID) -> list[Assignment]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM node_task_assignments WHERE node_id = $1 "
        "ORDER BY assigned_at DESC, id",
        node_id,
    )
    return from_rows(Assignment, rows)


async def list_active_by_node(conn: asyncpg.Connection, node_id: uuid.UUID) -> list[Assignment]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM node_task_assignments "
        "WHERE node_id = $1 AND completed_at IS NULL ORDER BY assigned_at, id",
        node_id,
    )
    return from_rows(Assignment, rows)


async def list_active_by_organization(
    conn: asyncpg.Connection, organization_id: uuid.UUID
) -> list[ActiveRun]:
    """Every active assignment of the organization's tasks with the task's title, oldest first
    (what each node runs now)."""
    rows = await conn.fetch(
        f"""
        SELECT {", ".join("a." + c.strip() for c in _COLUMNS.split(","))},
               t.title AS task_title, t.swarm_project_id
        FROM node_task_assignments a JOIN shared_tasks t ON t.id = a.task_id
        WHERE t.organization_id = $1 AND a.completed_at IS NULL AND t.deleted_at IS NULL
        ORDER BY a.assigned_at, a.id
        """,
        organization_id,
    )
    return [
        ActiveRun(
            assignment=from_row(Assignment, r),
            task_title=r["task_title"],
            swarm_project_id=r["swarm_project_id"],
        )
        for r in rows
    ]


async def update(
    conn: asyncpg.Connection,
    assignment_id: uuid.UUID,
    *,
    local_task_id: uuid.UUID | None = None,
    local_attempt_id: uuid.UUID | None = None,
    execution_status: str | None = None,
) -> Assignment:
    """Set the given fields; ``started_at`` is set the first time the status becomes running."""
    row = await conn.fetchrow(
        f"""
        UPDATE node_task_assignments SET local_task_id = COALESCE($2, local_task_id),
            local_attempt_id = COALESCE($3, local_attempt_id),
            execution_status = COALESCE($4, execution_status),
            started_at = CASE WHEN $4 = 'running' AND started_at IS NULL THEN now()
                              ELSE started_at END
        WHERE id = $1 RETURNING {_COLUMNS}
        """,
        assignment_id,
        local_task_id,
        local_attempt_id,
        execution_status,
    )
    if row is None:
        raise NotFound(f"assignment {assignment_id} not found")
    return from_row(Assignment, row)


async def complete(
    conn: asyncpg.Connection, assignment_id: uuid.UUID, execution_status: str
) -> Assignment:
    """Close the assignment (frees the task's active slot); the lease ends with it."""
    row = await conn.fetchrow(
        f"""
        UPDATE node_task_assignments SET execution_status = $2,
            completed_at = COALESCE(completed_at, now()), lease_expires_at = NULL
        WHERE id = $1 RETURNING {_COLUMNS}
        """,
        assignment_id,
        execution_status,
    )
    if row is None:
        raise NotFound(f"assignment {assignment_id} not found")
    return from_row(Assignment, row)


async def fail_node_assignments(conn: asyncpg.Connection, node_id: uuid.UUID) -> list[uuid.UUID]:
    """Close every active assignment of the node as failed; returns their task ids."""
    rows = await conn.fetch(
        """
        UPDATE node_task_assignments SET execution_status = 'failed', completed_at = now(),
            lease_expires_at = NULL
        WHERE node_id = $1 AND completed_at IS NULL RETURNING task_id
        """,
        node_id,
    )
    return [r["task_id"] for r in rows]
