"""Session robustness and the pushes about nodes and projects."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from support.hive_client import HiveClient
from vk_hive.store.repositories import nodes
from vk_shared.protocol import MAX_FRAME_BYTES
from vk_shared.status import NodeStatus
from vk_shared.wire import (
    Deregister,
    ErrorMessage,
    Heartbeat,
    HeartbeatAck,
    LinkProject,
    NodeRemoved,
    NodeStatusChanged,
    ProjectSync,
    TaskCancel,
    UnlinkProject,
)

from .conftest import World, running_world

pytestmark = pytest.mark.asyncio


async def _heartbeat_ok(client: HiveClient) -> None:
    await client.send(Heartbeat(status="online", running=0, capacity=1))  # type: ignore[arg-type]
    ack = await client.expect(HeartbeatAck)
    assert ack.server_time.tzinfo is not None


async def test_malformed_unknown_and_oversized_frames_get_errors_and_the_session_survives(
    world: World,
) -> None:
    """Garbage, an unknown type and an oversized frame each get an error naming the problem;
    a valid message in between resets the count and the session goes on."""
    node = await world.node()
    await node.client.send_raw(b"\xc1\xff not msgpack")
    first = await node.client.expect(ErrorMessage)
    assert first.code == "malformed_frame"
    await node.client.send_raw(msgspec.msgpack.encode({"type": "teleport", "where": "mars"}))
    unknown = await node.client.expect(ErrorMessage)
    assert unknown.code == "malformed_frame"
    assert "teleport" in unknown.message
    await _heartbeat_ok(node.client)
    await node.client.send_raw(b"\x00" * (MAX_FRAME_BYTES + 1))
    big = await node.client.expect(ErrorMessage)
    assert big.code == "frame_too_large"
    await node.client.send_raw(
        msgspec.msgpack.encode({"type": "heartbeat", "status": "online", "running": -1})
    )
    bad_field = await node.client.expect(ErrorMessage)
    assert bad_field.ref is not None
    await _heartbeat_ok(node.client)


async def test_three_malformed_frames_in_a_row_close_with_1008(world: World) -> None:
    """Three malformed frames in a row close the socket with 1008 and a reason."""
    node = await world.node()
    for _ in range(3):
        await node.client.send_raw(b"\xc1")
    closed = await node.client.closed()
    assert closed.code == 1008
    assert "malformed" in closed.reason


async def test_heartbeat_timeout_marks_offline_and_closes(hive_dsn: str) -> None:
    """A node that stops sending heartbeats is closed and marked offline."""
    async with running_world(hive_dsn, heartbeat_timeout_s=0.5) as world:
        node = await world.node()
        closed = await node.client.closed(within=5)
        assert closed.code == 1008
        assert "heartbeat" in closed.reason
        for _ in range(100):
            async with world.db.acquire() as conn:
                row = await nodes.get(conn, node.id)
            if row.status == "offline":
                break
            await asyncio.sleep(0.02)
        assert row.status == "offline"


async def test_project_sync_reaches_only_nodes_linking_the_project(world: World) -> None:
    """Linking and unlinking push project_sync to the other nodes that link that project."""
    first = await world.node()
    other_org = await world.other_org()
    outsider = await world.node(
        api_key=await world.api_key(other_org),
        project_id=await world.project("x", org_id=other_org),
    )
    second = await world.node()
    added = await first.client.expect(ProjectSync, where=lambda m: m.is_new)
    assert added.link.source_node_id == second.id
    assert added.link.project_id == world.project_id
    await second.client.send(UnlinkProject(project_id=world.project_id))
    removed = await first.client.expect(ProjectSync, where=lambda m: not m.is_new)
    assert removed.link.source_node_id == second.id
    assert not [m for m in await outsider.client.drain(0.2) if isinstance(m, ProjectSync)]


async def test_link_to_another_orgs_project_is_forbidden(world: World) -> None:
    """link_project for a project outside the node's organization is error{forbidden}."""
    other_org = await world.other_org()
    foreign = await world.project("foreign", org_id=other_org)
    node = await world.node(link=False)
    await node.client.send(
        LinkProject(project_id=foreign, local_project_id=uuid.uuid4(), git_repo_path="/x")
    )
    err = await node.client.expect(ErrorMessage)
    assert err.code == "forbidden"
    assert err.ref == str(foreign)


async def test_deregister_removes_the_node_and_tells_the_org(world: World) -> None:
    """deregister deletes the node, pushes node_removed to the org's other nodes and closes."""
    watcher = await world.node()
    leaving = await world.node()
    await leaving.client.send(Deregister(reason="decommissioned"))
    removed = await watcher.client.expect(NodeRemoved)
    assert removed.node_id == leaving.id
    assert removed.reason == "decommissioned"
    assert (await leaving.client.closed()).code == 1000
    async with world.db.acquire() as conn:
        assert await nodes.find_by_id(conn, leaving.id) is None


async def test_a_storm_of_node_statuses_is_coalesced_and_never_closes_the_session(
    world: World,
) -> None:
    """node_status pushes for more nodes than the outgoing queue holds, each changing twice,
    pushed faster than the session can send them: the session stays open (a queued frame per
    push would fill the queue and close it) and the node gets every node's latest status, once
    per node when nothing changes in between."""
    watcher = await world.node()
    session = world.gateway.registry.get(watcher.id)
    assert session is not None
    count = world.settings.outgoing_queue_size * 3
    others = [uuid.uuid4() for _ in range(count)]
    for status in (NodeStatus.ONLINE, NodeStatus.OFFLINE):
        for node_id in others:  # no await in between: the sender cannot run meanwhile
            session.push_status(NodeStatusChanged(node_id=node_id, status=status, name="n"))
    received = [m for m in await watcher.client.drain(1.0) if isinstance(m, NodeStatusChanged)]
    assert not session.closing
    assert len(received) == count
    assert {m.node_id for m in received} == set(others)
    assert {m.status for m in received} == {"offline"}
    await _heartbeat_ok(watcher.client)


async def test_an_urgent_lease_message_overtakes_the_queued_frames(world: World) -> None:
    """A task_cancel pushed behind hundreds of queued frames is the next frame the node gets
    (lease decisions do not wait behind activity bursts); the queued frames follow in order."""
    watcher = await world.node()
    session = world.gateway.registry.get(watcher.id)
    assert session is not None
    removed = [uuid.uuid4() for _ in range(300)]
    for node_id in removed:  # no await in between: the sender cannot run meanwhile
        assert session.push(NodeRemoved(node_id=node_id, reason="gone"))
    assignment_id = uuid.uuid4()
    session.push_urgent(TaskCancel(assignment_id=assignment_id, reason="operator"))
    received = await watcher.client.drain(1.0)
    assert isinstance(received[0], TaskCancel)
    assert received[0].assignment_id == assignment_id
    assert [m.node_id for m in received[1:] if isinstance(m, NodeRemoved)] == removed
