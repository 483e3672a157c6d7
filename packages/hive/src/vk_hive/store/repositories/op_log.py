"""Per-node op dedup log and applied-through cursor (DESIGN.md §3, protocol.md §4)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from vk_hive.store.models import OpLogEntry, from_row


async def is_recorded(conn: asyncpg.Connection, node_id: uuid.UUID, idempotency_key: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM node_op_log WHERE node_id = $1 AND idempotency_key = $2",
            node_id,
            idempotency_key,
        )
    )


async def recorded_keys(
    conn: asyncpg.Connection, node_id: uuid.UUID, keys: Sequence[str]
) -> set[str]:
    """Which of ``keys`` this node already had applied (one query per batch)."""
    rows = await conn.fetch(
        "SELECT idempotency_key FROM node_op_log WHERE node_id = $1 "
        "AND idempotency_key = ANY($2::text[])",
        node_id,
        list(keys),
    )
    return {r["idempotency_key"] for r in rows}


async def record(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    idempotency_key: str,
    seq: int,
    op_type: str,
    entity_id: uuid.UUID,
) -> bool:
    """Record an applied (or skipped) op; False when the key was already recorded."""
    result: str = await conn.execute(
        """
        INSERT INTO node_op_log (node_id, idempotency_key, seq, op_type, entity_id)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node_id, idempotency_key) DO NOTHING
        """,
        node_id,
        idempotency_key,
        seq,
        op_type,
        entity_id,
    )
    return result == "INSERT 0 1"


async def find(
    conn: asyncpg.Connection, node_id: uuid.UUID, idempotency_key: str
) -> OpLogEntry | None:
    row = await conn.fetchrow(
        "SELECT node_id, idempotency_key, seq, op_type, entity_id, applied_at FROM node_op_log "
        "WHERE node_id = $1 AND idempotency_key = $2",
        node_id,
        idempotency_key,
    )
    return None if row is None else from_row(OpLogEntry, row)


async def get_applied_through(conn: asyncpg.Connection, node_id: uuid.UUID) -> int:
    """The node's applied-through outbox seq (0 before anything was applied)."""
    value = await conn.fetchval(
        "SELECT applied_through_seq FROM node_op_cursors WHERE node_id = $1", node_id
    )
    return int(value or 0)


async def advance_applied_through(conn: asyncpg.Connection, node_id: uuid.UUID, seq: int) -> int:
    """Move the cursor forward to ``seq`` (never backwards); returns the cursor after the call."""
    value = await conn.fetchval(
        """
        INSERT INTO node_op_cursors AS c (node_id, applied_through_seq) VALUES ($1, $2)
        ON CONFLICT (node_id) DO UPDATE
            SET applied_through_seq = GREATEST(c.applied_through_seq, EXCLUDED.applied_through_seq),
                updated_at = now()
        RETURNING applied_through_seq
        """,
        node_id,
        seq,
    )
    return int(value)


async def lock_node(conn: asyncpg.Connection, node_id: uuid.UUID) -> int:
    """Lock the node's cursor row for this transaction (one batch applier per node) and read it."""
    await conn.execute(
        "INSERT INTO node_op_cursors (node_id) VALUES ($1) ON CONFLICT (node_id) DO NOTHING",
        node_id,
    )
    value = await conn.fetchval(
        "SELECT applied_through_seq FROM node_op_cursors WHERE node_id = $1 FOR UPDATE", node_id
    )
    return int(value)
