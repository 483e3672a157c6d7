"""Connecting to a real hive: auth, link state, reconnect with backoff after the hive restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from support.node_link import Node, World, wait_for
from vk_node.app import create_app
from vk_node.services.status import StatusReport, collect_status, render_status
from vk_node.settings import NodeSettings
from vk_node.store.repositories import link_state as link_state_repo
from vk_node.store.repositories import tasks as tasks_repo


@pytest.mark.asyncio
async def test_node_authenticates_and_reports_connected(world: World) -> None:
    """A node with a valid API key authenticates, learns its node id and records `connected`."""
    node = await world.node()
    await asyncio.wait_for(node.link.connected.wait(), 10)
    status = await node.link.status()
    assert status.state == "connected"
    assert status.node_id is not None
    assert status.organization_id == world.org_id

    async def recorded() -> bool:
        async with node.store.read() as conn:
            row = await link_state_repo.get(conn)
        return row is not None and row.state == "connected" and row.node_id == status.node_id

    await wait_for(recorded, what="the persisted link state")


@pytest.mark.asyncio
async def test_node_reconnects_after_the_hive_restarts_and_resumes_its_outbox(world: World) -> None:
    """With the hive down the link backs off (state disconnected, next attempt recorded); writes
    made meanwhile reach the hive once it is back on the same port."""
    node = await world.node()
    await node.ready()
    await world.hive.stop()

    async def disconnected() -> bool:
        status = await node.link.status()
        return status.state != "connected" and status.backoff_until is not None

    await wait_for(disconnected, what="the link to notice the hive is gone")
    async with node.store.transaction() as conn:
        await tasks_repo.create(conn, uuid4(), project_id=node.project_id, title="offline write")
    assert await node.backlog() == 1
    await world.hive.start()
    await node.ready()

    async def drained() -> bool:
        return await node.backlog() == 0

    await wait_for(drained, what="the offline write to reach the hive")
    assert node.link.stats.sessions == 2


@pytest.mark.asyncio
async def test_a_refused_api_key_backs_off_to_the_maximum_delay(world: World) -> None:
    """An auth failure is logged and recorded as the last error; the retry waits the maximum."""
    node = await world.node(api_key="vk_not-a-real-key", link_backoff_max_s=30.0)

    async def refused() -> bool:
        status = await node.link.status()
        return status.last_error is not None and "auth" in status.last_error

    await wait_for(refused, what="the refusal")
    status = await node.link.status()
    assert status.state == "disconnected"
    assert status.backoff_until is not None
    wait_s = (status.backoff_until - datetime.now(UTC)).total_seconds()
    assert 20 < wait_s <= 30


@pytest.mark.asyncio
async def test_status_command_and_endpoint_show_the_link(world: World) -> None:
    """`vk-node status` (store file only) and GET /api/link/status report the live link."""
    node = await world.node()
    await node.ready()

    async def recorded() -> StatusReport | None:
        report = await collect_status(node.settings)
        return report if report.link_state == "connected" else None

    report = await wait_for(recorded, what="the recorded state")
    text = render_status(report)
    assert "link state:     connected; since" in text
    assert f"hive {world.hive.url}" in text
    status = await node.link.status()
    assert str(status.node_id) in text
    app = create_app(node_settings_standalone(node))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:3000") as client:
        r = await client.get("/api/link/status")
    assert r.status_code == 200
    assert r.json()["state"] == "standalone"
    assert r.json()["hive_urls"] == []


def node_settings_standalone(node: Node) -> NodeSettings:
    return msgspec.structs.replace(
        node.settings, hive_url="", data_dir=node.settings.data_dir + "-sa"
    )
