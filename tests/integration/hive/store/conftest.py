"""Store-test fixtures.

``store_db``: a connected ``Database`` on a migrated database shared by the tests of one module
(copying the template costs ~0.5 s, so per-test copies are kept for tests that need a pristine
database, via ``hive_db``). Tests on ``store_db`` isolate themselves by creating their own
organization (``world``) and assert only on their own rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from integration.hive.store._world import World, make_node, make_org, make_user
from support.postgres import DatabaseFactory, PostgresServer
from vk_hive.store.db import Database
from vk_hive.store.repositories import project_links, swarm_projects


@pytest.fixture(scope="module")
def store_dsn(pg_server: PostgresServer, hive_template: str) -> Iterator[str]:
    """URL of a migrated database shared by one test module (synchronous: built once)."""
    factory = DatabaseFactory(pg_server, prefix="vk_hive_store")
    url = asyncio.run(factory.create("store", template=hive_template))
    try:
        yield url
    finally:
        asyncio.run(factory.drop_all())


@pytest_asyncio.fixture
async def store_db(store_dsn: str) -> AsyncIterator[Database]:
    """A connected ``Database`` on the module's shared migrated database."""
    db = await Database.connect(store_dsn, min_size=1, max_size=8)
    try:
        yield db
    finally:
        await db.close()


@pytest_asyncio.fixture
async def world(store_db: Database) -> World:
    """An org with one user, nodes ``n1``/``n2`` both linked to project ``proj``."""
    async with store_db.acquire() as conn:
        org_id = await make_org(conn)
        user_id = await make_user(conn)
        node = await make_node(conn, org_id, "n1")
        other = await make_node(conn, org_id, "n2")
        project = await swarm_projects.create(conn, org_id, "proj")
        link = await project_links.link_node(
            conn, project.id, node.id, uuid.uuid4(), "/src/proj-one"
        )
        other_link = await project_links.link_node(
            conn, project.id, other.id, uuid.uuid4(), "/src/proj-two/"
        )
    return World(store_db, org_id, user_id, node, other, project, link, other_link)
