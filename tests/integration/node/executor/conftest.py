"""A node app with its executor on real SQLite, real git and real processes, driven over ASGI.

``client`` runs the app's lifespan on the test's own event loop; ``hx`` (a :class:`Harness`)
creates projects/tasks/attempts through the REST API and waits for
runs to end by polling the store. Durations come from settings (short grace and drain periods), so
nothing sleeps for long. Every process a run starts is killed by the app's shutdown
(``ExecutorService.close``) at the end of the test.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import pytest_asyncio
from litestar import Litestar

from vk_node.app import create_app
from vk_node.context import NodeContext
from vk_node.executor.service import ExecutorService
from vk_node.settings import NodeSettings, load_settings
from vk_node.store import Store
from vk_node.store.models import ExecutionProcess, LogEntry
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import log_entries as logs_repo

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _git(repo: Path | str, *args: str) -> str:
    """Run git in ``repo`` and return its stripped stdout (raises on failure)."""
    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


@pytest.fixture
def git() -> Callable[..., str]:
    """``git(repo, *args)``: git's stripped stdout (raises on failure)."""
    return _git


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real repository with one commit (``README``) on ``main``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("hello\n")
    _git(repo, "add", "README")
    _git(repo, "commit", "-q", "-m", "init")
    return repo


@pytest.fixture
def node_env(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """Node settings (as environment) with short durations; a test overrides values with
    ``@pytest.mark.parametrize("node_env", [{...}], indirect=True)``."""
    defaults = {
        "VK_NODE_DATA_DIR": str(tmp_path / "data"),
        "VK_NODE_EXECUTORS": "SCRIPT",
        "VK_NODE_STOP_GRACE_S": "1",
        "VK_NODE_EXIT_DRAIN_S": "0.2",
        "VK_NODE_LOG_BATCH_INTERVAL_S": "0.05",
        "VK_NODE_MAX_CONCURRENT": "4",
    }
    return defaults | getattr(request, "param", {})


@pytest.fixture
def node_settings(node_env: dict[str, str]) -> NodeSettings:
    return load_settings(env=node_env).settings


@pytest.fixture
def app(node_settings: NodeSettings) -> Litestar:
    return create_app(node_settings)


@pytest_asyncio.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan and requests run on the TEST's event loop (so the test may use the
    store and the executor directly); requests go through httpx's ASGI transport."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def serve() -> None:  # the lifespan is entered and exited in this one task
        async with app.lifespan():
            started.set()
            await stop.wait()

    server = asyncio.create_task(serve())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait([server, ready], return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        ready.cancel()
        server.result()  # startup failed: raise its error
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:3000", timeout=30
        ) as test_client:
            yield test_client
    finally:
        stop.set()
        await server


class Harness:
    """REST helpers and waits over one running node app."""

    def __init__(self, client: httpx.AsyncClient, app: Litestar) -> None:
        self.client = client
        self.ctx: NodeContext = app.state.node

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def executor(self) -> ExecutorService:
        return self.ctx.executor

    async def ok(self, method: str, url: str, status: int = 200, **kw: Any) -> Any:
        r = await self.client.request(method, "/api" + url, **kw)
        assert r.status_code == status, f"{method} {url}: {r.status_code} {r.text}"
        return r.json()

    async def project(self, repo: Path, **fields: Any) -> dict[str, Any]:
        body = {"name": "p", "git_repo_path": str(repo), **fields}
        return await self.ok("POST", "/projects", 201, json=body)

    async def task(self, project_id: str, title: str, description: str = "") -> dict[str, Any]:
        body = {"project_id": project_id, "title": title, "description": description}
        return await self.ok("POST", "/tasks", 201, json=body)

    async def attempt(self, task_id: str, **extra: Any) -> dict[str, Any]:
        body = {"task_id": task_id, "executor": "SCRIPT", "base_branch": "main", **extra}
        return await self.ok("POST", "/task-attempts", 202, json=body)

    async def run_script(
        self, repo: Path, script: str, title: str = "Run it", **project: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Project + task (description = script) + attempt; returns (task, attempt)."""
        proj = await self.project(repo, **project)
        task = await self.task(proj["id"], title, script)
        return task, await self.attempt(task["id"])

    async def processes(self, attempt_id: str | UUID) -> list[ExecutionProcess]:
        async with self.store.read() as conn:
            return await processes_repo.find_by_task_attempt_id(
                conn, UUID(str(attempt_id)), include_dropped=True
            )

    async def logs(self, process_id: UUID) -> list[LogEntry]:
        async with self.store.read() as conn:
            return await logs_repo.find_by_execution_id(conn, process_id)

    async def wait_for(
        self, predicate: Callable[[], Any], what: str, within_s: float = 20.0
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            value = await predicate()
            if value:
                return value
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    async def wait_idle(
        self, attempt_id: str | UUID, within_s: float = 20.0
    ) -> list[ExecutionProcess]:
        """Until the attempt's chain is over and no process runs; returns its processes."""
        attempt = UUID(str(attempt_id))

        async def idle() -> list[ExecutionProcess] | None:
            procs = await self.processes(attempt)
            if self.executor.has_running_chain(attempt) or any(
                p.status == "running" for p in procs
            ):
                return None
            return procs or None

        return await self.wait_for(idle, f"attempt {attempt} to finish", within_s)

    async def wait_running(self, attempt_id: str | UUID, n: int = 1) -> list[ExecutionProcess]:
        async def running() -> list[ExecutionProcess] | None:
            procs = [p for p in await self.processes(attempt_id) if p.status == "running"]
            return procs if len(procs) >= n and all(p.pid for p in procs) else None

        return await self.wait_for(running, "a running process")

    async def task_status(self, task_id: str) -> str:
        return str((await self.ok("GET", f"/tasks/{task_id}"))["status"])


@pytest_asyncio.fixture
async def hx(client: httpx.AsyncClient, app: Litestar) -> Harness:
    harness = Harness(client, app)
    await asyncio.wait_for(harness.executor.ready.wait(), 10)
    return harness
