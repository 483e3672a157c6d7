"""Node API keys: one key = one node (spec/security.md §1). Only hashes are stored."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from vk_hive.errors import NotFound
from vk_hive.store.models import NodeApiKey, from_row, from_rows

_COLUMNS = """id, organization_id, name, key_hash, key_prefix, created_by, last_used_at,
    revoked_at, created_at, node_id, takeover_count, takeover_window_start, blocked_at,
    blocked_reason"""


def _one(row: asyncpg.Record | None) -> NodeApiKey | None:
    return None if row is None else from_row(NodeApiKey, row)


async def create(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    name: str,
    created_by: uuid.UUID | None,
    key_hash: str,
    key_prefix: str,
) -> NodeApiKey:
    row = await conn.fetchrow(
        f"""
        INSERT INTO node_api_keys (organization_id, name, created_by, key_hash, key_prefix)
        VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}
        """,
        organization_id,
        name,
        created_by,
        key_hash,
        key_prefix,
    )
    return from_row(NodeApiKey, row)


async def find_by_prefix(conn: asyncpg.Connection, key_prefix: str) -> list[NodeApiKey]:
    """Candidates for authentication (the prefix is not unique); compare the full hash after."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM node_api_keys WHERE key_prefix = $1 ORDER BY created_at",
        key_prefix,
    )
    return from_rows(NodeApiKey, rows)


async def find_by_id(conn: asyncpg.Connection, key_id: uuid.UUID) -> NodeApiKey | None:
    return _one(await conn.fetchrow(f"SELECT {_COLUMNS} FROM node_api_keys WHERE id = $1", key_id))


async def lock(conn: asyncpg.Connection, key_id: uuid.UUID) -> NodeApiKey | None:
    """Re-read the key and lock its row for this transaction (one authentication per key at a
    time, so two instances using one key cannot both bind or move it)."""
    return _one(
        await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM node_api_keys WHERE id = $1 FOR UPDATE", key_id
        )
    )


async def find_by_node_id(conn: asyncpg.Connection, node_id: uuid.UUID) -> NodeApiKey | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM node_api_keys WHERE node_id = $1 ORDER BY created_at DESC LIMIT 1",
        node_id,
    )
    return _one(row)


async def list_by_organization(
    conn: asyncpg.Connection, organization_id: uuid.UUID
) -> list[NodeApiKey]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM node_api_keys WHERE organization_id = $1 "
        "ORDER BY created_at DESC, id",
        organization_id,
    )
    return from_rows(NodeApiKey, rows)


async def touch(conn: asyncpg.Connection, key_id: uuid.UUID) -> None:
    await conn.execute("UPDATE node_api_keys SET last_used_at = now() WHERE id = $1", key_id)


async def revoke(
    conn: asyncpg.Connection, key_id: uuid.UUID, organization_id: uuid.UUID
) -> NodeApiKey:
    """Revoke a key of ``organization_id`` (a key of another org is NotFound); idempotent."""
    row = await conn.fetchrow(
        f"""
        UPDATE node_api_keys SET revoked_at = COALESCE(revoked_at, now())
        WHERE id = $1 AND organization_id = $2 RETURNING {_COLUMNS}
        """,
        key_id,
        organization_id,
    )
    key = _one(row)
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    return key


async def delete(conn: asyncpg.Connection, key_id: uuid.UUID) -> None:
    if await conn.execute("DELETE FROM node_api_keys WHERE id = $1", key_id) == "DELETE 0":
        raise NotFound(f"API key {key_id} not found")


async def bind_to_node(
    conn: asyncpg.Connection, key_id: uuid.UUID, node_id: uuid.UUID
) -> NodeApiKey | None:
    """Bind an unbound (or same-node) usable key; None if bound elsewhere, revoked or blocked."""
    row = await conn.fetchrow(
        f"""
        UPDATE node_api_keys SET node_id = $2, takeover_count = 0, takeover_window_start = NULL
        WHERE id = $1 AND (node_id IS NULL OR node_id = $2)
          AND revoked_at IS NULL AND blocked_at IS NULL
        RETURNING {_COLUMNS}
        """,
        key_id,
        node_id,
    )
    return _one(row)


async def update_node_binding(
    conn: asyncpg.Connection, key_id: uuid.UUID, node_id: uuid.UUID, *, reset_takeover: bool
) -> NodeApiKey | None:
    """Rebind a usable key to ``node_id`` and touch it; None when revoked/blocked/missing."""
    row = await conn.fetchrow(
        f"""
        UPDATE node_api_keys SET node_id = $2, last_used_at = now(),
            takeover_count = CASE WHEN $3 THEN 0 ELSE takeover_count END,
            takeover_window_start = CASE WHEN $3 THEN NULL ELSE takeover_window_start END
        WHERE id = $1 AND revoked_at IS NULL AND blocked_at IS NULL
        RETURNING {_COLUMNS}
        """,
        key_id,
        node_id,
        reset_takeover,
    )
    return _one(row)


async def increment_takeover(
    conn: asyncpg.Connection, key_id: uuid.UUID, window: dt.timedelta
) -> int:
    """Count a takeover attempt within a sliding window; returns the count after this attempt."""
    count = await conn.fetchval(
        """
        UPDATE node_api_keys SET
            takeover_count = CASE
                WHEN takeover_window_start IS NULL OR takeover_window_start < now() - $2::interval
                THEN 1 ELSE takeover_count + 1 END,
            takeover_window_start = CASE
                WHEN takeover_window_start IS NULL OR takeover_window_start < now() - $2::interval
                THEN now() ELSE takeover_window_start END
        WHERE id = $1 RETURNING takeover_count
        """,
        key_id,
        window,
    )
    if count is None:
        raise NotFound(f"API key {key_id} not found")
    return int(count)


async def block_key(conn: asyncpg.Connection, key_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE node_api_keys SET blocked_at = now(), blocked_reason = $2 WHERE id = $1",
        key_id,
        reason,
    )


async def unblock_key(
    conn: asyncpg.Connection, key_id: uuid.UUID, organization_id: uuid.UUID
) -> NodeApiKey | None:
    """Clear the block and the takeover counters of a blocked, non-revoked key of the org."""
    row = await conn.fetchrow(
        f"""
        UPDATE node_api_keys SET blocked_at = NULL, blocked_reason = NULL, takeover_count = 0,
            takeover_window_start = NULL
        WHERE id = $1 AND organization_id = $2 AND blocked_at IS NOT NULL AND revoked_at IS NULL
        RETURNING {_COLUMNS}
        """,
        key_id,
        organization_id,
    )
    return _one(row)


async def reset_takeover_count(conn: asyncpg.Connection, key_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE node_api_keys SET takeover_count = 0, takeover_window_start = NULL WHERE id = $1",
        key_id,
    )
