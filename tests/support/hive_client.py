"""A small client of the hive's node control channel (``/v1/nodes/ws``) for tests.

It speaks the real protocol over a real ``websockets`` connection with vk_shared's codec. Messages
that arrive while a test waits for another type are buffered, so ``expect`` never loses one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from vk_shared.codec import Codec
from vk_shared.protocol import PROTOCOL_VERSION, SUBPROTOCOL_JSON, SUBPROTOCOLS, WS_PATH
from vk_shared.wire import (
    ActivityCursor,
    Auth,
    AuthResult,
    ErrorMessage,
    HiveMessage,
    NodeCapabilities,
    WireStruct,
)

__all__ = ["HiveClient", "HiveClosed", "ws_url"]

T = TypeVar("T")


class HiveClosed(Exception):
    """The hive closed the connection; ``code`` and ``reason`` say how."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed with {code}: {reason}")
        self.code = code
        self.reason = reason


def ws_url(base_url: str) -> str:
    """``http://host:port`` → ``ws://host:port/v1/nodes/ws``."""
    return base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + WS_PATH


class HiveClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        # Without a negotiated subprotocol the hive only closes; JSON reads that fine.
        self.codec = Codec.for_subprotocol(ws.subprotocol or SUBPROTOCOL_JSON)
        self.buffer: list[HiveMessage] = []

    @classmethod
    async def connect(
        cls, base_url: str, *, subprotocols: Sequence[str] = SUBPROTOCOLS
    ) -> HiveClient:
        ws = await connect(
            ws_url(base_url),
            subprotocols=list(subprotocols),  # type: ignore[arg-type]
            max_size=None,
            # Take every frame off the socket as it arrives, as a node's link does. With a bound
            # (websockets' default: 16 unread messages) the connection stops reading, and a test
            # that left a burst of activity unread waited 10 s in close() for the hive's close
            # frame behind it.
            max_queue=None,
            open_timeout=10,
            ping_interval=None,
        )
        return cls(ws)

    async def __aenter__(self) -> HiveClient:
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ws.close()

    async def send(self, msg: WireStruct) -> None:
        await self.ws.send(self.codec.encode(msg))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def _read(self, within: float) -> HiveMessage:
        try:
            frame = await asyncio.wait_for(self.ws.recv(), within)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise HiveClosed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
        return self.codec.decode_hive(frame)

    async def expect(
        self,
        kind: type[T],
        within: float = 5.0,
        where: Callable[[T], bool] | None = None,
    ) -> T:
        """The next message of ``kind`` (matching ``where``); others are kept in the buffer."""
        for i, msg in enumerate(self.buffer):
            if isinstance(msg, kind) and (where is None or where(msg)):
                del self.buffer[i]
                return msg
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind.__name__} within {within}s; buffered: {self.buffer}")
            msg = await self._read(remaining)
            if isinstance(msg, kind) and (where is None or where(msg)):
                return msg
            self.buffer.append(msg)

    async def drain(self, quiet: float = 0.3) -> list[HiveMessage]:
        """Everything buffered plus what arrives until ``quiet`` seconds pass without a frame."""
        out, self.buffer = self.buffer, []
        while True:
            try:
                out.append(await self._read(quiet))
            except TimeoutError:
                return out

    async def closed(self, within: float = 5.0) -> HiveClosed:
        """Read until the hive closes; returns the close (messages read meanwhile are buffered)."""
        deadline = time.monotonic() + within
        while True:
            try:
                self.buffer.append(await self._read(max(0.01, deadline - time.monotonic())))
            except HiveClosed as closed:
                return closed

    async def auth(
        self,
        api_key: str,
        *,
        machine_id: str = "machine-1",
        name: str = "node-1",
        executors: Sequence[str] = ("SCRIPT",),
        cursors: dict[uuid.UUID, int] | None = None,
        last_acked_seq: int = 0,
        protocol_version: int = PROTOCOL_VERSION,
        features: Sequence[str] = (),
    ) -> AuthResult | ErrorMessage:
        """Send ``auth``; the ``auth_result`` or the ``error`` the hive answered with."""
        await self.send(
            Auth(
                api_key=api_key,
                machine_id=machine_id,
                name=name,
                capabilities=NodeCapabilities(executors=list(executors)),
                protocol_version=protocol_version,
                activity_cursors=[
                    ActivityCursor(project_id=p, seq=s) for p, s in (cursors or {}).items()
                ],
                last_acked_seq=last_acked_seq,
                features=list(features),
            )
        )
        while True:
            msg = await self._read(10.0)
            if isinstance(msg, AuthResult | ErrorMessage):
                return msg
            self.buffer.append(msg)
