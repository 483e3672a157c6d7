"""Per-node op dedup log and applied-through cursor (DESIGN.md §3, protocol.md §4)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from vk_hive.store.models import OpLogEntry, from_row


@dataclass(frozen=True)
class Recorded:
    """What the op log holds of a batch's keys (one query)."""

    keys: set[str]
    """Every key of the batch already recorded (applied or skipped)."""
    rejections: dict[str, tuple[int, str, str]]
    """Of those, the skipped ones: key → (seq, code, reason)."""


async def recorded(conn: asyncpg.Connection, node_id: uuid.UUID, keys: Sequence[str]) -> Recorded:
    """Which of ``keys`` this node already had applied or skipped, and why it skipped which."""
    rows = await conn.fetch(
        "SELECT idempotency_key, seq, reject_code, reject_reason FROM node_op_log "
        "WHERE node_id = $1 AND idempotency_key = ANY($2::text[])",
        node_id,
        list(keys),
    )
    return Recorded(
        keys={r["idempotency_key"] for r in rows},
        rejections={
            r["idempotency_key"]: (int(r["seq"]), r["reject_code"], r["reject_reason"] or "")
            for r in rows
            if r["reject_code"] is not None
        },
    )


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


async def record_and_advance(
    conn: asyncpg.Connection, node_id: uuid.UUID, records: Sequence[OpRecord], through: int
) -> int:
    """Record the batch's ops with their outcome (each key once) and move the cursor forward
    to ``through`` (never backwards), in one statement; returns the cursor after it."""
    value = await conn.fetchval(
        """
        WITH logged AS (
            INSERT INTO node_op_log (node_id, idempotency_key, seq, op_type, entity_id,
                                     reject_code, reject_reason, fencing_token, epoch)
            SELECT $1, u.k, u.s, u.t, u.e, u.c, u.r, u.f,
                   COALESCE((SELECT epoch FROM node_op_cursors WHERE node_id = $1), 0)
            FROM unnest($2::text[], $3::bigint[], $4::text[], $5::uuid[], $6::text[],
                        $7::text[], $8::bigint[]) AS u(k, s, t, e, c, r, f)
            ON CONFLICT (node_id, idempotency_key) DO NOTHING
            RETURNING 1
        )
        INSERT INTO node_op_cursors AS c (node_id, applied_through_seq)
        SELECT $1, $9 FROM (SELECT count(*) FROM logged) AS done
        ON CONFLICT (node_id) DO UPDATE
            SET applied_through_seq = GREATEST(c.applied_through_seq, EXCLUDED.applied_through_seq),
                updated_at = now()
        RETURNING applied_through_seq
        """,
        node_id,
        [r.idempotency_key for r in records],
        [r.seq for r in records],
        [r.op_type for r in records],
        [r.entity_id for r in records],
        [r.reject_code for r in records],
        [r.reject_reason for r in records],
        [r.fencing_token for r in records],
        through,
    )
    return int(value)


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
    """Lock the node's cursor row for this transaction (one batch applier per node) and read it,
    creating it at 0 if missing — one statement (``ON CONFLICT DO UPDATE`` locks the row)."""
    value = await conn.fetchval(
        """
        INSERT INTO node_op_cursors AS c (node_id) VALUES ($1)
        ON CONFLICT (node_id) DO UPDATE SET node_id = c.node_id
        RETURNING applied_through_seq
        """,
        node_id,
    )
    return int(value)
