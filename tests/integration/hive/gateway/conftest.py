"""A real hive (uvicorn on 127.0.0.1:0) with short gateway durations, an organization with a
swarm project, and helpers to connect authenticated nodes with the protocol test client."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest_asyncio

from support.hive_client import HiveClient
from vk_hive.auth import repository as auth_repo
from vk_hive.auth.api_keys import create_api_key
from vk_hive.auth.pat import issue_pat
from vk_hive.context import HiveContext
from vk_hive.gateway import Gateway
from vk_hive.settings import HiveSettings
from vk_hive.store.db import Database
from vk_hive.store.repositories import swarm_projects
from vk_hive.tenancy.repository import ensure_personal_organization
from vk_shared.wire import (
    AttemptUpsert,
    AuthResult,
    ExecutionUpsert,
    LinkProject,
    LocalProjectInfo,
    OpAck,
    OpBatch,
    OutboxOp,
    ProjectsSync,
    TaskUpsert,
)

from ..api.conftest import Hive, running_hive

FAST: dict[str, Any] = {
    "heartbeat_interval_s": 1.0,
    "heartbeat_timeout_s": 30.0,
    "lease_ttl_s": 30.0,
    "lease_grace_s": 0.0,
    "lease_sweep_interval_s": 0.2,
    "activity_listen_check_s": 0.3,
    "activity_reconnect_initial_s": 0.05,
    "activity_reconnect_max_s": 0.2,
    "outgoing_queue_size": 4096,
    "db_pool_max": 10,
}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Node:
    """A connected, authenticated test node with one linked local project."""

    client: HiveClient
    auth: AuthResult
    api_key: str
    local_project_id: uuid.UUID
    seq: int = 0

    @property
    def id(self) -> uuid.UUID:
        return self.auth.node_id

    def op(
        self,
        payload: Any,
        *,
        entity_id: uuid.UUID,
        token: int | None = None,
        key: str | None = None,
    ) -> OutboxOp:
        self.seq += 1
        return OutboxOp(
            seq=self.seq,
            entity_id=entity_id,
            idempotency_key=key or f"op-{self.seq}-{uuid.uuid4().hex[:8]}",
            fencing_token=token,
            payload=payload,
        )

    def task_op(
        self,
        task_id: uuid.UUID | None = None,
        *,
        title: str = "a task",
        status: str = "todo",
        shared_task_id: uuid.UUID | None = None,
        token: int | None = None,
        project_id: uuid.UUID | None = None,
    ) -> OutboxOp:
        task_id = task_id or uuid.uuid4()
        payload = TaskUpsert(
            id=task_id,
            project_id=project_id or self.local_project_id,
            shared_task_id=shared_task_id,
            title=title,
            status=status,  # type: ignore[arg-type]
            created_at=now(),
            updated_at=now(),
        )
        return self.op(payload, entity_id=task_id, token=token)

    async def batch(self, *ops: OutboxOp, within: float = 10.0) -> OpAck:
        await self.client.send(OpBatch(ops=list(ops)))
        return await self.client.expect(OpAck, within)


def run_ops(
    node: Node,
    task_id: uuid.UUID,
    attempt_id: uuid.UUID,
    exec_id: uuid.UUID,
    *,
    token: int | None = None,
    **attempt: Any,
) -> list[Any]:
    """An attempt of ``task_id`` and a running execution of it, as the node's ops."""
    return [
        node.op(
            AttemptUpsert(
                id=attempt_id,
                task_id=task_id,
                executor="SCRIPT",
                branch="vk/a",
                target_branch="main",
                created_at=now(),
                updated_at=now(),
                **attempt,
            ),
            entity_id=attempt_id,
            token=token,
        ),
        node.op(
            ExecutionUpsert(
                id=exec_id,
                attempt_id=attempt_id,
                run_reason="codingagent",
                status="running",
                started_at=now(),
            ),
            entity_id=exec_id,
            token=token,
        ),
    ]


@dataclass
class World:
    url: str
    settings: HiveSettings
    ctx: HiveContext
    db: Database
    http: httpx.AsyncClient
    user_id: uuid.UUID
    org_id: uuid.UUID
    project_id: uuid.UUID
    token: str
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @classmethod
    def on(
        cls,
        hive: Hive,
        user_id: uuid.UUID,
        org_id: uuid.UUID,
        project_id: uuid.UUID,
        token: str,
    ) -> World:
        """A world served by ``hive`` (another hive app on the same database, for one)."""
        return cls(
            url=hive.url,
            settings=hive.settings,
            ctx=hive.ctx,
            db=hive.db,
            http=hive.client,
            user_id=user_id,
            org_id=org_id,
            project_id=project_id,
            token=token,
        )

    @property
    def gateway(self) -> Gateway:
        gw: Gateway = self.ctx.gateway
        return gw

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def api_key(self, org_id: uuid.UUID | None = None) -> str:
        async with self.db.transaction() as conn:
            key = await create_api_key(
                conn, org_id or self.org_id, "test key", created_by=self.user_id
            )
        return key.secret

    async def project(self, name: str = "proj", org_id: uuid.UUID | None = None) -> uuid.UUID:
        async with self.db.transaction() as conn:
            project = await swarm_projects.create(conn, org_id or self.org_id, name)
        return project.id

    async def other_org(self) -> uuid.UUID:
        async with self.db.transaction() as conn:
            user = await auth_repo.upsert_user(
                conn, email=f"o-{uuid.uuid4().hex[:6]}@example.com", username="other"
            )
            org = await ensure_personal_organization(conn, user.id, "other")
        return org.id

    async def client(self, **kwargs: Any) -> HiveClient:
        client = await HiveClient.connect(self.url, **kwargs)
        self._stack.push_async_callback(client.close)
        return client

    async def node(
        self,
        *,
        machine_id: str | None = None,
        executors: tuple[str, ...] = ("SCRIPT",),
        project_id: uuid.UUID | None = None,
        link: bool = True,
        api_key: str | None = None,
        cursors: dict[uuid.UUID, int] | None = None,
        features: tuple[str, ...] = (),
    ) -> Node:
        """Connect and authenticate a node; link one local project to ``project_id``.
        ``features``: what its ``auth`` announces (none: a node of the first protocol release)."""
        key = api_key or await self.api_key()
        client = await self.client()
        result = await client.auth(
            key,
            machine_id=machine_id or f"m-{uuid.uuid4().hex[:8]}",
            name=f"node-{uuid.uuid4().hex[:4]}",
            executors=executors,
            cursors=cursors,
            features=features,
        )
        assert isinstance(result, AuthResult), result
        local = uuid.uuid4()
        node = Node(client=client, auth=result, api_key=key, local_project_id=local)
        await client.send(
            ProjectsSync(
                projects=[LocalProjectInfo(local_project_id=local, name="repo", git_repo_path="/r")]
            )
        )
        if link:
            await client.send(
                LinkProject(
                    project_id=project_id or self.project_id,
                    local_project_id=local,
                    git_repo_path="/r",
                )
            )
            await self.wait_linked(result.node_id, project_id or self.project_id)
        return node

    async def wait_linked(self, node_id: uuid.UUID, project_id: uuid.UUID) -> None:
        for _ in range(200):
            session = self.gateway.registry.get(node_id)
            if session is not None and project_id in session.subscribed_projects:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("link_project was not applied")

    async def create_task(self, **body: Any) -> dict[str, Any]:
        payload = {"project_id": str(self.project_id), "title": "t", "executor": "SCRIPT"}
        payload.update(body)
        r = await self.http.post("/v1/tasks", json=payload, headers=self.headers)
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data


@contextlib.asynccontextmanager
async def running_world(dsn: str, **overrides: Any) -> AsyncIterator[World]:
    """A hive (the API tests' ``running_hive``: uvicorn on 127.0.0.1:0) with the fast gateway
    settings, a user with a token, a personal organization and a swarm project."""
    async with running_hive(dsn, **{**FAST, **overrides}) as hive:
        async with hive.db.transaction() as conn:
            user = await auth_repo.upsert_user(
                conn, email=f"u-{uuid.uuid4().hex[:6]}@example.com", username="owner"
            )
            org = await ensure_personal_organization(conn, user.id, "owner")
            project = await swarm_projects.create(conn, org.id, "main project")
            pat = await issue_pat(conn, user.id, "test")
        world = World.on(hive, user.id, org.id, project.id, pat.token)
        async with world._stack:
            yield world


@pytest_asyncio.fixture
async def world(hive_dsn: str) -> AsyncIterator[World]:
    """A running hive with the fast gateway settings and an organization with one project."""
    async with running_world(hive_dsn) as w:
        yield w
