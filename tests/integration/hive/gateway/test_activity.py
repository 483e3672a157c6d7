"""Activity on the control channel: replay then live, retention, fan-out scope, LISTEN loss."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from vk_shared.wire import Activity, ResyncRequired

from .conftest import Node, World, running_world

pytestmark = pytest.mark.asyncio


async def _seqs_until(node: Node, project_id: uuid.UUID, last: int) -> list[int]:
    seqs: list[int] = []
    while not seqs or seqs[-1] < last:
        msg = await node.client.expect(
            Activity, within=15, where=lambda m: m.project_id == project_id
        )
        seqs.append(msg.seq)
    return seqs


async def _last_seq(world: World, project_id: uuid.UUID) -> int:
    async with world.db.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT last_seq FROM project_activity_counters WHERE project_id = $1", project_id
            )
            or 0
        )


async def test_replay_then_live_has_no_duplicates_or_gaps(hive_dsn: str) -> None:
    """A node reconnecting with a cursor gets every later event once, in order, while new events
    are written during its paged replay."""
    async with running_world(hive_dsn, activity_page_size=7) as world:
        for i in range(30):
            await world.create_task(title=f"before {i}")
        key = await world.api_key()
        node = await world.node(api_key=key, machine_id="replayer", cursors={world.project_id: 5})

        async def writer() -> None:
            for i in range(20):
                await world.create_task(title=f"during {i}")

        await asyncio.gather(writer(), node.client.expect(Activity, within=15))
        last = await _last_seq(world, world.project_id)
        assert last == 50
        # The first event was consumed by gather; it must have been seq 6.
        seqs = [6, *await _seqs_until(node, world.project_id, last)]
        assert seqs == list(range(6, last + 1))
        assert not [m for m in await node.client.drain(0.3) if isinstance(m, Activity)]


async def test_cursor_older_than_retention_gets_resync_required(world: World) -> None:
    """When events after the node's cursor were pruned, the hive asks for a resync."""
    for i in range(6):
        await world.create_task(title=f"t{i}")
    async with world.db.acquire() as conn:
        await conn.execute(
            "DELETE FROM activity WHERE project_id = $1 AND seq <= 4", world.project_id
        )
    node = await world.node(cursors={world.project_id: 2})
    resync = await node.client.expect(ResyncRequired)
    assert resync.project_id == world.project_id
    assert resync.latest_seq == 6
    await world.create_task(title="after")
    live = await node.client.expect(Activity)
    assert live.seq == 7


async def test_events_reach_only_nodes_linking_the_project(world: World) -> None:
    """A project's events go to the nodes that link it, not to other nodes of the org."""
    other_project = await world.project("other")
    linked = await world.node()
    elsewhere = await world.node(project_id=other_project)
    created = await world.create_task(title="for linked")
    event = await linked.client.expect(Activity)
    assert event.event_type == "task.created"
    assert event.payload["task"]["id"] == created["task"]["id"]
    assert not [m for m in await elsewhere.client.drain(0.3) if isinstance(m, Activity)]


async def test_listen_connection_loss_recovers(world: World) -> None:
    """When the LISTEN connection is killed, the hive reconnects and the node still gets every
    event, including those written while nobody listened."""
    node = await world.node()
    await world.create_task(title="first")
    assert (await node.client.expect(Activity)).seq == 1
    fanout = world.gateway.fanout
    before = fanout.connections
    conn = await asyncpg.connect(world.settings.database_url)
    try:
        await conn.execute("SELECT pg_terminate_backend($1)", fanout.backend_pid)
    finally:
        await conn.close()
    await world.create_task(title="while down")
    for _ in range(200):
        if fanout.connections > before and fanout.connected.is_set():
            break
        await asyncio.sleep(0.02)
    assert fanout.connections > before
    await world.create_task(title="after")
    seqs = await _seqs_until(node, world.project_id, 3)
    assert seqs == [2, 3]
