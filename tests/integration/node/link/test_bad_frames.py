"""A hostile frame from the hive (written on the real hive's socket of the node's session) is
dropped and counted by the node's link, which stays connected and keeps applying what follows."""

from __future__ import annotations

import json

import msgspec
import pytest

from support.node_link import World, wait_for
from vk_hive.gateway.session import NodeSession


def _deep_frame(session: NodeSession, depth: int) -> dict[str, object]:
    """A ``heartbeat_ack`` with an unknown field nested ``depth`` deep (the decoder descends
    into unknown fields to skip them), as the ASGI event of the session's subprotocol."""
    ack = {"type": "heartbeat_ack", "server_time": "2026-01-01T00:00:00Z", "future": "@@"}
    assert session.codec is not None
    if session.codec.binary:
        data = msgspec.msgpack.encode(ack).replace(b"\xa2@@", b"\x91" * depth + b"\xc0")
        return {"type": "websocket.send", "bytes": data, "text": None}
    text = json.dumps(ack).replace('"@@"', "[" * depth + "]" * depth)
    return {"type": "websocket.send", "bytes": None, "text": text}


@pytest.mark.asyncio
async def test_a_deeply_nested_frame_from_the_hive_is_dropped_and_the_link_goes_on(
    world: World,
) -> None:
    """A frame nested 200,000 deep is counted as a bad frame; the link neither crashes nor
    reconnects, and a task created on the hive afterwards still reaches the node."""
    node = await world.node()
    await node.ready()
    status = await node.link.status()
    assert world.hive.ctx is not None
    assert status.node_id is not None
    session = world.hive.ctx.gateway.registry.get(status.node_id)
    assert session is not None
    sessions, applied = node.link.stats.sessions, node.link.stats.activity_applied

    await session.socket.send(_deep_frame(session, 200_000))

    async def dropped() -> bool:
        return node.link.stats.bad_frames == 1

    await wait_for(dropped, what="the deep frame to be counted as bad")
    r = await world.http.post(
        "/v1/tasks",
        json={"project_id": str(world.swarm_project_id), "title": "after", "executor": "SCRIPT"},
    )
    assert r.status_code == 201, r.text

    async def still_applying() -> bool:
        return node.link.stats.activity_applied > applied

    await wait_for(still_applying, what="the next activity to be applied")
    assert node.link.stats.sessions == sessions
    assert (await node.link.status()).state == "connected"
