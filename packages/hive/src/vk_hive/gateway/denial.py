"""Answer a WebSocket handshake with an HTTP error instead of the upgrade.

The ASGI ``websocket.http.response`` extension lets an application refuse a handshake with a
status, headers and a body (here problem details, like every REST error). A server without the
extension cannot do that: the handshake is then accepted and closed at once with
``fallback_close_code`` and the message as the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from vk_shared import problems

__all__ = ["DENIAL", "deny_handshake"]

DENIAL = "websocket.http.response"
"""The ASGI extension that lets an app answer a WebSocket handshake with an HTTP response."""


async def deny_handshake(
    socket: WebSocket[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    fallback_close_code: int = 1008,
) -> None:
    """Refuse the handshake with ``status`` and a problem details body (``code``, ``message``)."""
    if DENIAL not in (socket.scope.get("extensions") or {}):
        with contextlib.suppress(WebSocketDisconnect, OSError):
            await socket.accept()
            await socket.close(fallback_close_code, message[:120])
        return
    body = problems.encode(status, code, message)
    with contextlib.suppress(WebSocketDisconnect, OSError):  # the peer is gone: nothing to say
        await socket.receive()  # websocket.connect
        await socket.send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", problems.MEDIA_TYPE.encode()), *headers],
            }
        )
        await socket.send(
            {"type": "websocket.http.response.body", "body": body, "more_body": False}
        )
