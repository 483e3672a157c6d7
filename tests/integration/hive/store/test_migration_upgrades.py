"""Migrations that change existing rows, tested on a database built by the earlier migrations and
filled with rows of the old shape."""

from __future__ import annotations

import asyncpg
import pytest

from vk_hive.store.migrate import migrate

pytestmark = pytest.mark.asyncio


async def test_0004_keeps_one_key_per_node_and_starts_cursors_at_epoch_zero(
    pg_database: str,
) -> None:
    """Keys that an older hive bound to one node through a shared machine id: the oldest keeps
    the node, the younger ones are unbound (their next use creates a node of their own);
    existing cursors and op log rows are epoch 0."""
    conn = await asyncpg.connect(pg_database)
    try:
        await migrate(conn, through=3)  # as a hive of the earlier release left it
        org = await conn.fetchval(
            "INSERT INTO organizations (name, slug) VALUES ('o', 'o') RETURNING id"
        )
        node = await conn.fetchval(
            "INSERT INTO nodes (organization_id, name, machine_id) VALUES ($1, 'n', 'host-hash') "
            "RETURNING id",
            org,
        )
        keys = []
        for i, days in enumerate((3, 2, 1)):
            keys.append(
                await conn.fetchval(
                    "INSERT INTO node_api_keys (organization_id, name, key_hash, key_prefix, "
                    "node_id, created_at) VALUES ($1, $2, $3, 'p', $4, "
                    "now() - make_interval(days => $5)) RETURNING id",
                    org,
                    f"k{i}",
                    f"hash{i}",
                    node,
                    days,
                )
            )
        await conn.execute(
            "INSERT INTO node_op_cursors (node_id, applied_through_seq) VALUES ($1, 7)", node
        )
        await conn.execute(
            "INSERT INTO node_op_log (node_id, idempotency_key, seq, op_type, entity_id) "
            "VALUES ($1, 'k', 7, 'task.upsert', gen_random_uuid())",
            node,
        )

        applied = await migrate(conn)

        assert applied[0] == "0004_node_identity"
        bound = await conn.fetch("SELECT id, node_id FROM node_api_keys ORDER BY created_at")
        assert [(r["id"], r["node_id"]) for r in bound] == [
            (keys[0], node),
            (keys[1], None),
            (keys[2], None),
        ]
        cursor = await conn.fetchrow("SELECT applied_through_seq, epoch FROM node_op_cursors")
        assert (cursor["applied_through_seq"], cursor["epoch"]) == (7, 0)
        assert await conn.fetchval("SELECT epoch FROM node_op_log") == 0
    finally:
        await conn.close()
