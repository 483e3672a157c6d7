"""Node op dedup log and applied-through cursors."""

from __future__ import annotations

import uuid

import pytest

from integration.hive.store._world import World
from vk_hive.store.repositories import nodes, op_log


@pytest.mark.asyncio
async def test_record_dedups_by_node_and_key(world: World) -> None:
    """The same idempotency key is recorded once per node; another node may reuse it."""
    async with world.db.acquire() as conn:
        entity = uuid.uuid4()
        assert await op_log.record(conn, world.node.id, "task:1:a", 1, "task.upsert", entity)
        assert not await op_log.record(conn, world.node.id, "task:1:a", 2, "task.upsert", entity)
        assert await op_log.record(conn, world.other_node.id, "task:1:a", 1, "task.upsert", entity)
        found = await op_log.recorded(conn, world.node.id, ["task:1:a", "x"])
        assert (found.keys, found.rejections) == ({"task:1:a"}, {})
        entry = await op_log.find(conn, world.node.id, "task:1:a")
    assert entry is not None
    assert entry.seq == 1


@pytest.mark.asyncio
async def test_applied_through_cursor_only_moves_forward(world: World) -> None:
    """The cursor starts at 0, advances, never goes back, and disappears with its node."""
    async with world.db.acquire() as conn:
        assert await op_log.get_applied_through(conn, world.node.id) == 0
        assert await op_log.advance_applied_through(conn, world.node.id, 7) == 7
        assert await op_log.advance_applied_through(conn, world.node.id, 3) == 7
        async with conn.transaction():
            assert await op_log.lock_node(conn, world.node.id) == 7
        assert await op_log.get_applied_through(conn, world.node.id) == 7
        await nodes.delete(conn, world.node.id)
        assert await op_log.get_applied_through(conn, world.node.id) == 0
