"""Fixtures of the node link's integration tests: a real hive and real nodes (see
``tests/support/node_link.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from support.hive_db import hive_dsn, hive_template
from support.node_link import World

__all__ = ["hive_dsn", "hive_template", "world"]


@pytest_asyncio.fixture
async def world(hive_dsn: str, tmp_path: Path) -> AsyncIterator[World]:
    """A running hive with a user, an organization and a swarm project; nodes are closed and the
    hive stopped after the test."""
    w = World(hive_dsn, tmp_path)
    await w.start()
    try:
        yield w
    finally:
        await w.close()
