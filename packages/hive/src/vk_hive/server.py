"""How ``vk-hive serve`` runs uvicorn: the limits a hive facing the network needs that uvicorn's
defaults do not give.

- WebSocket frames are capped at the protocol's ``MAX_FRAME_BYTES`` plus a little slack (uvicorn's
  default is 16 MiB): a longer frame is refused from its header (close 1009, "message too big")
  before its payload is read. Frames just over the protocol limit still reach the gateway, which
  answers them with ``error{frame_too_large}`` as the protocol says. The sans-I/O websockets
  implementation holds at most one unread message
  per connection; permessage-deflate is off (nodes do not use it, and every compressed
  connection would hold zlib state).
- HTTP/1.1 (h11) with two timeouts uvicorn lacks (its keep-alive timeout only covers a connection
  idle after a response): a request's headers must be complete within ``header_timeout_s`` of
  the connection opening or of the previous response, and a request body that receives no byte
  for ``body_timeout_s`` while the application waits for it closes the connection. A WebSocket
  upgrade hands the connection to the WebSocket protocol, whose peer the gateway times out
  (``auth_timeout_s``, heartbeats).
- ``X-Forwarded-For``/``-Proto`` are trusted from ``forwarded_allow_ips`` only, so per-address
  limits count the real client behind a proxy and cannot be dodged by a forged header.
- WebSocket writes of one event-loop iteration are coalesced
  (:class:`CoalescingWebSocketsProtocol`): uvicorn writes every ``websocket.send`` to the socket
  at once — one ``send()`` system call per frame, under uvloop as under asyncio — so a session
  sender draining a queue of N frames made N system calls. Now the first write goes out at once
  and the frames written after it in the same iteration follow as one write.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, cast

import structlog
import uvicorn
from litestar import Litestar
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from vk_hive.settings import HiveSettings
from vk_shared.protocol import MAX_FRAME_BYTES

__all__ = [
    "WS_MAX_FRAME_BYTES",
    "CoalescingWebSocketsProtocol",
    "TimedH11Protocol",
    "timed_h11_protocol",
    "uvicorn_config",
]

log = structlog.get_logger("vk_hive.server")

WS_MAX_FRAME_BYTES = MAX_FRAME_BYTES + 64 * 1024
"""The largest WebSocket message uvicorn reads: the protocol limit plus slack for the frame just
over it that the gateway refuses with a readable ``error``."""


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-header deadline and a body idle timeout.

    One timer per connection, armed for the state the connection is in: waiting for a request's
    headers (armed at connect and when a response completes, not extended by data), or reading a
    body the application waits for (re-armed by every byte). While the application handles a
    request, nothing is armed. When the timer fires it re-checks the state, so a stale timer
    never closes a connection in another state.
    """

    header_timeout_s: ClassVar[float] = 10.0
    body_timeout_s: ClassVar[float] = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None

    # --- states ---------------------------------------------------------------------------------

    def _ours(self) -> bool:
        """Still an HTTP connection of this protocol (not closing, not upgraded)."""
        return not self.transport.is_closing() and self.transport.get_protocol() is self

    def _awaiting_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _reading_body(self) -> bool:
        return (
            self.cycle is not None
            and not self.cycle.response_complete
            and not self.cycle.disconnected
            and self.cycle.more_body
        )

    # --- the timer ------------------------------------------------------------------------------

    def _arm(self, delay_s: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay_s, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if not self._ours():
            return
        if self._awaiting_headers():
            log.info("http.header_timeout", timeout_s=self.header_timeout_s, client=self.client)
            self.transport.close()
        elif self._reading_body():
            assert self.cycle is not None
            if self.flow.read_paused or self.cycle.waiting_for_100_continue:
                self._arm(self.body_timeout_s)  # the application is the one not reading
                return
            log.info("http.body_timeout", timeout_s=self.body_timeout_s, client=self.client)
            self.transport.close()

    # --- uvicorn's hooks ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._ours():
            self._disarm()
        elif self._reading_body():
            self._arm(self.body_timeout_s)
        elif not self._awaiting_headers():
            self._disarm()
        # awaiting headers: the deadline set at connect / after the last response stands

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._ours():
            if self._awaiting_headers():
                self._arm(self.header_timeout_s)
            elif self._reading_body():  # a pipelined request was parsed meanwhile
                self._arm(self.body_timeout_s)
            else:
                self._disarm()


class _CoalescingTransport:
    """A transport whose writes of one event-loop iteration after the first become one write.

    The first write goes to the socket at once (a lone frame waits for nothing); the ones after
    it are joined and written by a callback that runs on the loop's next iteration — after
    every sender that was ready has written. Closing writes what is pending first, so a close
    frame never overtakes the frames queued before it. Everything else is the wrapped
    transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._window = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._window:
            self._pending.append(bytes(data))
            return
        self._transport.write(data)
        self._window = True
        self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._window = False
        if not self._pending:
            return
        data, self._pending = b"".join(self._pending), []
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingWebSocketsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol writing through a :class:`_CoalescingTransport`:
    each frame stays its own WebSocket message, but a burst of them costs two ``send()`` calls
    instead of one per frame."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        coalescing = _CoalescingTransport(
            cast(asyncio.Transport, transport), asyncio.get_running_loop()
        )
        super().connection_made(cast(asyncio.Transport, coalescing))


def timed_h11_protocol(settings: HiveSettings) -> type[TimedH11Protocol]:
    """:class:`TimedH11Protocol` with the timeouts of ``settings`` (uvicorn instantiates the class
    it is given, so the values are class attributes of a subclass)."""
    return type(
        "HiveH11Protocol",
        (TimedH11Protocol,),
        {"header_timeout_s": settings.header_timeout_s, "body_timeout_s": settings.body_timeout_s},
    )


def uvicorn_config(app: Litestar, settings: HiveSettings) -> uvicorn.Config:
    """The uvicorn configuration of ``vk-hive serve``."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=timed_h11_protocol(settings),
        ws=CoalescingWebSocketsProtocol,  # websockets comes with uvicorn[standard]
        ws_max_size=WS_MAX_FRAME_BYTES,
        ws_per_message_deflate=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
