"""Hive database fixtures, shared by the hive's and the node link's integration tests.

- ``hive_template`` (session): one database migrated once, used as a TEMPLATE; its name.
- ``hive_dsn`` (per test): a fresh copy of the template (``CREATE DATABASE … TEMPLATE``), dropped
  after the test; its URL. The copies are made ahead in a thread of their own
  (:class:`TemplateCopies`) while the tests run; the test's teardown waits for its copy's drop.
- ``hive_db`` (per test): a connected ``vk_hive.store.Database`` on ``hive_dsn``, closed after.

Import them into a ``conftest.py`` to use them (``from support.hive_db import ...``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio

from support.postgres import DatabaseFactory, PostgresServer
from vk_hive.store.db import Database
from vk_hive.store.migrate import migrate

__all__ = ["TemplateCopies", "hive_db", "hive_dsn", "hive_template"]

COPIES_AHEAD = 2
"""Copies of the template kept ready for the next tests."""


class TemplateCopies:
    """Fresh copies of one template database, made ahead of the tests that take them and dropped
    after them by one worker thread, so that a test waits for neither: a copy is a few hundred
    milliseconds of PostgreSQL writing and syncing ~10 MB, which overlaps the previous test. Each
    copy is still used by one test only and dropped (``WITH (FORCE)``) after it."""

    def __init__(self, server: PostgresServer, template: str, ahead: int = COPIES_AHEAD) -> None:
        self._factory = DatabaseFactory(server, prefix="vk_hive")
        self._template = template
        self._ahead = ahead
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hive-db-copies")
        self._ready: deque[Future[str]] = deque()

    def take(self) -> Future[str]:
        """The URL of a fresh copy (ready, or the next one being made); the next are started."""
        while len(self._ready) <= self._ahead:
            self._ready.append(self._worker.submit(self._create))
        return self._ready.popleft()

    def give_back(self, url: str) -> Future[None]:
        """Drop the copy at ``url`` (in the worker, after the copies already asked for)."""
        return self._worker.submit(self._drop, url)

    def close(self) -> None:
        """Stop making copies, wait for the worker, then drop every copy still there."""
        self._worker.shutdown(wait=True, cancel_futures=True)
        self._ready.clear()
        asyncio.run(self._factory.drop_all())

    def _create(self) -> str:
        return asyncio.run(self._factory.create("t", template=self._template))

    def _drop(self, url: str) -> None:
        asyncio.run(self._factory.drop(url))


_copies: dict[str, TemplateCopies] = {}
"""The :class:`TemplateCopies` of each live ``hive_template``, by template name."""


@pytest.fixture(scope="session")
def hive_template(pg_server: PostgresServer) -> Iterator[str]:
    """Name of a database with every hive migration applied, used as a template.

    A synchronous fixture on purpose: async session fixtures are rebuilt whenever pytest-asyncio
    switches event-loop runners, and the template must be migrated once per run.
    """
    factory = DatabaseFactory(pg_server, prefix="vk_hive_tpl")
    name = asyncio.run(_make_template(factory))
    _copies[name] = TemplateCopies(pg_server, name)
    try:
        yield name
    finally:
        _copies.pop(name).close()
        asyncio.run(factory.drop_all())


async def _make_template(factory: DatabaseFactory) -> str:
    url = await factory.create("hive_tpl")
    await migrate(url)
    name = urlsplit(url).path.lstrip("/")
    # A template must have no open connections while it is copied; make sure nobody lingers.
    conn = await asyncpg.connect(factory.server.admin_url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await conn.close()
    return name


@pytest_asyncio.fixture
async def hive_dsn(hive_template: str) -> AsyncIterator[str]:
    """URL of a fresh, fully migrated hive database for one test; dropped afterwards."""
    copies = _copies[hive_template]
    url = await asyncio.wrap_future(copies.take())
    try:
        yield url
    finally:
        # Awaited in the test's loop: the drop (WITH FORCE) ends any connection the test left
        # open, and the loop must still run to see those connections close.
        await asyncio.wrap_future(copies.give_back(url))


@pytest_asyncio.fixture
async def hive_db(hive_dsn: str) -> AsyncIterator[Database]:
    """A connected ``Database`` (asyncpg pool) on a fresh hive database; closed afterwards."""
    db = await Database.connect(hive_dsn, min_size=1, max_size=8)
    try:
        yield db
    finally:
        await db.close()
