"""``vk-hive serve`` as a real process against hostile clients: oversized WebSocket frames before
auth (memory), half-sent HTTP requests (header timeout) and stalled bodies (body timeout).

Memory is the hive process's resident set (``VmRSS`` of /proc/PID/status). The timeouts are set
short (1 s) because these tests are about them; everything else keeps its default.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from support.cluster import HiveProcess, hive_with_keys
from support.hive_client import HiveClient, ws_url
from support.hive_db import hive_template
from support.postgres import PostgresServer
from vk_shared.protocol import SUBPROTOCOLS
from vk_shared.status import NodeStatus
from vk_shared.wire import AuthResult, Heartbeat, HeartbeatAck

__all__ = ["hive_template"]

pytestmark = pytest.mark.asyncio

TIMEOUT_S = 1.0
FRAME = 16 * 1024 * 1024


@dataclass(frozen=True)
class Hive:
    process: HiveProcess
    key: str
    """A node API key for short sessions (always the same machine)."""
    other_key: str
    """A second node's key, for a session kept open across a test."""


@pytest.fixture(scope="module")
def hive(
    pg_server: PostgresServer, hive_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hive]:
    """A running ``vk-hive serve`` with 1 s header and body timeouts, and two node API keys."""
    with hive_with_keys(
        pg_server,
        hive_template,
        tmp_path_factory.mktemp("hardening"),
        "probe",
        "long-lived",
        prefix="vk_e2e_hardening",
        env={
            "VK_HIVE_HEADER_TIMEOUT_S": str(TIMEOUT_S),
            "VK_HIVE_BODY_TIMEOUT_S": str(TIMEOUT_S),
            "VK_HIVE_LOG_LEVEL": "warning",
        },
    ) as (process, (key, other)):
        yield Hive(process, key.secret, other.secret)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def _node_works(url: str, key: str) -> None:
    client = await HiveClient.connect(url)
    try:
        result = await client.auth(key, machine_id="probe")
        assert isinstance(result, AuthResult), result
    finally:
        await client.close()


async def _health_s(url: str) -> float:
    """How long ``GET /v1/health`` takes, timed by curl (its own process: the test's event loop
    is busy with the attacking clients)."""
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{time_total}",
        "--max-time",
        "30",
        url + "/v1/health",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    status, seconds = out.decode().split()
    assert status == "200", out
    return float(seconds)


async def _send_big_first_frame(url: str) -> int | None:
    """Open a node socket and send one 16 MiB frame as the first frame; the close code the hive
    answered with (None when the connection just broke)."""
    ws = await connect(
        ws_url(url),
        subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]
        max_size=None,
        compression=None,
        ping_interval=None,
        open_timeout=30,
        close_timeout=5,
    )
    try:
        with contextlib.suppress(ConnectionClosed, OSError):
            await asyncio.wait_for(ws.send(b"\x00" * FRAME), 30)
        with contextlib.suppress(ConnectionClosed, OSError, TimeoutError):
            await asyncio.wait_for(ws.recv(), 10)
    finally:
        with contextlib.suppress(Exception):
            await ws.close()
    return ws.close_code


async def _settled_rss(pid: int) -> float:
    await asyncio.sleep(0.5)
    return _rss_mib(pid)


async def test_a_16_mib_first_frame_is_refused_without_growing_the_hive(
    hive: Hive,
) -> None:
    """An unauthenticated socket whose first frame is 16 MiB is closed with 1009 (message too
    big) from the frame's header: the hive's RSS grows by less than 4 MiB."""
    process, key = hive.process, hive.key
    assert process.pid is not None
    await _node_works(process.url, key)  # warm up every code path of a session
    before = await _settled_rss(process.pid)
    code = await _send_big_first_frame(process.url)
    after = await _settled_rss(process.pid)
    print(f"\n[rss] one 16 MiB frame: {before:.1f} MiB -> {after:.1f} MiB (close {code})")
    assert code in (1009, None)
    assert after - before < 4.0
    await _node_works(process.url, key)


async def test_twenty_16_mib_first_frames_at_once_leave_memory_and_health_alone(
    hive: Hive,
) -> None:
    """Twenty unauthenticated sockets each sending a 16 MiB first frame at once: all refused,
    the RSS grows by less than 8 MiB, /v1/health answers within a second during and after,
    and a node still authenticates."""
    process, key = hive.process, hive.key
    assert process.pid is not None
    await _node_works(process.url, key)
    before = await _settled_rss(process.pid)
    attack = asyncio.gather(*(_send_big_first_frame(process.url) for _ in range(20)))
    during = await _health_s(process.url)
    codes = await attack
    after_s = await _health_s(process.url)
    after = await _settled_rss(process.pid)
    print(
        f"\n[rss] twenty 16 MiB frames: {before:.1f} MiB -> {after:.1f} MiB; "
        f"health {during:.3f} s during, {after_s:.3f} s after; closes {sorted(map(str, codes))}"
    )
    assert set(codes) <= {1009, None}
    assert after - before < 8.0
    assert during < 1.0
    assert after_s < 1.0
    await _node_works(process.url, key)


def _half_open(port: int, count: int) -> list[socket.socket]:
    """``count`` connections, each with a request line and one header sent, never finished."""
    out = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: hive\r\n")
        out.append(sock)
    return out


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Whether the peer closes ``sock`` within ``within`` seconds (what it still sends before,
    e.g. the rest of an earlier response, is read and dropped)."""
    deadline = time.monotonic() + within
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if sock.recv(65536) == b"":
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        pass
    return False


async def test_300_half_sent_requests_are_closed_by_the_header_timeout(
    hive: Hive,
) -> None:
    """300 connections that never finish their request headers — some after a first complete
    request on the same connection — are closed by the hive within the header timeout; a normal
    request and a node WebSocket work meanwhile, a node session open since before outlives the
    timeout, and the hive's open files return to where they were."""
    process, key = hive.process, hive.key
    assert process.pid is not None
    node = await HiveClient.connect(process.url)
    assert isinstance(await node.auth(hive.other_key, machine_id="long-lived"), AuthResult)
    fds_before = _open_fds(process.pid)
    half = _half_open(process.port, 290)
    for _ in range(10):  # keep-alive: a full request, its response, then half of another one
        sock = socket.create_connection(("127.0.0.1", process.port), timeout=5)
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: hive\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: hive\r\n")
        half.append(sock)
    try:
        assert _open_fds(process.pid) >= fds_before + 250
        assert await _health_s(process.url) < 1.0
        await _node_works(process.url, key)
        started = time.monotonic()
        closed = await asyncio.to_thread(
            lambda: [_closed_by_peer(s, TIMEOUT_S + 5 - (time.monotonic() - started)) for s in half]
        )
        assert all(closed), f"{closed.count(False)} of {len(half)} still open"
        assert time.monotonic() - started < TIMEOUT_S + 5
    finally:
        for sock in half:
            sock.close()
    for _ in range(100):
        if _open_fds(process.pid) <= fds_before + 5:
            break
        await asyncio.sleep(0.05)
    assert _open_fds(process.pid) <= fds_before + 5
    await node.send(Heartbeat(status=NodeStatus.ONLINE, running=0, capacity=1))
    await node.expect(HeartbeatAck)
    await node.close()


def _post_head(length: int) -> bytes:
    return (
        b"POST /v1/tokens/refresh HTTP/1.1\r\nHost: hive\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(length).encode() + b"\r\n\r\n"
    )


async def test_a_stalled_body_is_closed_and_a_slow_moving_one_is_served(
    hive: Hive,
) -> None:
    """A request whose body stops arriving is closed after the body timeout; a body that keeps
    arriving, slower than both timeouts in total but never idle that long, gets its answer."""
    process = hive.process
    body = b'{"refresh_token": "not-a-token"}'

    def stalled() -> bool:
        sock = socket.create_connection(("127.0.0.1", process.port), timeout=5)
        with sock:
            sock.sendall(_post_head(len(body)) + body[:10])
            return _closed_by_peer(sock, TIMEOUT_S + 5)

    def slow() -> bytes:
        sock = socket.create_connection(("127.0.0.1", process.port), timeout=10)
        with sock:
            sock.sendall(_post_head(len(body)))
            for i in range(0, len(body), 8):
                time.sleep(TIMEOUT_S * 0.5)
                sock.sendall(body[i : i + 8])
            return sock.recv(65536)

    started = time.monotonic()
    assert await asyncio.to_thread(stalled)
    assert time.monotonic() - started < TIMEOUT_S + 5
    answer = await asyncio.to_thread(slow)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
