"""Node link test world: a real hive (uvicorn in-process, fresh migrated PostgreSQL database) and
real nodes (SQLite files, git repositories, the executor, the hive link over a real WebSocket).

A :class:`World` holds the hive, a user with an organization, a swarm project and an
HTTP client; ``await world.node(**settings)`` starts a node whose project is linked to the swarm
project. Durations (backoff, leases, heartbeats) are short settings, so nothing waits long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest_asyncio

from support.hive_server import HiveServer, client, create_user
from vk_node.executor.service import ExecutorService
from vk_node.link import HiveLink
from vk_node.services.projects import ProjectChanges, create_project, link_project
from vk_node.settings import NodeSettings, load_settings
from vk_node.store import Store, outbox

__all__ = ["Node", "World", "git_repo", "node_link_world", "wait_for"]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}

T = TypeVar("T")


async def wait_for(
    probe: Callable[[], Awaitable[T]], *, within: float = 15.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last value: {value!r})")
        await asyncio.sleep(0.02)


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    env = {**os.environ, **GIT_ENV}
    for args in (
        ["init", "-q", "-b", "main"],
        ["commit", "-q", "--allow-empty", "-m", "init"],
    ):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
    return path


@dataclass
class Node:
    settings: NodeSettings
    store: Store
    executor: ExecutorService
    link: HiveLink
    project_id: uuid.UUID

    async def ready(self) -> None:
        """Connected, and the hive has answered the handshake's digest (so it has processed the
        ``link_project`` sent before it)."""
        await asyncio.wait_for(self.link.connected.wait(), 10)

        async def answered() -> bool:
            return self.link.stats.last_digest_result is not None

        await wait_for(answered, what="the handshake digest_result")

    async def backlog(self) -> int:
        async with self.store.read() as conn:
            return await outbox.backlog_count(conn)

    async def close(self) -> None:
        await self.link.close()
        await self.executor.close()
        await self.store.close()


class World:
    def __init__(self, dsn: str, tmp: Path) -> None:
        self.dsn = dsn
        self.tmp = tmp
        self.hive = HiveServer(
            dsn,
            lease_ttl_s=3.0,
            lease_grace_s=1.0,
            heartbeat_interval_s=1.0,
            lease_sweep_interval_s=0.5,
            auth_timeout_s=5.0,
        )
        self.http: httpx.AsyncClient
        self.org_id: uuid.UUID
        self.swarm_project_id: uuid.UUID
        self.nodes: list[Node] = []
        self._n = 0

    async def start(self, **hive_overrides: Any) -> None:
        self.hive.overrides.update(hive_overrides)
        await self.hive.start()
        _, self.org_id, token = await create_user(self.dsn)
        self.http = client(self.hive.url, token)
        r = await self.http.post(
            "/v1/swarm/projects", json={"organization_id": str(self.org_id), "name": "swarm"}
        )
        assert r.status_code == 201, r.text
        self.swarm_project_id = uuid.UUID(r.json()["id"])

    async def api_key(self) -> str:
        r = await self.http.post(
            "/v1/nodes/api-keys",
            json={"organization_id": str(self.org_id), "name": f"k{uuid.uuid4().hex[:6]}"},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["secret"])

    def node_settings(self, **overrides: Any) -> NodeSettings:
        self._n += 1
        base: dict[str, Any] = {
            "data_dir": str(self.tmp / f"node{self._n}"),
            "hive_url": self.hive.url,
            "name": f"node{self._n}",
            "executors": "SCRIPT",
            "max_concurrent": 2,
            "stop_grace_s": 0.5,
            "exit_drain_s": 0.1,
            "log_batch_interval_s": 0.02,
            "link_backoff_initial_s": 0.1,
            "link_backoff_max_s": 0.5,
            "link_backoff_jitter": 0.0,
            "link_auth_timeout_s": 5.0,
            "outbox_park_retry_s": 0.2,
            "outbox_ack_timeout_s": 3.0,
            "worktree_orphan_cleanup": False,
        }
        base.update(overrides)
        return load_settings(env={}, overrides=base).settings

    async def node(self, *, link_project_now: bool = True, **overrides: Any) -> Node:
        if "api_key" not in overrides:
            overrides["api_key"] = await self.api_key()
        settings = self.node_settings(**overrides)
        settings.worktrees_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(settings.db_path)
        repo = git_repo(settings.data_path / "repo")
        project = await create_project(
            store, ProjectChanges(name=f"p-{settings.name}", git_repo_path=str(repo))
        )
        if link_project_now:
            await link_project(store, project.id, self.swarm_project_id)
        executor = ExecutorService(store, settings)
        await executor.start()
        link = HiveLink(store, settings, executor)
        await link.start()
        node = Node(settings, store, executor, link, project.id)
        self.nodes.append(node)
        return node

    async def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                await node.close()
        with contextlib.suppress(Exception):
            await self.http.aclose()
        await self.hive.stop(force=False)


@pytest_asyncio.fixture(name="world")
async def node_link_world(hive_dsn: str, tmp_path: Path) -> AsyncIterator[World]:
    """A running hive with a user, an organization and a swarm project; nodes are closed and the
    hive stopped after the test (import it into a conftest as ``world``)."""
    w = World(hive_dsn, tmp_path)
    await w.start()
    try:
        yield w
    finally:
        await w.close()
