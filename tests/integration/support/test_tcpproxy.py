"""The fault-injection TCP proxy of ``tests/support/tcpproxy.py`` against a real echo server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from support.tcpproxy import TcpProxy


class Echo:
    """A TCP echo server on 127.0.0.1:0 that also records what it received."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while data := await reader.read(65536):
                self.received += data
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()


@pytest_asyncio.fixture
async def echo() -> AsyncIterator[Echo]:
    server = Echo()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest_asyncio.fixture
async def proxy(echo: Echo) -> AsyncIterator[TcpProxy]:
    async with TcpProxy("127.0.0.1", echo.port) as p:
        yield p
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() if "TcpProxy" in repr(t) or "_Conn" in repr(t)]
    assert not leftover, leftover


async def _open(proxy: TcpProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, within: float = 2.0
) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), within)


def _close(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


@pytest.mark.asyncio
async def test_forwards_both_ways_and_counts_bytes(proxy: TcpProxy, echo: Echo) -> None:
    """Bytes go through the proxy unchanged in both directions and are counted per direction."""
    reader, writer = await _open(proxy)
    try:
        assert await _roundtrip(reader, writer, b"hello") == b"hello"
        big = bytes(range(256)) * 4096  # 1 MiB: several chunks, order kept
        assert await _roundtrip(reader, writer, big, within=10) == big
    finally:
        _close(writer)
    assert proxy.stats.accepted == proxy.stats.forwarded == 1
    assert proxy.stats.bytes_up == proxy.stats.bytes_down == 5 + len(big)
    assert bytes(echo.received) == b"hello" + big


@pytest.mark.asyncio
async def test_reset_cut_resets_open_and_new_connections_until_healed(proxy: TcpProxy) -> None:
    """cut('reset') aborts open connections with RST and resets new ones; heal() forwards again."""
    reader, writer = await _open(proxy)
    await _roundtrip(reader, writer, b"x")
    proxy.cut("reset")
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await _roundtrip(reader, writer, b"y")
    _close(writer)
    reader2, writer2 = await _open(proxy)  # the kernel accepts; the proxy resets at once
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError)):
        await _roundtrip(reader2, writer2, b"z")
    _close(writer2)
    assert proxy.stats.reset >= 2
    proxy.heal()
    reader3, writer3 = await _open(proxy)
    try:
        assert await _roundtrip(reader3, writer3, b"again") == b"again"
    finally:
        _close(writer3)


@pytest.mark.asyncio
async def test_blackhole_stalls_without_loss_and_heal_delivers(proxy: TcpProxy, echo: Echo) -> None:
    """cut('blackhole') delivers nothing and closes nothing; after heal() the stalled bytes arrive
    in order, and a connection opened during the cut is forwarded."""
    reader, writer = await _open(proxy)
    await _roundtrip(reader, writer, b"a")
    proxy.cut("blackhole")
    writer.write(b"during-the-cut")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(1), 0.3)
    assert bytes(echo.received) == b"a"
    reader2, writer2 = await _open(proxy)
    writer2.write(b"new")
    await writer2.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader2.readexactly(3), 0.2)
    assert proxy.stats.forwarded == 1
    proxy.heal()
    try:
        assert await asyncio.wait_for(reader.readexactly(14), 2) == b"during-the-cut"
        assert await asyncio.wait_for(reader2.readexactly(3), 2) == b"new"
    finally:
        _close(writer)
        _close(writer2)


@pytest.mark.asyncio
async def test_heal_can_reset_stalled_connections(proxy: TcpProxy) -> None:
    """heal(reset_stalled=True) ends the connections a blackhole stalled; new ones work."""
    reader, writer = await _open(proxy)
    await _roundtrip(reader, writer, b"a")
    proxy.cut("blackhole")
    proxy.heal(reset_stalled=True)
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await _roundtrip(reader, writer, b"b")
    _close(writer)
    reader2, writer2 = await _open(proxy)
    try:
        assert await _roundtrip(reader2, writer2, b"c") == b"c"
    finally:
        _close(writer2)


@pytest.mark.asyncio
async def test_delay_adds_latency_per_direction_and_keeps_order(proxy: TcpProxy) -> None:
    """set_delay adds one-way latency (both legs on a round trip) and never reorders chunks."""
    reader, writer = await _open(proxy)
    try:
        proxy.set_delay(0.15, "up")
        proxy.set_delay(0.1, "down")
        started = time.monotonic()
        for i in range(5):
            writer.write(b"%d" % i)
            await writer.drain()
            await asyncio.sleep(0.01)
        got = await asyncio.wait_for(reader.readexactly(5), 3)
        elapsed = time.monotonic() - started
        assert got == b"01234"
        assert elapsed >= 0.25
        proxy.set_delay(0)
        started = time.monotonic()
        await _roundtrip(reader, writer, b"fast")
        assert time.monotonic() - started < 0.2
    finally:
        _close(writer)
    with pytest.raises(ValueError, match="negative"):
        proxy.set_delay(-1)


@pytest.mark.asyncio
async def test_unreachable_target_resets_the_client() -> None:
    """A target that refuses connections shows up as a reset client and an upstream failure."""
    placeholder = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = placeholder.sockets[0].getsockname()[1]
    placeholder.close()
    await placeholder.wait_closed()
    async with TcpProxy("127.0.0.1", port) as proxy:
        reader, writer = await _open(proxy)
        with contextlib.suppress(ConnectionError):
            writer.write(b"x")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(1), 2) == b""
        _close(writer)
        for _ in range(100):
            if proxy.stats.upstream_failed:
                break
            await asyncio.sleep(0.01)
        assert proxy.stats.upstream_failed == 1


@pytest.mark.asyncio
async def test_close_resets_open_connections_and_leaves_no_tasks(echo: Echo) -> None:
    """close() with connections open (one of them stalled) ends them all and every proxy task."""
    before = set(asyncio.all_tasks())
    proxy = await TcpProxy("127.0.0.1", echo.port).start()
    reader, writer = await _open(proxy)
    await _roundtrip(reader, writer, b"a")
    proxy.cut("blackhole")
    _, writer2 = await _open(proxy)
    await asyncio.sleep(0.05)
    assert proxy.stats.active == 2
    await proxy.close()
    assert proxy.stats.active == 0
    with contextlib.suppress(ConnectionError):
        assert await asyncio.wait_for(reader.read(10), 2) == b""
    _close(writer)
    _close(writer2)
    await asyncio.sleep(0)
    assert set(asyncio.all_tasks()) - before == set()
