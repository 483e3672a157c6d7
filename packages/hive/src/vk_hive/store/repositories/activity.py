"""The per-project activity feed: appended in the caller's transaction, NOTIFYed on insert."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import msgspec

from vk_hive.store.models import ActivityEvent, from_row, from_rows

_RETURNING = """seq, event_id, project_id, assignee_user_id, event_type, payload, created_at,
    swarm_project_id"""

# One statement: bump (or start) the project's counter and insert the row with that seq. The
# counter row stays locked until the caller commits, so seqs are gapless and in commit order.
_APPEND = f"""
    WITH counter AS (
        INSERT INTO project_activity_counters AS c (project_id, swarm_project_id, last_seq)
        VALUES ($1, $2, 1)
        ON CONFLICT (project_id) DO UPDATE SET last_seq = c.last_seq + 1
        RETURNING last_seq
    )
    INSERT INTO activity (seq, project_id, swarm_project_id, assignee_user_id, event_type, payload)
    SELECT counter.last_seq, $1, $2, $3, $4, $5 FROM counter
    RETURNING {_RETURNING}
"""


async def lock_projects(conn: asyncpg.Connection, project_ids: list[uuid.UUID]) -> None:
    """Lock the activity counters of ``project_ids`` (creating missing ones) in id order.

    Lock order of the hive: a transaction that writes tasks or assignments of a project takes
    that project's counter FIRST, before any task or assignment row (every such write appends
    activity, which needs the counter anyway). Taking it first, in a fixed order, is what keeps a
    REST write and a node's op batch from deadlocking on (task row, counter) in opposite order.
    """
    if not project_ids:
        return
    ids = sorted(set(project_ids))
    await conn.execute(
        """
        INSERT INTO project_activity_counters (project_id, swarm_project_id, last_seq)
        SELECT w.id, sp.id, 0 FROM unnest($1::uuid[]) AS w(id)
        LEFT JOIN swarm_projects sp ON sp.id = w.id
        ON CONFLICT (project_id) DO NOTHING
        """,
        ids,
    )
    await conn.fetch(
        "SELECT project_id FROM project_activity_counters WHERE project_id = ANY($1::uuid[]) "
        "ORDER BY project_id FOR UPDATE",
        ids,
    )


# Default and maximum page sizes (protocol.md §13).
DEFAULT_LIMIT = 200
MAX_LIMIT = 500


async def append(
    conn: asyncpg.Connection,
    project_id: uuid.UUID,
    event_type: str,
    payload: dict[str, Any],
    *,
    swarm_project_id: uuid.UUID | None = None,
    assignee_user_id: uuid.UUID | None = None,
) -> ActivityEvent:
    """Append one event to ``project_id``'s stream inside the caller's transaction.

    When today's partition is missing (a hive that ran past the provisioning job), the partitions
    are ensured and the insert retried once; a savepoint keeps the caller's transaction usable.
    ``swarm_project_id`` must name an existing swarm project when given.
    """
    args = (project_id, swarm_project_id, assignee_user_id, event_type, payload)
    try:
        async with conn.transaction():  # a savepoint when the caller already has a transaction
            row = await conn.fetchrow(_APPEND, *args)
    except asyncpg.CheckViolationError as exc:
        if "no partition" not in str(exc):
            raise
        await conn.execute("SELECT ensure_activity_partitions(now())")
        row = await conn.fetchrow(_APPEND, *args)
    return from_row(ActivityEvent, row)


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event for :func:`append_batch`."""

    project_id: uuid.UUID
    event_type: str
    payload: dict[str, Any]
    swarm_project_id: uuid.UUID | None = None
    assignee_user_id: uuid.UUID | None = None


# One statement for events of several projects: each project's counter moves by its number of
# events, and its events take the seqs after the old value in list order.
_APPEND_BATCH = """
    WITH u AS (
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[])
            WITH ORDINALITY AS u(project_id, swarm_project_id, assignee_user_id, event_type,
                                 payload, n)
    ), counts AS (
        SELECT project_id, (array_agg(swarm_project_id ORDER BY n))[1] AS swarm_project_id,
               count(*) AS c
        FROM u GROUP BY project_id
    ), counter AS (
        INSERT INTO project_activity_counters AS pc (project_id, swarm_project_id, last_seq)
        SELECT project_id, swarm_project_id, c FROM counts ORDER BY project_id
        ON CONFLICT (project_id) DO UPDATE SET last_seq = pc.last_seq + EXCLUDED.last_seq
        RETURNING project_id, last_seq
    )
    INSERT INTO activity (seq, project_id, swarm_project_id, assignee_user_id, event_type,
                          payload)
    SELECT counter.last_seq - counts.c
               + row_number() OVER (PARTITION BY u.project_id ORDER BY u.n),
           u.project_id, u.swarm_project_id, u.assignee_user_id, u.event_type, u.payload
    FROM u JOIN counts USING (project_id) JOIN counter USING (project_id)
    ORDER BY u.n
"""


async def append_batch(conn: asyncpg.Connection, events: list[NewEvent]) -> int:
    """Append events of any projects and types in one statement, each project's with
    consecutive seqs in list order. Unlike :func:`append`, no savepoint and no retry: a missing
    partition raises (the caller's savepoint decides; the one-at-a-time path ensures it).
    Returns how many."""
    if not events:
        return 0
    await conn.execute(
        _APPEND_BATCH,
        [e.project_id for e in events],
        [e.swarm_project_id for e in events],
        [e.assignee_user_id for e in events],
        [e.event_type for e in events],
        [e.payload for e in events],
    )
    return len(events)


async def fetch_since(
    conn: asyncpg.Connection, project_id: uuid.UUID, after_seq: int, limit: int = DEFAULT_LIMIT
) -> list[ActivityEvent]:
    """Events of the project with seq > ``after_seq``, oldest first, at most ``limit`` (≤ 500)."""
    rows = await conn.fetch(
        f"""
        SELECT {_RETURNING} FROM activity WHERE project_id = $1 AND seq > $2
        ORDER BY seq LIMIT $3
        """,
        project_id,
        after_seq,
        max(1, min(limit, MAX_LIMIT)),
    )
    return from_rows(ActivityEvent, rows)


async def fetch_since_by_swarm_project(
    conn: asyncpg.Connection,
    swarm_project_id: uuid.UUID,
    after_seq: int,
    limit: int = DEFAULT_LIMIT,
) -> list[ActivityEvent]:
    rows = await conn.fetch(
        f"""
        SELECT {_RETURNING} FROM activity WHERE swarm_project_id = $1 AND seq > $2
        ORDER BY seq LIMIT $3
        """,
        swarm_project_id,
        after_seq,
        max(1, min(limit, MAX_LIMIT)),
    )
    return from_rows(ActivityEvent, rows)


async def fetch_for_task(
    conn: asyncpg.Connection, project_id: uuid.UUID, task_id: uuid.UUID, limit: int = DEFAULT_LIMIT
) -> list[ActivityEvent]:
    """The newest retained events of one task of ``project_id`` (at most ``limit``, ≤ 500),
    oldest first."""
    rows = await conn.fetch(
        f"""
        SELECT * FROM (
            SELECT {_RETURNING} FROM activity
            WHERE project_id = $1 AND payload -> 'task' ->> 'id' = $2
            ORDER BY seq DESC LIMIT $3
        ) newest ORDER BY seq
        """,
        project_id,
        str(task_id),
        max(1, min(limit, MAX_LIMIT)),
    )
    return from_rows(ActivityEvent, rows)


async def fetch_by_seq(
    conn: asyncpg.Connection, project_id: uuid.UUID, seq: int
) -> ActivityEvent | None:
    row = await conn.fetchrow(
        f"SELECT {_RETURNING} FROM activity WHERE project_id = $1 AND seq = $2", project_id, seq
    )
    return None if row is None else from_row(ActivityEvent, row)


async def last_seq(conn: asyncpg.Connection, project_id: uuid.UUID) -> int:
    """The project's latest seq (0 when it has none)."""
    value = await conn.fetchval(
        "SELECT last_seq FROM project_activity_counters WHERE project_id = $1", project_id
    )
    return int(value or 0)


async def last_seqs_of_organization(
    conn: asyncpg.Connection, organization_id: uuid.UUID
) -> list[tuple[uuid.UUID, int]]:
    """Every swarm project of the organization with its latest seq (0 when it has none), oldest
    project first."""
    rows = await conn.fetch(
        """
        SELECT sp.id, COALESCE(c.last_seq, 0) AS last_seq
        FROM swarm_projects sp LEFT JOIN project_activity_counters c ON c.project_id = sp.id
        WHERE sp.organization_id = $1 ORDER BY sp.created_at, sp.id
        """,
        organization_id,
    )
    return [(row["id"], int(row["last_seq"])) for row in rows]


async def min_retained_seq(conn: asyncpg.Connection, project_id: uuid.UUID) -> int:
    """The oldest seq still stored for the project.

    When retention dropped every event this is ``last_seq + 1``; a fresh project gives 1. A reader
    whose cursor is below ``min_retained_seq - 1`` has missed events and must resync.
    """
    row = await conn.fetchrow(
        """
        SELECT (SELECT min(seq) FROM activity WHERE project_id = $1) AS min_seq,
               (SELECT last_seq FROM project_activity_counters WHERE project_id = $1) AS last_seq
        """,
        project_id,
    )
    if row["min_seq"] is not None:
        return int(row["min_seq"])
    return int(row["last_seq"] or 0) + 1


async def ensure_partitions(conn: asyncpg.Connection) -> list[str]:
    """Ensure the partitions of today, tomorrow and the day after (UTC); returns their names."""
    rows = await conn.fetch("SELECT ensure_activity_partitions(now()) AS name")
    return [r["name"] for r in rows]


async def count_partitions(conn: asyncpg.Connection) -> int:
    """How many daily partitions the activity table has now."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'activity'::regclass"
        )
    )


RETENTION_LOCK_KEY = 0x766B72657465_6E74  # "vkretent"
"""``pg_try_advisory_xact_lock`` key of retention: one hive drops partitions at a time."""


async def drop_partitions_before(
    conn: asyncpg.Connection, retention: dt.timedelta
) -> list[str] | None:
    """Drop the daily partitions whose upper bound is older than ``retention``; returns their
    names, or ``None`` when another hive holds the retention lock. Call it inside a transaction
    (the lock lasts until it ends)."""
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RETENTION_LOCK_KEY):
        return None
    rows = await conn.fetch(
        "SELECT drop_activity_partitions_before(now() - $1::interval) AS name", retention
    )
    return [r["name"] for r in rows]
