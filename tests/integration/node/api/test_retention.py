"""Node retention on a real SQLite store with real runs: logs of runs finished too long ago go,
in batches, while recent ones and the process rows stay; old archived done tasks go with their
images; unused uploads go after their grace; the periodic job runs from the lifespan and shows
in /api/metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from litestar import Litestar

from support.metrics import Samples
from support.uvicorn_server import serving
from vk_node.app import create_app
from vk_node.settings import NodeSettings

from .conftest import run_script_attempt, settings_with
from .test_images import node_ctx, png, upload

Client = httpx.AsyncClient

pytestmark = pytest.mark.asyncio


@pytest.fixture
def client(served: Client) -> Client:
    """The app over a real socket in the test's loop (the test also reads the store)."""
    return served


@pytest.fixture
def node_settings(tmp_path: Path) -> NodeSettings:
    return settings_with(
        tmp_path,
        VK_NODE_LOG_RETENTION_DAYS="30",
        VK_NODE_ARCHIVED_TASK_RETENTION_DAYS="7",
        VK_NODE_RETENTION_BATCH="2",
        VK_NODE_RETENTION_FIRST_DELAY_S="3600",  # the test runs the job itself
    )


async def _sql(app: Litestar, sql: str, *params: Any) -> None:
    async with node_ctx(app).store.transaction() as conn:
        await conn.execute(sql, params)


async def _count(app: Litestar, sql: str, *params: Any) -> int:
    async with node_ctx(app).store.read() as conn, conn.execute(sql, params) as cur:
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _ran(client: Client, project_id: str, title: str) -> dict[str, Any]:
    """A task whose SCRIPT attempt printed five lines and finished."""
    task = (
        await client.post(
            "/api/tasks",
            json={"project_id": project_id, "title": title, "description": "seq 1 5"},
        )
    ).json()
    _, run = await run_script_attempt(client, task["id"])
    assert run["status"] == "completed"
    return {"task": task, "process_id": run["id"]}


async def _entries(client: Client, process_id: str) -> int:
    logs = (await client.get(f"/api/execution-processes/{process_id}/logs")).json()
    return len(logs["entries"])


async def test_one_run_deletes_old_logs_archived_tasks_and_unused_images(
    client: Client, app: Litestar, git_repo: Path
) -> None:
    """Logs of a run finished 40 days ago are deleted (in batches of 2), a recent run's stay,
    both process rows stay; a done task archived 10 days ago is deleted with its image while one
    archived yesterday stays; an unattached upload two days old goes, a fresh one stays."""
    project = (
        await client.post("/api/projects", json={"name": "p", "git_repo_path": str(git_repo)})
    ).json()
    old = await _ran(client, project["id"], "old")
    recent = await _ran(client, project["id"], "recent")
    assert await _entries(client, old["process_id"]) >= 5
    kept_entries = await _entries(client, recent["process_id"])
    await _sql(
        app,
        "UPDATE execution_processes SET completed_at = datetime('now', '-40 days') "
        "WHERE id = (SELECT id FROM execution_processes ORDER BY created_at LIMIT 1)",
    )

    archived = {}
    for title, days in (("gone", 10), ("kept", 1)):
        task = (
            await client.post("/api/tasks", json={"project_id": project["id"], "title": title})
        ).json()
        image = (await upload(client, png(days))).json()
        await client.post(f"/api/tasks/{task['id']}/images", json={"image_ids": [image["id"]]})
        for status in ("inprogress", "done"):
            r = await client.patch(f"/api/tasks/{task['id']}", json={"status": status})
            assert r.status_code == 200, r.text
        assert (await client.post(f"/api/tasks/{task['id']}/archive")).status_code == 200
        await _sql(
            app,
            "UPDATE tasks SET archived_at = datetime('now', ?) WHERE title = ?",
            f"-{days} days",
            title,
        )
        archived[title] = (task, image)
    stale = (await upload(client, png(100))).json()
    fresh = (await upload(client, png(101))).json()
    await _sql(
        app,
        "UPDATE images SET created_at = datetime('now', '-2 days') WHERE hash = ?",
        stale["hash"],
    )

    ctx = node_ctx(app)
    assert ctx.retention is not None
    report = await ctx.retention.run_once()

    assert await _entries(client, old["process_id"]) == 0
    assert await _entries(client, recent["process_id"]) == kept_entries
    assert await _count(app, "SELECT COUNT(*) FROM execution_processes") == 2
    assert report.log_entries >= 5
    assert report.tasks == 1
    assert report.images == 2  # the gone task's image and the stale upload
    gone_task, gone_image = archived["gone"]
    kept_task, kept_image = archived["kept"]
    assert (await client.get(f"/api/tasks/{gone_task['id']}")).status_code == 404
    assert (await client.get(f"/api/tasks/{kept_task['id']}")).status_code == 200
    images_dir = ctx.settings.images_dir
    for image, present in ((gone_image, False), (kept_image, True), (stale, False), (fresh, True)):
        r = await client.get(f"/api/images/{image['id']}")
        assert r.status_code == (200 if present else 404), image
        assert (images_dir / image["file_path"]).exists() is present

    m = Samples((await client.get("/api/metrics")).text)
    assert m.value("vk_node_retention_runs_total") == 1
    assert m.value("vk_node_retention_deleted_total", kind="tasks") == 1
    assert m.value("vk_node_retention_deleted_total", kind="log_entries") == report.log_entries
    assert m.value("vk_node_retention_last_run_timestamp_seconds") > 0

    again = await ctx.retention.run_once()
    assert (again.log_entries, again.tasks, again.images) == (0, 0, 0)


async def test_the_lifespan_runs_retention_periodically(tmp_path: Path) -> None:
    """With no first delay the node's lifespan runs the job on its own (seen in /api/metrics)
    and stops it on shutdown."""
    app = create_app(
        settings_with(
            tmp_path, VK_NODE_RETENTION_FIRST_DELAY_S="0", VK_NODE_RETENTION_INTERVAL_S="0.05"
        )
    )
    async with (
        serving(app) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        runs = 0.0
        for _ in range(500):
            runs = Samples((await client.get("/api/metrics")).text).value(
                "vk_node_retention_runs_total"
            )
            if runs >= 2:
                break
            await asyncio.sleep(0.01)
        assert runs >= 2
        job = node_ctx(app).retention
        assert job is not None
        assert job.failures == 0
    assert node_ctx(app).retention is None


async def test_logs_the_hive_has_not_acknowledged_are_kept(
    client: Client, app: Litestar, git_repo: Path
) -> None:
    """In a linked project (no hive reachable), an old run whose logs.append ops are still
    unacknowledged keeps its log; once the hive has acknowledged them, retention deletes it."""
    project = (
        await client.post("/api/projects", json={"name": "p", "git_repo_path": str(git_repo)})
    ).json()
    r = await client.post(
        f"/api/projects/{project['id']}/link", json={"swarm_project_id": str(uuid4())}
    )
    assert r.status_code == 200, r.text
    run = await _ran(client, project["id"], "linked")
    await _sql(app, "UPDATE execution_processes SET completed_at = datetime('now', '-40 days')")
    assert await _count(app, "SELECT COUNT(*) FROM node_outbox WHERE op_type = 'logs.append'")
    retention = node_ctx(app).retention
    assert retention is not None

    assert (await retention.run_once()).log_entries == 0
    assert await _entries(client, run["process_id"]) >= 5
    await _sql(app, "UPDATE node_outbox SET acked_at = datetime('now')")
    assert (await retention.run_once()).log_entries >= 5
    assert await _entries(client, run["process_id"]) == 0
