"""The node's data dir is private to its user (0700) and its database files too (0600), whether
the node creates them or finds them readable by others (real files, real SQLite)."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from vk_node.app import create_app
from vk_node.services.status import migrate_store
from vk_node.settings import NodeSettings, load_settings
from vk_node.store import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _permissive_umask() -> Iterator[None]:
    """A umask that lets group and others read, so only the node's own care makes files private."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _settings(data: Path) -> NodeSettings:
    return load_settings(env={"VK_NODE_DATA_DIR": str(data)}).settings


def _db_files(data: Path) -> list[Path]:
    return [data / name for name in ("db.sqlite", "db.sqlite-wal", "db.sqlite-shm")]


@pytest.mark.asyncio
async def test_a_new_node_creates_a_private_data_dir_and_database(tmp_path: Path) -> None:
    """Starting a node on a missing data dir creates it 0700, and db.sqlite with its -wal and -shm
    files 0600."""
    data = tmp_path / "data"
    app = create_app(_settings(data))
    async with app.lifespan():
        files = _db_files(data)
        assert all(f.exists() for f in files)
        assert mode(data) == 0o700
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}


@pytest.mark.asyncio
async def test_an_existing_readable_data_dir_is_tightened_at_start(tmp_path: Path) -> None:
    """A data dir left 0755 with a database, WAL and shared-memory file 0644 is 0700 / 0600 once
    the node has started."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    held = sqlite3.connect(data / "db.sqlite")  # open: its -wal and -shm files stay in place
    held.execute("PRAGMA journal_mode = WAL")
    held.execute("CREATE TABLE keep (x)")
    held.commit()
    try:
        for f in _db_files(data):
            f.chmod(0o644)
        data.chmod(0o755)
        async with create_app(_settings(data)).lifespan():
            assert mode(data) == 0o700
            assert [mode(f) for f in _db_files(data)] == [0o600, 0o600, 0o600]
    finally:
        held.close()


@pytest.mark.asyncio
async def test_migrate_makes_the_data_dir_private(tmp_path: Path) -> None:
    """`vk-node migrate` (migrate_store) creates or tightens the data dir and the database the same
    way."""
    data = tmp_path / "data"
    data.mkdir(mode=0o750)
    data.chmod(0o750)
    await migrate_store(_settings(data))
    assert mode(data) == 0o700
    assert mode(data / "db.sqlite") == 0o600


@pytest.mark.asyncio
async def test_opening_a_store_elsewhere_leaves_that_directory_alone(tmp_path: Path) -> None:
    """A store opened in some other existing directory (a backup copy) gets a 0600 database file,
    but the directory's own mode is not changed."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    store = await Store.open(shared / "copy.sqlite")
    await store.close()
    assert mode(shared) == 0o755
    assert mode(shared / "copy.sqlite") == 0o600
