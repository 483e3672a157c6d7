"""The node's ``GET /api/metrics`` and ``GET /api/health``, standalone and linked to a real hive."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from support.metrics import Samples
from support.node_link import World, git_repo, wait_for
from vk_node import __version__
from vk_node.app import create_app
from vk_node.context import NodeContext
from vk_node.metrics import LINK_STATES
from vk_node.settings import load_settings
from vk_node.store import outbox

pytestmark = pytest.mark.asyncio

Client = AsyncTestClient[Litestar]


async def _scrape(client: Client) -> Samples:
    r = await client.get("/api/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return Samples(r.text)


async def _unacked(ctx: NodeContext) -> int:
    """The store's unacked ops, read over a connection of its own (the app runs in the test
    client's event loop, the store's connections belong to it)."""
    async with aiosqlite.connect(ctx.settings.db_path) as conn:
        return await outbox.backlog_count(conn)


def _assert_link(m: Samples, state: str) -> None:
    for name in LINK_STATES:
        assert m.value("vk_node_link_state", state=name) == (1 if name == state else 0)
    assert m.value("vk_node_link_connected") == (1 if state == "connected" else 0)


async def test_standalone_node_reports_runs_log_lines_and_an_empty_outbox(tmp_path: Path) -> None:
    """A standalone node reports link state standalone (not connected), an outbox backlog equal to
    the store's unacked count (0), a running script as one running process and its captured
    output lines; /api/health adds the link state and the store status."""
    env = {"VK_NODE_DATA_DIR": str(tmp_path / "data"), "VK_NODE_EXECUTORS": "SCRIPT"}
    app = create_app(load_settings(env=env).settings)
    ctx: NodeContext = app.state.node
    repo = git_repo(tmp_path / "repo")
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:3000") as client:
        health = (await client.get("/api/health")).json()
        assert health["link"] == "standalone"
        assert health["store"] == "ok"
        assert health["outbox_backlog"] == 0
        m = await _scrape(client)
        assert m.value("vk_node_info", version=__version__) == 1
        _assert_link(m, "standalone")
        assert m.value("vk_node_outbox_backlog") == await _unacked(ctx) == 0
        assert m.value("vk_node_outbox_oldest_unacked_age_seconds") == 0
        assert m.value("vk_node_running_processes") == 0
        assert m.value("vk_node_log_lines_total") == 0
        assert m.value("vk_node_ops_acked_total") == 0

        project = (
            await client.post("/api/projects", json={"name": "p", "git_repo_path": str(repo)})
        ).json()
        script = "echo one; echo two; echo three >&2; sleep 30"
        task = (
            await client.post(
                "/api/tasks",
                json={"project_id": project["id"], "title": "t", "description": script},
            )
        ).json()
        body = {"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"}
        attempt = (await client.post("/api/task-attempts", json=body)).json()

        async def running() -> Samples | None:
            m = await _scrape(client)
            busy = m.value("vk_node_running_processes") == 1
            return m if busy and m.value("vk_node_log_lines_total") >= 3 else None

        await wait_for(running, what="the script to run and print")
        r = await client.post(f"/api/task-attempts/{attempt['id']}/stop")
        assert r.status_code == 200

        async def stopped() -> Samples | None:
            m = await _scrape(client)
            return m if m.value("vk_node_running_processes") == 0 else None

        m = await wait_for(stopped, what="the run to stop")
        assert m.value("vk_node_log_lines_total") >= 3
        assert m.value("vk_node_outbox_backlog") == await _unacked(ctx)


async def test_linked_node_reports_connection_acks_and_backlog(
    world: World, tmp_path: Path
) -> None:
    """A node linked to a hive reports link state connected and its acked ops with an empty
    backlog; after the hive stops it reports not connected and a backlog equal to the store's
    unacked count, with the age of the oldest op."""
    settings = world.node_settings(api_key=await world.api_key())
    app = create_app(settings)
    ctx: NodeContext = app.state.node
    repo = git_repo(tmp_path / "repo")
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:3000") as client:
        assert ctx.link is not None
        await asyncio.wait_for(ctx.link.connected.wait(), 10)
        project = (
            await client.post("/api/projects", json={"name": "p", "git_repo_path": str(repo)})
        ).json()
        r = await client.post(
            f"/api/projects/{project['id']}/link",
            json={"swarm_project_id": str(world.swarm_project_id)},
        )
        assert r.status_code in (200, 201), r.text
        for title in ("one", "two"):
            r = await client.post("/api/tasks", json={"project_id": project["id"], "title": title})
            assert r.status_code == 201, r.text

        async def acked() -> Samples | None:
            m = await _scrape(client)
            done = m.value("vk_node_ops_acked_total") >= 2
            return m if done and m.value("vk_node_outbox_backlog") == 0 else None

        m = await wait_for(acked, what="the hive to ack the ops")
        _assert_link(m, "connected")
        assert await _unacked(ctx) == 0
        assert m.value("vk_node_link_sessions_total") == 1
        assert (await client.get("/api/health")).json()["link"] == "connected"

        await world.hive.stop()
        await wait_for(lambda: _not_connected(client), what="the link to notice the hive is gone")
        r = await client.post("/api/tasks", json={"project_id": project["id"], "title": "later"})
        assert r.status_code == 201, r.text
        m = await _scrape(client)
        assert m.value("vk_node_link_connected") == 0
        assert m.value("vk_node_link_state", state="connected") == 0
        assert m.value("vk_node_outbox_backlog") == await _unacked(ctx) == 1
        assert 0 <= m.value("vk_node_outbox_oldest_unacked_age_seconds") < 60
        health = (await client.get("/api/health")).json()
        assert health["link"] in ("connecting", "disconnected")
        assert health["outbox_backlog"] == 1


async def _not_connected(client: Client) -> bool:
    return (await _scrape(client)).value("vk_node_link_connected") == 0
