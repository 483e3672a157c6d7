"""A node application on a real SQLite file, driven in-process over ASGI (no mocks).

``node_settings`` points the data dir at the test's tmp dir; ``client`` runs the app's lifespan
(which opens and migrates the store) and yields an ``AsyncTestClient`` that calls the node
``127.0.0.1:3000`` like a local client; ``git_repo`` is a real ``git init`` repository with one
commit on ``main``.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient

from support.uvicorn_server import serving
from vk_node.app import create_app
from vk_node.settings import NodeSettings, load_settings

NODE_URL = "http://127.0.0.1:3000"
"""What a local client calls the node (the API serves loopback hosts only)."""
TOKEN = "node-api-token-0123456789abcdef"
"""The API token of the ``exposed`` node."""


def make_git_repo(path: Path) -> Path:
    """A real repository with one commit on ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "HOME": str(path),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return path


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    return make_git_repo(tmp_path / "repo")


def settings_with(tmp_path: Path, **env: str) -> NodeSettings:
    """A SCRIPT-enabled node's settings with its data dir under ``tmp_path`` and ``env`` added."""
    base = {"VK_NODE_DATA_DIR": str(tmp_path / "data"), "VK_NODE_EXECUTORS": "SCRIPT"}
    return load_settings(env=base | env).settings


@pytest.fixture
def node_settings(tmp_path: Path) -> NodeSettings:
    return settings_with(tmp_path)


@pytest.fixture
def app(node_settings: NodeSettings) -> Litestar:
    return create_app(node_settings)


@pytest_asyncio.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url=NODE_URL) as test_client:
        yield test_client


@pytest_asyncio.fixture
async def served(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app served by uvicorn on a real socket inside the test's own event loop, so the test
    may also use the node's store directly (``app.state.node``) without crossing loops."""
    async with (
        serving(app) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
    ):
        yield http


@pytest_asyncio.fixture
async def exposed(tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A node configured to listen on all interfaces, so it has an API token (``TOKEN``)."""
    env = {
        "VK_NODE_DATA_DIR": str(tmp_path / "exposed-data"),
        "VK_NODE_EXECUTORS": "SCRIPT",
        "VK_NODE_HOST": "0.0.0.0",
        "VK_NODE_API_TOKEN": TOKEN,
    }
    app = create_app(load_settings(env=env).settings)
    async with AsyncTestClient(app=app, base_url=NODE_URL) as test_client:
        yield test_client


async def run_script_attempt(
    client: AsyncTestClient[Litestar] | httpx.AsyncClient, task_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a SCRIPT attempt of the task and wait until its first run ended: (attempt, run)."""
    r = await client.post(
        "/api/task-attempts", json={"task_id": task_id, "executor": "SCRIPT", "base_branch": "main"}
    )
    assert r.status_code == 202, r.text
    attempt: dict[str, Any] = r.json()
    processes: list[dict[str, Any]] = []
    for _ in range(1000):
        processes = (await client.get(f"/api/task-attempts/{attempt['id']}/processes")).json()
        if processes and processes[0]["status"] != "running":
            break
        await asyncio.sleep(0.01)
    assert processes, "the attempt never started a run"
    return attempt, processes[0]
