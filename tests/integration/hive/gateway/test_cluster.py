"""Two hive apps (each a real uvicorn server with its own pool, listener and gateway) over one
database: what one process decides for a node reaches the node on the other, a node has one live
session across both, statuses cross over, and one process leads the sweepers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from vk_hive.store.repositories import nodes
from vk_shared.wire import NodeStatusChanged, TaskAssign, TaskCancel

from ..api.conftest import running_hive
from .conftest import FAST, World

pytestmark = pytest.mark.asyncio


@contextlib.asynccontextmanager
async def second_hive(world: World, **overrides: object) -> AsyncIterator[World]:
    """Another hive process's app on ``world``'s database, with the same user and project."""
    async with running_hive(world.settings.database_url, **{**FAST, **overrides}) as hive:
        other = World.on(hive, world.user_id, world.org_id, world.project_id, world.token)
        async with other._stack:
            yield other


@pytest_asyncio.fixture
async def hive2(world: World) -> AsyncIterator[World]:
    async with second_hive(world) as other:
        yield other


async def _until(probe: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_dispatch_and_a_cancel_reach_a_node_served_by_the_other_process(
    world: World, hive2: World
) -> None:
    node = await hive2.node()
    created = await world.create_task(start_attempt=True, node_id=str(node.id))
    assign = await node.client.expect(TaskAssign)
    assert str(assign.assignment_id) == created["assignment"]["id"]
    assert assign.fencing_token == created["assignment"]["fencing_token"]

    task = created["task"]
    r = await world.http.patch(
        f"/v1/tasks/{task['id']}",
        json={"version": task["version"], "status": "cancelled"},
        headers=world.headers,
    )
    assert r.status_code == 200, r.text
    cancel = await node.client.expect(TaskCancel)
    assert cancel.assignment_id == assign.assignment_id


async def test_a_node_reconnecting_to_the_other_process_keeps_one_live_session(
    world: World, hive2: World
) -> None:
    key = await world.api_key()
    first = await world.node(api_key=key, machine_id="instance-1")
    again = await hive2.node(api_key=key, machine_id="instance-1")
    assert again.id == first.id

    closed = await first.client.closed(within=5)
    assert closed.code == 1000
    await _until(lambda: not world.gateway.registry.is_connected(first.id), "the old session")
    # The session that ended did not mark the node offline: the new one is current.
    async with world.db.acquire() as conn:
        row = await nodes.get(conn, first.id)
    assert row.status == "online"
    assert row.session_id is not None
    assert hive2.gateway.registry.get(first.id) is not None
    assert hive2.gateway.registry.get(first.id).node.session_id == row.session_id  # type: ignore[union-attr]


async def test_another_instance_is_refused_while_the_node_is_online_on_the_other_process(
    world: World, hive2: World
) -> None:
    key = await world.api_key()
    await world.node(api_key=key, machine_id="instance-1")
    impostor = await hive2.client()
    result = await impostor.auth(key, machine_id="instance-2")
    assert not hasattr(result, "node_id"), result
    assert "online from another node instance" in str(result)


async def test_status_changes_cross_processes(world: World, hive2: World) -> None:
    watcher = await world.node()
    other = await hive2.node()
    online = await watcher.client.expect(NodeStatusChanged, where=lambda m: m.node_id == other.id)
    assert online.status == "online"
    await other.client.close()
    offline = await watcher.client.expect(
        NodeStatusChanged, where=lambda m: m.node_id == other.id and m.status == "offline"
    )
    assert offline.node_id == other.id


async def test_one_process_leads_and_another_takes_over_when_it_stops(world: World) -> None:
    assert world.ctx.leader is not None
    assert world.ctx.leader.is_leader
    async with second_hive(world, leader_check_s=0.1) as other:
        assert other.ctx.leader is not None
        assert not other.ctx.leader.is_leader
        # The first process stops leading (its leader connection ends, as when it dies).
        await world.ctx.leader.stop()
        await _until(lambda: other.ctx.leader.is_leader, "the other process to lead")  # type: ignore[union-attr]


async def test_the_leader_marks_nodes_of_a_dead_process_offline(world: World) -> None:
    node = await world.node()
    async with world.db.acquire() as conn:
        # As if the process serving it had died a while ago: online, current session, no beat.
        await conn.execute(
            "UPDATE nodes SET last_heartbeat_at = now() - interval '1 hour' WHERE id = $1",
            node.id,
        )
        before = await nodes.get(conn, node.id)
    assert before.status == "online"
    swept = await world.gateway.dispatcher.sweep_stale_nodes()
    assert swept == 1
    async with world.db.acquire() as conn:
        after = await nodes.get(conn, node.id)
    assert after.status == "offline"
    assert after.session_id is None


async def test_a_bad_cluster_message_is_ignored(world: World) -> None:
    """Anything on the channel that is not one of ours is dropped; the gateway keeps working."""
    async with world.db.acquire() as conn:
        for payload in ("not json", '{"k": "assign"}', '{"k": "nope", "origin": "x"}'):
            await conn.execute("SELECT pg_notify('vk_gateway', $1)", payload)
        await conn.execute(
            "SELECT pg_notify('vk_gateway', $1)",
            json.dumps({"k": "deliver", "origin": str(uuid.uuid4()), "frame": "{}", "nodes": []}),
        )
    node = await world.node()
    created = await world.create_task(start_attempt=True, node_id=str(node.id))
    assign = await node.client.expect(TaskAssign)
    assert str(assign.assignment_id) == created["assignment"]["id"]
