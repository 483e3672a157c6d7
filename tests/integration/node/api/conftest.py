"""A node application on a real SQLite file, driven in-process over ASGI (no mocks).

``node_settings`` points the data dir at the test's tmp dir; ``client`` runs the app's lifespan
(which opens and migrates the store) and yields an ``AsyncTestClient`` that calls the node
``127.0.0.1:3000`` like a local client; ``git_repo`` is a real ``git init`` repository with one
commit on ``main``.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient

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


@pytest.fixture
def node_settings(tmp_path: Path) -> NodeSettings:
    env = {"VK_NODE_DATA_DIR": str(tmp_path / "data"), "VK_NODE_EXECUTORS": "SCRIPT"}
    return load_settings(env=env).settings


@pytest.fixture
def app(node_settings: NodeSettings) -> Litestar:
    return create_app(node_settings)


@pytest_asyncio.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url=NODE_URL) as test_client:
        yield test_client


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
