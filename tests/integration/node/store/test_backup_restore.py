"""Restore of a backup taken by an older node (migrations applied after it is in place), the
serve lock, and what a backup holds (real SQLite files; the processes are in tests/e2e/node)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from integration.node.store.test_outbox_upgrade import _create_at_version
from vk_node.services.backup import (
    NodeRunning,
    RestoreError,
    backup_store,
    restore_store,
    serve_lock,
)
from vk_node.store import migrate
from vk_node.store.migrate import load_migrations


def _migrate(path: Path) -> list[str]:
    return asyncio.run(migrate(path))


def _sql(path: Path, statement: str, *params: object) -> object:
    """Run one statement on the file and commit; the first column of its first row."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        row = conn.execute(statement, params).fetchone()
    return None if row is None else row[0]


def _older_store(path: Path) -> None:
    _create_at_version(path, 4)
    _sql(
        path,
        "INSERT INTO projects (id, name, git_repo_path) VALUES (?, 'old', '/src/old')",
        b"\x01" * 16,
    )


def test_an_older_backup_is_migrated_once_in_place(tmp_path: Path) -> None:
    backup = tmp_path / "old.sqlite"
    _older_store(backup)
    data = tmp_path / "data"
    report = restore_store(backup, data / "db.sqlite", migrate=_migrate)
    newer = [m.label for m in load_migrations() if m.version > 4]
    assert report.migrations_applied == newer
    assert report.counts.projects == 1
    assert report.counts.schema_version == load_migrations()[-1].version
    assert report.kept_aside == []
    assert "new op epoch" in report.note
    # The backup file itself is left as it was.
    assert _sql(backup, "SELECT max(version) FROM schema_migrations") == 4


def test_restore_is_refused_while_the_data_dir_is_held(tmp_path: Path) -> None:
    backup = tmp_path / "old.sqlite"
    _older_store(backup)
    data = tmp_path / "data"
    with serve_lock(data), pytest.raises(NodeRunning, match="stop it first"):
        restore_store(backup, data / "db.sqlite", migrate=_migrate)
    assert not (data / "db.sqlite").exists()
    # Released with the block: the restore goes through now.
    restore_store(backup, data / "db.sqlite", migrate=_migrate)


def test_a_newer_store_than_this_node_knows_is_refused(tmp_path: Path) -> None:
    backup = tmp_path / "new.sqlite"
    _older_store(backup)
    _sql(backup, "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    with pytest.raises(RestoreError, match="upgrade vk-node first"):
        restore_store(backup, tmp_path / "data" / "db.sqlite", migrate=_migrate)


def test_a_sqlite_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    _sql(other, "CREATE TABLE t (x)")
    with pytest.raises(RestoreError, match="not a vk-node store"):
        restore_store(other, tmp_path / "data" / "db.sqlite", migrate=_migrate)


def test_backup_names_the_files_it_leaves_out(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _migrate(data / "db.sqlite")
    (data / "notes.txt").write_text("x")
    target = tmp_path / "b.sqlite"
    report = backup_store(data / "db.sqlite", target, worktrees=data / "worktrees")
    assert any("notes.txt" in item for item in report.not_included)
    assert any("worktrees" in item for item in report.not_included)
    # A self-contained file: not in WAL mode, no side files.
    assert _sql(target, "PRAGMA journal_mode") == "delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.sqlite", "data"]
    with pytest.raises(RestoreError, match="--force"):
        backup_store(data / "db.sqlite", target, worktrees=data / "worktrees")
    with pytest.raises(RestoreError, match="no store"):
        backup_store(tmp_path / "none" / "db.sqlite", tmp_path / "c.sqlite", worktrees=data)
