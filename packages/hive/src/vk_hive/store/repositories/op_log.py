"""Per-node op dedup log and applied-through cursor (DESIGN.md §3, protocol.md §4)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from vk_hive.store.models import OpLogEntry, from_row


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
        INSERT INTO node_op_log (node_id, idempotency_key, seq, op_type, entity_id, epoch)
        VALUES ($1, $2, $3, $4, $5, COALESCE(
            (SELECT epoch FROM node_op_cursors WHERE node_id = $1), 0))
        ON CONFLICT (node_id, idempotency_key) DO NOTHING
        """,
        node_id,
        idempotency_key,
        seq,
        op_type,
        entity_id,
    )
    return result == "INSERT 0 1"


@dataclass(frozen=True)
class OpRecord:
    """One op's entry in ``node_op_log``: ``reject_code`` None = applied, else why it was
    skipped; ``fencing_token`` is the token the op carried."""

    idempotency_key: str
    seq: int
    op_type: str
    entity_id: uuid.UUID
    reject_code: str | None = None
    reject_reason: str | None = None
    fencing_token: int | None = None


async def record_many(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    entries: Sequence[OpRecord | tuple[str, int, str, uuid.UUID]],
) -> int:
    """Record many ops (with their outcome) in one statement; returns how many were new."""
    if not entries:
        return 0
    records = [e if isinstance(e, OpRecord) else OpRecord(*e) for e in entries]
    result: str = await conn.execute(
        """
        INSERT INTO node_op_log (node_id, idempotency_key, seq, op_type, entity_id, reject_code,
                                 reject_reason, fencing_token, epoch)
        SELECT $1, u.k, u.s, u.t, u.e, u.c, u.r, u.f,
               COALESCE((SELECT epoch FROM node_op_cursors WHERE node_id = $1), 0)
        FROM unnest($2::text[], $3::bigint[], $4::text[], $5::uuid[], $6::text[], $7::text[],
                    $8::bigint[]) AS u(k, s, t, e, c, r, f)
        ON CONFLICT (node_id, idempotency_key) DO NOTHING
        """,
        node_id,
        [r.idempotency_key for r in records],
        [r.seq for r in records],
        [r.op_type for r in records],
        [r.entity_id for r in records],
        [r.reject_code for r in records],
        [r.reject_reason for r in records],
        [r.fencing_token for r in records],
    )
    return int(result.split()[-1])


async def recorded_rejections(
    conn: asyncpg.Connection, node_id: uuid.UUID, keys: Sequence[str]
) -> dict[str, tuple[int, str, str]]:
    """Of ``keys``, those recorded as skipped: key → (seq, code, reason)."""
    rows = await conn.fetch(
        "SELECT idempotency_key, seq, reject_code, reject_reason FROM node_op_log "
        "WHERE node_id = $1 AND idempotency_key = ANY($2::text[]) AND reject_code IS NOT NULL",
        node_id,
        list(keys),
    )
    return {
        r["idempotency_key"]: (int(r["seq"]), r["reject_code"], r["reject_reason"] or "")
        for r in rows
    }


async def has_entity(conn: asyncpg.Connection, node_id: uuid.UUID, entity_id: uuid.UUID) -> bool:
    """Whether any op of the node about ``entity_id`` was already applied or skipped."""
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM node_op_log WHERE node_id = $1 AND entity_id = $2 LIMIT 1",
            node_id,
            entity_id,
        )
    )


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


async def start_epoch(conn: asyncpg.Connection, node_id: uuid.UUID, applied_through: int) -> int:
    """Start a new op-sequence epoch for the node (a new node instance uses its key): the cursor
    is set to ``applied_through`` — what the instance says it already had acknowledged, which
    only concerns its own outbox — even backwards. Returns the new epoch."""
    value = await conn.fetchval(
        """
        INSERT INTO node_op_cursors AS c (node_id, applied_through_seq) VALUES ($1, $2)
        ON CONFLICT (node_id) DO UPDATE
            SET applied_through_seq = EXCLUDED.applied_through_seq, epoch = c.epoch + 1,
                updated_at = now()
        RETURNING epoch
        """,
        node_id,
        max(0, applied_through),
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
