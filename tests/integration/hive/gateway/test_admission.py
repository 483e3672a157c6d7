"""Admission to /v1/nodes/ws before any frame: auth attempts per source address and the cap on
sockets waiting to authenticate, with real WebSocket clients against a real hive."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from support.hive_client import HiveClient, ws_url
from vk_hive.settings import HiveSettings
from vk_shared.protocol import SUBPROTOCOLS
from vk_shared.wire import AuthResult

from .conftest import World, running_world

pytestmark = pytest.mark.asyncio


async def _open(world: World, *, local_host: str | None = None) -> ClientConnection:
    """A raw socket to the gateway (handshake only: no frame sent)."""
    kwargs: dict[str, Any] = {"local_addr": (local_host, 0)} if local_host else {}
    return await connect(
        ws_url(world.url),
        subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]
        open_timeout=10,
        ping_interval=None,
        **kwargs,
    )


async def _refused(world: World, *, local_host: str | None = None) -> InvalidStatus:
    try:
        ws = await _open(world, local_host=local_host)
    except InvalidStatus as refused:
        return refused
    await ws.close()
    raise AssertionError("the handshake was accepted")


async def _auth_once(world: World, key: str, *, machine_id: str = "m-1") -> None:
    client = await HiveClient.connect(world.url)
    try:
        result = await client.auth(key, machine_id=machine_id)
        assert isinstance(result, AuthResult), result
    finally:
        await client.close()


def _check_refusal(refused: InvalidStatus, status: int) -> int:
    """The refusal's status, problem details body and Retry-After (returned)."""
    response = refused.response
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    body = json.loads(response.body or b"")
    assert body["status"] == status
    assert body["code"] == {429: "rate_limited", 503: "unavailable"}[status]
    assert "retry after" in body["detail"]
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


async def test_auth_attempts_beyond_the_limit_are_refused_with_429_and_retry_after(
    hive_dsn: str,
) -> None:
    """An address gets ``node_auth_rate_limit`` connections (each one auth attempt, failed or
    not); the next handshake is refused with 429, Retry-After and a JSON error, before any
    frame; another address is not affected."""
    async with running_world(hive_dsn, node_auth_rate_limit=3, node_auth_rate_window_s=60) as w:
        key = await w.api_key()
        await _auth_once(w, key)
        bad = await HiveClient.connect(w.url)
        assert not isinstance(await bad.auth("f" * 64), AuthResult)
        await bad.close()
        await _auth_once(w, key)
        retry_after = _check_refusal(await _refused(w), 429)
        assert 15 <= retry_after <= 20  # one attempt comes back every 60/3 s
        other = await _open(w, local_host="127.0.0.2")
        await other.close()
        metrics = (await w.http.get("/metrics")).text
        assert 'vk_hive_node_connections_refused_total{status="429"} 1.0' in metrics


async def test_a_refused_address_is_admitted_again_after_retry_after(hive_dsn: str) -> None:
    """After waiting the Retry-After it was given, a refused node authenticates."""
    async with running_world(hive_dsn, node_auth_rate_limit=2, node_auth_rate_window_s=2) as w:
        key = await w.api_key()
        await _auth_once(w, key)
        await _auth_once(w, key)
        retry_after = _check_refusal(await _refused(w), 429)
        await asyncio.sleep(retry_after)
        await _auth_once(w, key)


async def test_with_the_default_limit_a_node_reconnecting_repeatedly_is_never_refused(
    hive_dsn: str,
) -> None:
    """Default limits: a node that connects, authenticates and drops twenty times in a row (far
    faster than a real node's backoff allows) is admitted every time."""
    defaults = HiveSettings()
    async with running_world(
        hive_dsn,
        node_auth_rate_limit=defaults.node_auth_rate_limit,
        node_auth_rate_window_s=defaults.node_auth_rate_window_s,
        node_auth_max_pending=defaults.node_auth_max_pending,
    ) as w:
        key = await w.api_key()
        for _ in range(20):
            await _auth_once(w, key)


async def test_sockets_over_the_pending_cap_are_refused_with_503_before_any_frame(
    hive_dsn: str,
) -> None:
    """With ``node_auth_max_pending`` sockets connected and silent, the next handshake is refused
    (503, Retry-After); authenticated sessions do not count, and a slot frees as soon as a
    waiting socket goes away."""
    async with running_world(hive_dsn, node_auth_max_pending=2, auth_timeout_s=30) as w:
        nodes = [await w.node(link=False) for _ in range(3)]  # authenticated: never pending
        waiting = [await _open(w), await _open(w)]
        _check_refusal(await _refused(w), 503)
        _check_refusal(await _refused(w, local_host="127.0.0.2"), 503)
        await waiting.pop().close()
        for _ in range(100):
            if w.gateway.admission.pending < 2:
                break
            await asyncio.sleep(0.02)
        key = await w.api_key()
        await _auth_once(w, key, machine_id=f"m-{uuid.uuid4().hex[:6]}")
        for node in nodes:
            await node.client.close()
        for ws in waiting:
            await ws.close()
        metrics = (await w.http.get("/metrics")).text
        assert 'vk_hive_node_connections_refused_total{status="503"} 2.0' in metrics


async def test_a_silent_socket_frees_its_slot_at_the_auth_timeout(hive_dsn: str) -> None:
    """A socket that never sends ``auth`` holds its pending slot only until the auth timeout
    closes it; then a new socket is admitted."""
    async with running_world(hive_dsn, node_auth_max_pending=1, auth_timeout_s=0.5) as w:
        silent = await _open(w)
        _check_refusal(await _refused(w), 503)
        await asyncio.wait_for(silent.wait_closed(), 5)
        for _ in range(100):
            if w.gateway.admission.pending == 0:
                break
            await asyncio.sleep(0.02)
        await _auth_once(w, await w.api_key())
