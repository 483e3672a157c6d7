"""A real hive served by uvicorn inside the test process, stoppable and restartable on the same
port (to prove that nodes reconnect). Settings come from ``vk_hive.settings.load_settings``."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import httpx
import uvicorn

from vk_hive.app import create_app
from vk_hive.auth import repository as auth_repo
from vk_hive.auth.pat import issue_pat
from vk_hive.context import HiveContext
from vk_hive.settings import HiveSettings, load_settings
from vk_hive.store.db import Database
from vk_hive.tenancy.repository import ensure_personal_organization

__all__ = ["HiveServer", "create_user"]

JWT_SECRET = "test-secret-" + "x" * 40


class HiveServer:
    """``await start()`` binds 127.0.0.1 (port 0 the first time, then the same port again)."""

    def __init__(self, dsn: str, **overrides: Any) -> None:
        self.dsn = dsn
        self.overrides = overrides
        self.port = 0
        self.settings: HiveSettings | None = None
        self.ctx: HiveContext | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        base: dict[str, Any] = {
            "database_url": self.dsn,
            "host": "127.0.0.1",
            "port": self.port,
            "jwt_secret": JWT_SECRET,
            "log_format": "console",
            "maintenance_interval_s": 3600.0,
            "db_pool_max": 5,
            # Per-address limits off: every test client connects from 127.0.0.1.
            "auth_rate_limit": 0,
            "node_auth_rate_limit": 0,
        }
        base.update(self.overrides)
        self.settings = load_settings(env={}, overrides=base)
        app = create_app(self.settings)
        self.ctx = app.state.hive
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=2
        )
        server = uvicorn.Server(config)
        self._server, self._sock = server, sock
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("hive did not start")
            await asyncio.sleep(0.01)

    async def stop(self, *, force: bool = True) -> None:
        """Stop serving (``force``: without waiting for open connections to finish); ``start()``
        serves again on the same port."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        self._server.force_exit = force
        await self._task
        if self._sock is not None:
            self._sock.close()
        self._server = self._task = self._sock = None


async def create_user(dsn: str, email: str | None = None) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A user with a personal organization: ``(user id, organization id, personal token)``."""
    email = email or f"u-{uuid.uuid4().hex[:8]}@example.com"
    db = await Database.connect(dsn, min_size=1, max_size=2)
    try:
        async with db.transaction() as conn:
            user = await auth_repo.upsert_user(conn, email=email, username=email.split("@")[0])
            org = await ensure_personal_organization(conn, user.id, user.username or "x")
            pat = await issue_pat(conn, user.id, "test")
    finally:
        await db.close()
    return user.id, org.id, pat.token


def client(url: str, token: str) -> httpx.AsyncClient:
    """An HTTP client for the hive's REST API as that user (no keep-alive: faster on loopback)."""
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
