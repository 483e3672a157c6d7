"""Hostile frames on the node WebSocket (real hive, real socket): each gets an ``error`` naming the
problem, and the session goes on."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest

from support.hive_client import HiveClient
from vk_shared.protocol import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK
from vk_shared.wire import AuthResult, ErrorMessage, Heartbeat, HeartbeatAck

from .conftest import World

pytestmark = pytest.mark.asyncio

HEARTBEAT = {"type": "heartbeat", "status": "online", "running": 0, "capacity": 1}


def _nested(depth: int, *, binary: bool) -> bytes:
    return b"\x91" * depth + b"\xc0" if binary else b"[" * depth + b"]" * depth


def _frame(obj: dict[str, object], depth: int, *, binary: bool) -> str | bytes:
    """``obj`` with its ``"@@"`` value replaced by arrays nested ``depth`` deep, as the frame of
    the subprotocol (binary msgpack or JSON text)."""
    if binary:
        return msgspec.msgpack.encode(obj).replace(b"\xa2@@", _nested(depth, binary=True))
    return json.dumps(obj).replace('"@@"', _nested(depth, binary=False).decode())


async def _authenticated(world: World, subprotocol: str) -> HiveClient:
    client = await world.client(subprotocols=[subprotocol])
    result = await client.auth(await world.api_key(), machine_id=f"m-{uuid.uuid4().hex[:8]}")
    assert isinstance(result, AuthResult), result
    return client


async def _heartbeat_ok(client: HiveClient) -> None:
    await client.send(Heartbeat(status="online", running=0, capacity=1))  # type: ignore[arg-type]
    await client.expect(HeartbeatAck)


@pytest.mark.parametrize("subprotocol", [SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK])
async def test_deeply_nested_frames_get_an_error_and_the_session_goes_on(
    world: World, subprotocol: str
) -> None:
    """Frames nested 3,000 and 200,000 deep, at the top or in a field the decoder descends into,
    each get a malformed_frame error (naming the nesting where the decoder met it), and a
    heartbeat right after each is still acknowledged."""
    binary = subprotocol == SUBPROTOCOL_MSGPACK
    client = await _authenticated(world, subprotocol)
    for depth in (3_000, 200_000):
        top = _nested(depth, binary=binary)
        frames = [
            (top if binary else top.decode(), False),
            (_frame({**HEARTBEAT, "future": "@@"}, depth, binary=binary), True),
        ]
        for frame, names_nesting in frames:
            await client.send_raw(frame)
            error = await client.expect(ErrorMessage)
            assert error.code == "malformed_frame", error
            if names_nesting:
                assert "nested too deeply" in error.message, error
            await _heartbeat_ok(client)


async def test_a_lone_surrogate_escape_is_named_and_the_session_goes_on(world: World) -> None:
    """A JSON frame holding ``\\ud800`` without its partner gets an error naming the escape."""
    client = await _authenticated(world, SUBPROTOCOL_JSON)
    await client.send_raw('{"type": "deregister", "reason": "\\ud800"}')
    error = await client.expect(ErrorMessage)
    assert error.code == "malformed_frame"
    assert "lone UTF-16 surrogate \\ud800" in error.message
    await _heartbeat_ok(client)


@pytest.mark.parametrize("subprotocol", [SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK])
async def test_a_deeply_nested_first_frame_is_refused_and_the_hive_goes_on(
    world: World, subprotocol: str
) -> None:
    """A deep frame instead of ``auth`` is refused with an error and close 1008; the next
    connection authenticates as usual."""
    binary = subprotocol == SUBPROTOCOL_MSGPACK
    client = await world.client(subprotocols=[subprotocol])
    await client.send_raw(_frame({**HEARTBEAT, "future": "@@"}, 200_000, binary=binary))
    error = await client.expect(ErrorMessage)
    assert error.code == "malformed_frame"
    assert "nested too deeply" in error.message
    closed = await client.closed()
    assert closed.code == 1008
    await _heartbeat_ok(await _authenticated(world, subprotocol))
