"""The hive's WebSocket protocol (vk_hive.server.CoalescingWebSocketsProtocol) joins the frames
written in one event-loop iteration into one socket write: over a real uvicorn server and a real
client, every frame still arrives as its own message, in order, and a close sent right after a
burst arrives after all of it."""

from __future__ import annotations

from typing import Any

import pytest
import websockets

from support.uvicorn_server import serving
from vk_hive.server import CoalescingWebSocketsProtocol

pytestmark = pytest.mark.asyncio

CLOSE_CODE = 4001


async def _burst_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Per received number N: N binary frames of growing size back to back, then (for 0) a
    close with CLOSE_CODE."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        count = int(message["text"])
        for i in range(count):
            await send({"type": "websocket.send", "bytes": i.to_bytes(4, "big") * (i + 1)})
        if count == 0:
            await send({"type": "websocket.close", "code": CLOSE_CODE})
            return


async def test_a_burst_of_frames_arrives_whole_and_in_order_before_the_close() -> None:
    """A lone frame, a burst of 300 frames (up to 1.2 KB each) and a close right after another
    burst: each frame arrives as its own message with its own content, in order, then the
    close."""
    async with (
        serving(_burst_app, ws=CoalescingWebSocketsProtocol) as port,
        websockets.connect(f"ws://127.0.0.1:{port}") as ws,
    ):
        for count in (1, 300):
            await ws.send(str(count))
            got = [await ws.recv() for _ in range(count)]
            assert got == [i.to_bytes(4, "big") * (i + 1) for i in range(count)]
        await ws.send("5")
        await ws.send("0")
        tail = [await ws.recv() for _ in range(5)]
        assert tail == [i.to_bytes(4, "big") * (i + 1) for i in range(5)]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CLOSE_CODE
