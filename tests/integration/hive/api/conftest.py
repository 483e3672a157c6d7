"""A real hive (uvicorn on a socket bound to 127.0.0.1:0) on a fresh migrated database, and
helpers to create users with tokens."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest_asyncio
import uvicorn

from vk_hive.app import create_app
from vk_hive.auth import repository as auth_repo
from vk_hive.auth.pat import issue_pat
from vk_hive.auth.sessions import start_session
from vk_hive.context import HiveContext
from vk_hive.settings import HiveSettings, load_settings
from vk_hive.store.db import Database
from vk_hive.tenancy.repository import ensure_personal_organization

JWT_SECRET = "test-secret-" + "x" * 40


@dataclass
class Actor:
    """A user of the running hive: its personal org and a ready Authorization header."""

    user_id: uuid.UUID
    email: str
    personal_org_id: uuid.UUID
    token: str
    refresh_token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Hive:
    url: str
    settings: HiveSettings
    ctx: HiveContext
    client: httpx.AsyncClient
    db: Database
    _n: list[int] = field(default_factory=lambda: [0])

    async def user(self, email: str | None = None, *, jwt: bool = False) -> Actor:
        """A new user with a personal org, authenticated by a PAT (or a JWT session)."""
        self._n[0] += 1
        email = email or f"user{self._n[0]}-{uuid.uuid4().hex[:6]}@example.com"
        async with self.db.transaction() as conn:
            user = await auth_repo.upsert_user(conn, email=email, username=email.split("@")[0])
            org = await ensure_personal_organization(conn, user.id, user.username or "x")
            if jwt:
                pair = await start_session(conn, self.ctx.signer, user.id)
                return Actor(user.id, email, org.id, pair.access_token, pair.refresh_token)
            pat = await issue_pat(conn, user.id, "test")
        return Actor(user.id, email, org.id, pat.token)

    async def org_with(self, admin: Actor, *members: Actor) -> uuid.UUID:
        """A shared (non-personal) organization: ``admin`` is admin, ``members`` are members."""
        r = await self.client.post(
            "/v1/organizations", json={"name": f"org {uuid.uuid4().hex[:6]}"}, headers=admin.headers
        )
        assert r.status_code == 201, r.text
        org_id = uuid.UUID(r.json()["id"])
        async with self.db.transaction() as conn:
            for m in members:
                await conn.execute(
                    "INSERT INTO organization_member_metadata (organization_id, user_id, role) "
                    "VALUES ($1, $2, 'member')",
                    org_id,
                    m.user_id,
                )
        return org_id


def _settings(dsn: str, port: int, **overrides: Any) -> HiveSettings:
    base: dict[str, Any] = {
        "database_url": dsn,
        "host": "127.0.0.1",
        "port": port,
        "jwt_secret": JWT_SECRET,
        "log_format": "console",
        "maintenance_interval_s": 3600.0,
        "db_pool_max": 5,
    }
    base.update(overrides)
    return load_settings(env={}, overrides=base)


HiveFactory = Callable[..., Awaitable[Hive]]


@pytest_asyncio.fixture
async def hive_factory(hive_dsn: str) -> AsyncIterator[HiveFactory]:
    """Starts hives (real uvicorn servers) on ``hive_dsn`` with settings overrides."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None], httpx.AsyncClient, Database]] = []

    async def start(**overrides: Any) -> Hive:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        settings = _settings(hive_dsn, port, **overrides)
        app = create_app(settings)
        ctx: HiveContext = app.state.hive
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("hive did not start")
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{port}"
        client = httpx.AsyncClient(base_url=url, timeout=10.0)
        db = await Database.connect(hive_dsn, min_size=1, max_size=3)
        running.append((server, task, client, db))
        return Hive(url=url, settings=settings, ctx=ctx, client=client, db=db)

    try:
        yield start
    finally:
        for server, task, client, db in reversed(running):
            await client.aclose()
            await db.close()
            server.should_exit = True
            await task


@pytest_asyncio.fixture
async def hive(hive_factory: HiveFactory) -> Hive:
    """One running hive with default test settings."""
    return await hive_factory()
