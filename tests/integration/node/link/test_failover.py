"""Several hive URLs: the link fails over between them without waiting a backoff while one is up,
reconnects first to the hive whose healthy session dropped, sends its REST requests to the hive
its session is on, and shows the URL in use. Real hives (two on one database), a real refused
port, a real TCP proxy."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
import pytest_asyncio

from support.hive_server import HiveServer
from support.node_link import Node, World, wait_for
from support.tcpproxy import TcpProxy
from vk_node.link import HiveLink
from vk_node.link.identity import http_base_url
from vk_node.services.status import collect_status, render_status
from vk_node.store.repositories import shared_activity_cursors as cursors_repo
from vk_node.store.repositories import tasks as tasks_repo

NO_WAIT = {"link_backoff_initial_s": 30.0, "link_backoff_max_s": 60.0}
"""A backoff no test waits for: connecting within seconds proves that none was waited."""


@pytest.fixture(name="dead_url")
def _dead_url() -> Iterator[str]:
    """A port that refuses connections (bound, not listening) for as long as the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}"


@pytest_asyncio.fixture(name="second_hive")
async def _second_hive(world: World) -> AsyncIterator[HiveServer]:
    """Another hive process on the world's database (same organization, keys and projects)."""
    hive = HiveServer(world.dsn, **world.hive.overrides)
    await hive.start()
    try:
        yield hive
    finally:
        await hive.stop(force=False)


async def _connected_to(node: Node, url: str, *, sessions: int) -> None:
    async def there() -> bool:
        status = await node.link.status()
        return status.state == "connected" and status.sessions >= sessions

    await wait_for(there, within=10.0, what=f"session {sessions} on {url}")
    status = await node.link.status()
    assert status.hive_url == url
    assert node.link.sync.base_url == http_base_url(url)


async def _healthy(node: Node) -> None:
    """Wait until the session has outlasted the first backoff delay (a healthy session)."""
    initial = timedelta(seconds=node.settings.link_backoff_initial_s)

    async def healthy() -> bool:
        since = (await node.link.status()).connected_since
        return since is not None and datetime.now(UTC) - since > initial * 1.2

    await wait_for(healthy, what="the session to outlast the first backoff delay")


async def _backlog_drained(node: Node) -> None:
    async def drained() -> bool:
        return await node.backlog() == 0

    await wait_for(drained, what="the outbox to drain")


@pytest.mark.asyncio
async def test_a_dead_first_url_costs_no_backoff_and_status_shows_the_url_in_use(
    world: World, dead_url: str
) -> None:
    """First entry refused, second a live hive: the node connects through the second at once,
    and the status endpoint and `vk-node status` name it next to the list."""
    node = await world.node(hive_url=f"{dead_url}, {world.hive.url}", **NO_WAIT)
    await _connected_to(node, world.hive.url, sessions=1)
    assert node.link.stats.backoff_waits == 0
    status = await node.link.status()
    assert status.hive_urls == [dead_url, world.hive.url]
    assert status.last_error is None

    async def recorded() -> bool:
        report = await collect_status(node.settings)
        return report.link_state == "connected" and report.link_hive_url == world.hive.url

    await wait_for(recorded, what="the recorded URL")
    report = await collect_status(node.settings)
    assert report.hive_urls == [dead_url, world.hive.url]
    text = render_status(report)
    assert f"hive link:      configured: {dead_url}, {world.hive.url}" in text
    assert f"hive {world.hive.url}" in text


@pytest.mark.asyncio
async def test_snapshots_come_from_the_hive_the_session_is_on(world: World, dead_url: str) -> None:
    """A resync after connecting through the second URL pulls the snapshot over REST from that
    hive (the first entry refuses every connection, so a pull sent there would fail)."""
    node = await world.node(hive_url=f"{dead_url},{world.hive.url}", **NO_WAIT)
    await node.ready()
    await node.link.close()
    async with node.store.transaction() as conn:
        await cursors_repo.delete(conn, world.swarm_project_id)
        await cursors_repo.upsert(conn, world.swarm_project_id, 1_000_000)
    node.link = HiveLink(node.store, node.settings, node.executor)
    await node.link.start()

    async def resynced() -> bool:
        return node.link.stats.resyncs == 1

    await wait_for(resynced, within=10.0, what="the snapshot to be pulled and applied")
    await _connected_to(node, world.hive.url, sessions=1)


@pytest.mark.asyncio
async def test_a_stopped_hive_fails_over_to_the_next_and_back(
    world: World, second_hive: HiveServer
) -> None:
    """Two hives on one database: stopping the one in use moves the session to the other
    without a backoff wait; writes made meanwhile reach the hive through it; when that one stops
    too and the first is back, the node returns to the first, again without waiting."""
    first, second = world.hive, second_hive
    node = await world.node(
        hive_url=f"{first.url},{second.url}", link_backoff_initial_s=1.0, link_backoff_max_s=30.0
    )
    await node.ready()
    await _connected_to(node, first.url, sessions=1)
    await _healthy(node)

    await first.stop()
    await _connected_to(node, second.url, sessions=2)
    async with node.store.transaction() as conn:
        await tasks_repo.create(conn, uuid4(), project_id=node.project_id, title="via the second")
    await _backlog_drained(node)
    await _healthy(node)

    await first.start()
    await second.stop()
    await _connected_to(node, first.url, sessions=3)
    async with node.store.transaction() as conn:
        await tasks_repo.create(conn, uuid4(), project_id=node.project_id, title="back on first")
    await _backlog_drained(node)
    assert node.link.stats.backoff_waits == 0
    r = await world.http.get(f"/v1/tasks?project_id={world.swarm_project_id}")
    assert r.status_code == 200, r.text
    assert {"via the second", "back on first"} <= {t["title"] for t in r.json()}


@pytest.mark.asyncio
async def test_after_a_healthy_session_drops_the_same_hive_is_tried_first(
    world: World, second_hive: HiveServer
) -> None:
    """URLs [second, proxy to first]; with the second down the node settles on the proxy. Once
    the session there was healthy, its connection is cut while both hives accept: the node
    reconnects through the proxy again (it does not rotate on to the second)."""
    await second_hive.stop()
    async with TcpProxy("127.0.0.1", world.hive.port) as proxy:
        node = await world.node(
            hive_url=f"{second_hive.url},{proxy.url}",
            link_backoff_initial_s=0.2,
            link_backoff_max_s=0.5,
        )
        await _connected_to(node, proxy.url, sessions=1)
        await _healthy(node)
        await second_hive.start()
        proxy.cut("reset")
        proxy.heal()
        await _connected_to(node, proxy.url, sessions=2)
        await node.link.close()


@pytest.mark.asyncio
async def test_a_refused_key_waits_the_maximum_with_several_urls(
    world: World, dead_url: str
) -> None:
    """A refused key ends the round: the next attempt is the maximum delay away."""
    node = await world.node(
        api_key="vk_not-a-real-key",
        hive_url=f"{world.hive.url},{dead_url}",
        link_backoff_initial_s=1.0,
        link_backoff_max_s=30.0,
    )

    async def refused() -> bool:
        status = await node.link.status()
        return status.state == "disconnected" and "auth" in (status.last_error or "")

    await wait_for(refused, what="the refusal")
    status = await node.link.status()
    assert status.hive_url == world.hive.url
    assert status.backoff_until is not None
    wait_s = (status.backoff_until - datetime.now(UTC)).total_seconds()
    assert 20 < wait_s <= 30
