"""Small builders of hive → node messages and the frame reader shared by the gateway modules
(and the user stream sessions)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from litestar import WebSocket

from vk_hive.gateway.ports import Outgoing
from vk_shared.codec import Frame, ProtocolError
from vk_shared.wire import ErrorCode, ErrorMessage, WireStruct, tag_of

__all__ = ["error", "handler_failed", "read_messages", "receive_frame"]

CLOSE_POLICY = 1008

_M = TypeVar("_M", bound=WireStruct)

MAX_MESSAGE = 4096
MAX_REF = 255


def error(code: str, message: str, ref: str | None = None) -> ErrorMessage:
    """An ``error`` message with its text cut to the wire limits."""
    return ErrorMessage(
        code=code, message=message[:MAX_MESSAGE], ref=ref[:MAX_REF] if ref else None
    )


def handler_failed(msg: WireStruct, exc: Exception) -> ErrorMessage:
    """The ``error`` for a message whose handler raised (the session goes on)."""
    return error(
        ErrorCode.INTERNAL,
        f"the hive failed to handle {tag_of(msg)}: {type(exc).__name__}",
        tag_of(msg),
    )


async def read_messages(
    socket: WebSocket[Any, Any, Any],
    decode: Callable[[Frame], _M],
    out: Outgoing,
    malformed_limit: int,
) -> AsyncIterator[_M]:
    """The peer's messages until it closes. A frame that does not decode is answered with
    ``error`` naming the problem; ``malformed_limit`` of them in a row close the connection with
    1008 (after the errors were sent) and end the iteration."""
    malformed = 0
    while True:
        frame = await receive_frame(socket)
        if frame is None:
            return
        try:
            msg = decode(frame)
        except ProtocolError as exc:
            malformed += 1
            await out.send(error(exc.code, str(exc), exc.path))
            if malformed >= malformed_limit:
                out.close(CLOSE_POLICY, f"{malformed} malformed frames in a row")
                return
            continue
        malformed = 0
        yield msg


async def receive_frame(socket: WebSocket[Any, Any, Any]) -> str | bytes | None:
    """The next frame's payload (``bytes`` for a binary frame), or None when the peer closed."""
    message = await socket.receive()
    if message["type"] != "websocket.receive":
        return None
    data: bytes | None = message.get("bytes")
    if data is not None:
        return data
    text: str | None = message.get("text")
    return text if text is not None else b""
