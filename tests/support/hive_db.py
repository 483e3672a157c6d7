"""Hive database fixtures, shared by the hive's and the node link's integration tests.

- ``hive_template`` (session): one database migrated once, used as a TEMPLATE; its name.
- ``hive_dsn`` (per test): a fresh copy of the template (``CREATE DATABASE … TEMPLATE``), dropped
  after the test; its URL.
- ``hive_db`` (per test): a connected ``vk_hive.store.Database`` on ``hive_dsn``, closed after.

Import them into a ``conftest.py`` to use them (``from support.hive_db import ...``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio

from support.postgres import DatabaseFactory, PostgresServer
from vk_hive.store.db import Database
from vk_hive.store.migrate import migrate

__all__ = ["hive_db", "hive_dsn", "hive_template"]


@pytest.fixture(scope="session")
def hive_template(pg_server: PostgresServer) -> Iterator[str]:
    """Name of a database with every hive migration applied, used as a template.

    A synchronous fixture on purpose: async session fixtures are rebuilt whenever pytest-asyncio
    switches event-loop runners, and the template must be migrated once per run.
    """
    factory = DatabaseFactory(pg_server, prefix="vk_hive_tpl")
    name = asyncio.run(_make_template(factory))
    try:
        yield name
    finally:
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
async def hive_dsn(pg_server: PostgresServer, hive_template: str) -> AsyncIterator[str]:
    """URL of a fresh, fully migrated hive database for one test; dropped afterwards."""
    factory = DatabaseFactory(pg_server, prefix="vk_hive")
    url = await factory.create("t", template=hive_template)
    try:
        yield url
    finally:
        await factory.drop_all()


@pytest_asyncio.fixture
async def hive_db(hive_dsn: str) -> AsyncIterator[Database]:
    """A connected ``Database`` (asyncpg pool) on a fresh hive database; closed afterwards."""
    db = await Database.connect(hive_dsn, min_size=1, max_size=8)
    try:
        yield db
    finally:
        await db.close()
