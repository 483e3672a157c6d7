"""An in-process TCP proxy for fault tests: a real TCP hop between a client and a server whose
link a test can cut, heal and slow down.

``TcpProxy(host, port)`` listens on ``127.0.0.1:0`` (``await start()``, then ``.port`` / ``.url``)
and forwards every accepted connection to ``host:port``. Controls:

- ``cut("reset")``: every current connection is aborted with a TCP RST on both sides, and new
  connections are accepted and reset at once (the peer sees ``connection reset``).
- ``cut("blackhole")``: nothing flows any more — bytes are neither delivered nor lost (they wait
  in the proxy and the kernels' buffers, as TCP would retransmit them), closes are not passed on,
  new connections are accepted but not forwarded. The peers only notice by their own timeouts.
- ``heal()``: forwarding resumes; stalled connections continue where they stopped (what a healed
  network does to a TCP connection that survived), or are reset with ``heal(reset_stalled=True)``.
- ``set_delay(seconds, direction="both"|"up"|"down")``: added one-way latency per chunk, order
  kept (``up`` = client → server). Applies to chunks read after the call.
- ``stats``: accepted / reset / active connections, bytes each way.

``await close()`` resets every connection and stops the listener; no task outlives it. Usable as
``async with TcpProxy(...) as proxy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass
from typing import Literal

__all__ = ["CutMode", "Direction", "ProxyStats", "TcpProxy"]

CutMode = Literal["reset", "blackhole"]
Direction = Literal["both", "up", "down"]

_CHUNK = 64 * 1024
_LINGER_RST = struct.pack("ii", 1, 0)


@dataclass
class ProxyStats:
    accepted: int = 0
    """Connections the listener accepted (forwarded, reset or held)."""
    forwarded: int = 0
    """Connections that reached the target."""
    reset: int = 0
    """Connections ended by a reset (a cut, ``close()``, or a failure on either side)."""
    upstream_failed: int = 0
    """Connections whose target could not be reached."""
    bytes_up: int = 0
    """Bytes delivered client → server."""
    bytes_down: int = 0
    """Bytes delivered server → client."""
    active: int = 0
    """Connections open right now."""


def _rst(writer: asyncio.StreamWriter | None) -> None:
    """Abort the connection so the peer gets a TCP RST, not a FIN."""
    if writer is None:
        return
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()


class _Conn:
    def __init__(
        self, proxy: TcpProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proxy = proxy
        self.client_reader = reader
        self.client_writer = writer
        self.server_writer: asyncio.StreamWriter | None = None
        self.ended = False

    def reset(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.proxy.stats.reset += 1
        _rst(self.client_writer)
        _rst(self.server_writer)

    def finish(self) -> None:
        if not self.ended:
            self.ended = True
            self.client_writer.transport.abort()
            if self.server_writer is not None:
                self.server_writer.transport.abort()

    async def run(self) -> None:
        proxy = self.proxy
        await proxy._flowing.wait()
        if proxy._mode == "reset":
            self.reset()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(
                proxy.target_host, proxy.target_port
            )
        except OSError:
            proxy.stats.upstream_failed += 1
            self.reset()
            return
        self.server_writer = server_writer
        if self.ended:  # reset while connecting
            _rst(server_writer)
            return
        proxy.stats.forwarded += 1
        up = asyncio.create_task(self._pump(self.client_reader, server_writer, "up"))
        down = asyncio.create_task(self._pump(server_reader, self.client_writer, "down"))
        try:
            await asyncio.gather(up, down)
        finally:
            for task in (up, down):
                task.cancel()
            await asyncio.gather(up, down, return_exceptions=True)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        """Read chunks, deliver each ``delay`` after it was read (order kept), pass EOF on."""
        proxy = self.proxy
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await proxy._flowing.wait()
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
                if direction == "up":
                    proxy.stats.bytes_up += len(data)
                else:
                    proxy.stats.bytes_down += len(data)

        sender = asyncio.create_task(deliver())
        try:
            while True:
                await proxy._flowing.wait()
                data = await reader.read(_CHUNK)
                queue.put_nowait((loop.time() + proxy._delay[direction], data))
                if not data:
                    break
            await sender
        except (ConnectionError, OSError):
            self.reset()
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self.stats = ProxyStats()
        self._mode: CutMode | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._delay: dict[str, float] = {"up": 0.0, "down": 0.0}
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening, reset every connection, wait for every task of the proxy."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self._flowing.set()
        for conn in list(self._conns):
            conn.reset()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (for a client that speaks HTTP/WebSocket to the target)."""
        return f"http://{self.host}:{self.port}"

    # --- controls ------------------------------------------------------------------------------

    @property
    def mode(self) -> CutMode | None:
        """``None`` while healthy, else how it is cut."""
        return self._mode

    def cut(self, mode: CutMode = "reset") -> None:
        """Partition the link (see the module docstring for the two modes)."""
        if mode not in ("reset", "blackhole"):
            raise ValueError(f"unknown cut mode {mode!r}")
        self._mode = mode
        if mode == "reset":
            for conn in list(self._conns):
                conn.reset()
            # New connections are reset by ``_Conn.run`` (flowing stays set).
            self._flowing.set()
        else:
            self._flowing.clear()

    def heal(self, *, reset_stalled: bool = False) -> None:
        """Forward again; connections stalled by a blackhole resume (or are reset)."""
        if reset_stalled and self._mode == "blackhole":
            for conn in list(self._conns):
                conn.reset()
        self._mode = None
        self._flowing.set()

    def set_delay(self, seconds: float, direction: Direction = "both") -> None:
        """One-way latency added to every chunk read from now on."""
        if seconds < 0:
            raise ValueError("delay must not be negative")
        for d in ("up", "down") if direction == "both" else (direction,):
            self._delay[d] = seconds

    # --- connections ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        conn = _Conn(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._conns.add(conn)
        self.stats.active += 1
        try:
            await conn.run()
        except asyncio.CancelledError:
            pass  # close(): the connection was reset
        except Exception:
            conn.reset()  # never let a connection's failure reach the event loop
        finally:
            conn.finish()
            self._conns.discard(conn)
            self._tasks.discard(task)
            self.stats.active -= 1
