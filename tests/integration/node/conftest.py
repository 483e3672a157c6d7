"""Node store fixtures shared by every node integration test (store and API tests).

- ``node_db_path`` (per test): path of a not-yet-existing SQLite file in the test's tmp dir.
- ``store`` (per test): a :class:`vk_node.store.Store` opened on ``node_db_path`` with every
  migration applied; closed (WAL checkpointed) after the test.

Migrating an empty file takes a few milliseconds, so every test gets its own real database file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from vk_node.store import Store


@pytest.fixture
def node_db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file path (in a sub-directory the store must create)."""
    return tmp_path / "node-data" / "db.sqlite"


@pytest_asyncio.fixture
async def store(node_db_path: Path) -> AsyncIterator[Store]:
    """An opened, fully migrated store on a real file; closed after the test."""
    opened = await Store.open(node_db_path)
    try:
        yield opened
    finally:
        await opened.close()
