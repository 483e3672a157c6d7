"""A real hive (uvicorn on a socket bound to 127.0.0.1:0) on a fresh migrated database, and
helpers to create users with tokens."""

from __future__ import annotations

import asyncio
import contextlib
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
        # Per-address limits off: every test client connects from 127.0.0.1 (the tests of the
        # limits turn them on).
        "auth_rate_limit": 0,
        "node_auth_rate_limit": 0,
    }
    base.update(overrides)
    return load_settings(env={}, overrides=base)


@contextlib.asynccontextmanager
async def running_hive(dsn: str, **overrides: Any) -> AsyncIterator[Hive]:
    """A hive served by uvicorn on a socket bound to 127.0.0.1:0, stopped on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = _settings(dsn, port, **overrides)
    app = create_app(settings)
    ctx: HiveContext = app.state.hive
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("hive did not start")
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{port}"
        # No keep-alive: on a reused loopback connection every request waits ~40 ms for a delayed
        # TCP ACK; a fresh connection per request is ~20 times faster here.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=10.0, limits=limits) as client:
            db = await Database.connect(dsn, min_size=1, max_size=3)
            try:
                yield Hive(url=url, settings=settings, ctx=ctx, client=client, db=db)
            finally:
                await db.close()
    finally:
        server.should_exit = True
        await task
        sock.close()


HiveFactory = Callable[..., Awaitable[Hive]]


@pytest_asyncio.fixture
async def hive_factory(hive_dsn: str) -> AsyncIterator[HiveFactory]:
    """Starts hives (real uvicorn servers) on ``hive_dsn`` with settings overrides."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Hive:
            return await stack.enter_async_context(running_hive(hive_dsn, **overrides))

        yield start


@pytest_asyncio.fixture
async def hive(hive_factory: HiveFactory) -> Hive:
    """One running hive with default test settings."""
    return await hive_factory()
