"""Background-job bodies as plain async functions; a scheduler elsewhere decides when they run.

Each takes an asyncpg connection (not inside a caller's transaction unless stated) and returns
what it changed, so the caller can log it and push updates to nodes.
"""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import msgspec

from vk_hive.store.repositories import activity, assignments, node_local_projects, nodes

RETENTION_LOCK_NAME = "vibe_kanban_activity_retention_v1"
DEFAULT_ACTIVITY_RETENTION = dt.timedelta(days=2)


class StaleNodes(msgspec.Struct, kw_only=True):
    node_ids: list[uuid.UUID]
    failed_task_ids: list[uuid.UUID]


async def ensure_activity_partitions(conn: asyncpg.Connection) -> list[str]:
    """Partitions for today, tomorrow and the day after (UTC); safe to run concurrently."""
    return await activity.ensure_partitions(conn)


async def prune_activity_partitions(
    conn: asyncpg.Connection, retention: dt.timedelta = DEFAULT_ACTIVITY_RETENTION
) -> list[str] | None:
    """Drop daily partitions whose upper bound is older than ``retention``.

    Runs under a try advisory lock, so among several hives one prunes and the others skip:
    returns the dropped partition names, or None when another hive holds the lock.
    """
    async with conn.transaction():
        locked = await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", RETENTION_LOCK_NAME
        )
        if not locked:
            return None
        rows = await conn.fetch(
            "SELECT drop_activity_partitions_before(now() - $1::interval) AS name", retention
        )
    return [r["name"] for r in rows]


async def delete_stale_inventory(
    conn: asyncpg.Connection, threshold: dt.timedelta = dt.timedelta(hours=24)
) -> int:
    """Forget local projects that online nodes stopped reporting ``threshold`` ago."""
    return await node_local_projects.delete_stale(conn, threshold)


async def mark_stale_nodes_offline(conn: asyncpg.Connection, threshold: dt.timedelta) -> StaleNodes:
    """Silent online/busy nodes go offline and their active assignments fail (one transaction)."""
    async with conn.transaction():
        node_ids = await nodes.mark_stale_offline(conn, threshold)
        task_ids: list[uuid.UUID] = []
        for node_id in node_ids:
            task_ids.extend(await assignments.fail_node_assignments(conn, node_id))
    return StaleNodes(node_ids=node_ids, failed_task_ids=task_ids)


async def expire_invitations(conn: asyncpg.Connection) -> int:
    """Pending invitations past their expiry become ``expired``; returns how many."""
    result: str = await conn.execute(
        "UPDATE organization_invitations SET status = 'expired' "
        "WHERE status = 'pending' AND expires_at < now()"
    )
    return int(result.split()[-1])


async def expire_oauth_handoffs(conn: asyncpg.Connection) -> int:
    """Unredeemed OAuth handoffs past their expiry become ``expired`` (provider tokens wiped)."""
    result: str = await conn.execute(
        "UPDATE oauth_handoffs SET status = 'expired', encrypted_provider_tokens = NULL "
        "WHERE status IN ('pending', 'authorized') AND expires_at < now()"
    )
    return int(result.split()[-1])
