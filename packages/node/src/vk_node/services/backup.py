"""``vk-node backup`` and ``vk-node restore``: a consistent copy of the store taken while the node
runs, and putting such a copy back in place while it does not.

The backup reads the store through SQLite's online backup API inside one read transaction, so
the copy is the snapshot of one moment (WAL included) while the node goes on writing: in WAL mode
a reader does not block writers. The copy is written next to the target under a temporary name,
checked (``PRAGMA integrity_check``), switched out of WAL mode (one self-contained file) and only
then linked to its final name — a backup that failed halfway leaves nothing behind, and an existing
file is never overwritten without ``force``.

The node's identity (table ``node_identity``, DESIGN.md §10) lives in the store, so a restored
store is the same node instance on the hive. Worktrees, image files and settings are files outside
the store: the report names what the backup does not hold.

``vk-node serve`` holds an exclusive ``flock`` on ``serve.lock`` in the data dir for its whole
life; ``restore`` takes the same lock (refusing while a node holds it) and keeps it until the
restored store is in place, so no node can start on a half-restored data dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from vk_node.store.files import DB_FILE_MODE, secure_data_dir
from vk_node.store.migrate import load_migrations

__all__ = [
    "LOCK_NAME",
    "BackupReport",
    "NodeRunning",
    "RestoreError",
    "RestoreReport",
    "StoreCounts",
    "backup_store",
    "restore_store",
    "serve_lock",
]

LOCK_NAME = "serve.lock"
EPOCH_NOTE = (
    "the hive detects a store restored from an older backup at its first new op (a sequence it "
    "already passed, under an unknown key) and continues this node in a new op epoch: ops "
    "recorded after the backup was taken are gone from this node, and what the hive already "
    "received stays there"
)
_STEP_PAGES = 1024
_SIDE_FILES = ("-wal", "-shm", "-journal")
_KEEP_IN_DATA_DIR = frozenset({"db.sqlite", "db.sqlite-wal", "db.sqlite-shm", LOCK_NAME})

Progress = Callable[[int, int], None]
"""Called with (pages copied, pages in all) while a copy runs."""


class RestoreError(Exception):
    """A backup or restore that cannot go on; the message says why."""


class NodeRunning(RestoreError):
    """A ``vk-node serve`` holds the data dir."""


class StoreCounts(msgspec.Struct, frozen=True, kw_only=True):
    schema_version: int
    projects: int
    tasks: int
    attempts: int
    images: int
    machine_id: str | None
    """The node identity kept in the store (``None`` for a store that never started a node)."""


class BackupReport(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    size_bytes: int
    source: str
    counts: StoreCounts
    not_included: list[str]


class RestoreReport(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    source: str
    kept_aside: list[str]
    """The previous store's files, renamed with a timestamp (empty when there was none)."""
    migrations_applied: list[str]
    counts: StoreCounts
    note: str


# --- the serve lock -------------------------------------------------------------------------------


def _lock_path(data_dir: Path) -> Path:
    return data_dir / LOCK_NAME


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text().strip() or "0")
        if pid > 0:
            return f" (pid {pid})"
    return ""


@contextlib.contextmanager
def serve_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's exclusive lock for the block; :class:`NodeRunning` when a node (or a
    restore) holds it. The lock goes with the process: a killed node leaves no stale lock."""
    secure_data_dir(data_dir)
    path = _lock_path(data_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, DB_FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NodeRunning(
                f"a vk-node process holds {data_dir}{_holder(path)}: stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)


# --- reading a store ------------------------------------------------------------------------------


def _count(conn: sqlite3.Connection, table: str) -> int:
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    except sqlite3.OperationalError:  # an older schema without that table
        return 0


def _counts(conn: sqlite3.Connection) -> StoreCounts:
    try:
        row = conn.execute("SELECT machine_id FROM node_identity WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        row = None
    version = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return StoreCounts(
        schema_version=int(version[0]),
        projects=_count(conn, "projects"),
        tasks=_count(conn, "tasks"),
        attempts=_count(conn, "task_attempts"),
        images=_count(conn, "images"),
        machine_id=None if row is None else str(row[0]),
    )


def _open_readonly(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _check_store(conn: sqlite3.Connection, what: str) -> StoreCounts:
    """``integrity_check`` passes and the file is a vk-node store this version can run."""
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
        if problems != ["ok"]:
            raise RestoreError(f"{what} fails SQLite's integrity check: {'; '.join(problems)}")
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not {"schema_migrations", "projects", "tasks"} <= tables:
            raise RestoreError(f"{what} is an SQLite file but not a vk-node store")
        counts = _counts(conn)
    except sqlite3.DatabaseError as exc:
        raise RestoreError(f"{what} is not a readable SQLite database: {exc}") from None
    known = max((m.version for m in load_migrations()), default=0)
    if counts.schema_version > known:
        raise RestoreError(
            f"{what} has schema version {counts.schema_version}, newer than this vk-node "
            f"({known}): upgrade vk-node first"
        )
    return counts


def _copy(
    src: sqlite3.Connection, dest: Path, progress: Progress | None
) -> None:  # dest must not exist
    """Copy ``src`` (inside its current read transaction) to a new file ``dest`` (``0600``), in
    rollback-journal mode so the file holds everything by itself."""
    os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DB_FILE_MODE))
    out = sqlite3.connect(dest, isolation_level=None)
    try:

        def step(_status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(total - remaining, total)

        src.backup(out, pages=_STEP_PAGES, progress=step, sleep=0)
        out.execute("PRAGMA journal_mode = DELETE")
    finally:
        out.close()


def _temp_beside(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


def _remove(path: Path) -> None:
    for candidate in (path, *(path.with_name(path.name + s) for s in _SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()


def _not_included(data_dir: Path, worktrees: Path, counts: StoreCounts) -> list[str]:
    missing = [f"worktrees ({worktrees}): scratch checkouts, their commits live on branches"]
    if counts.images:
        missing.append(f"image files ({counts.images} image rows point at files on disk)")
    with contextlib.suppress(OSError):
        for entry in sorted(data_dir.iterdir()):
            if entry.name not in _KEEP_IN_DATA_DIR and entry.absolute() != worktrees.absolute():
                missing.append(f"{entry} (a file of the data dir outside the store)")
    missing.append(
        "settings: the TOML file and VK_NODE_* variables, including secrets such as "
        "VK_NODE_API_KEY and VK_NODE_API_TOKEN"
    )
    return missing


# --- backup ---------------------------------------------------------------------------------------


def backup_store(
    db_path: Path,
    target: Path,
    *,
    worktrees: Path,
    force: bool = False,
    progress: Progress | None = None,
) -> BackupReport:
    """Copy the store at ``db_path`` to ``target`` as one consistent snapshot (the node may run)."""
    if not db_path.is_file():
        raise RestoreError(f"no store at {db_path} (check VK_NODE_DATA_DIR / --data-dir)")
    target = target.absolute()
    if target.is_dir():
        raise RestoreError(f"{target} is a directory; give the backup file's path")
    if not target.parent.is_dir():
        raise RestoreError(f"the directory {target.parent} does not exist")
    if target.exists() and not force:
        raise RestoreError(f"{target} exists; pass --force to overwrite it")
    if target.absolute() == db_path.absolute():
        raise RestoreError("the backup cannot be the store itself")
    temp = _temp_beside(target, "partial")
    _remove(temp)
    try:
        src = _open_readonly(db_path)
        try:
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # pins the snapshot
            _copy(src, temp, progress)
            src.execute("COMMIT")
        finally:
            src.close()
        check = _open_readonly(temp)
        try:
            counts = _check_store(check, f"the copy {temp}")
        finally:
            check.close()
        if force:
            os.replace(temp, target)
        else:
            try:
                os.link(temp, target)  # fails when someone created the target meanwhile
            except FileExistsError:
                raise RestoreError(f"{target} exists; pass --force to overwrite it") from None
    except sqlite3.Error as exc:
        raise RestoreError(f"cannot back up {db_path}: {exc}") from None
    finally:
        _remove(temp)
    return BackupReport(
        path=str(target),
        size_bytes=target.stat().st_size,
        source=str(db_path),
        counts=counts,
        not_included=_not_included(db_path.parent, worktrees, counts),
    )


# --- restore --------------------------------------------------------------------------------------


def _aside(db_path: Path, stamp: str) -> list[str]:
    """Rename the current store and its journals with ``stamp`` (the ``-wal`` may hold its last
    commits); the new names. The ``-shm`` is only an index SQLite rebuilds: it is removed."""
    kept: list[str] = []
    base = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
    n = 1
    while base.exists():  # two restores within one second keep both
        n += 1
        base = db_path.with_name(f"{db_path.name}.before-restore-{stamp}-{n}")
    for suffix in ("", "-wal", "-journal"):
        current = db_path.with_name(db_path.name + suffix)
        if current.exists():
            moved = base.with_name(base.name + suffix)
            os.rename(current, moved)
            kept.append(str(moved))
    with contextlib.suppress(FileNotFoundError):
        db_path.with_name(db_path.name + "-shm").unlink()
    return kept


def restore_store(
    backup: Path,
    db_path: Path,
    *,
    migrate: Callable[[Path], list[str]],
    progress: Progress | None = None,
) -> RestoreReport:
    """Put the backup at ``backup`` in place as the store ``db_path`` while no node runs on its
    data dir; the previous store is kept aside, renamed with a timestamp, and ``migrate`` brings
    an older backup to this version's schema."""
    backup = backup.absolute()
    if not backup.is_file():
        raise RestoreError(f"no backup file at {backup}")
    data_dir = db_path.parent
    with serve_lock(data_dir):
        try:
            src = _open_readonly(backup)
        except sqlite3.Error as exc:
            raise RestoreError(f"cannot open {backup}: {exc}") from None
        temp = _temp_beside(db_path, "restoring")
        _remove(temp)
        try:
            try:
                _check_store(src, str(backup))
                src.execute("BEGIN")
                _copy(src, temp, progress)
                src.execute("COMMIT")
            except sqlite3.Error as exc:
                raise RestoreError(f"cannot read {backup}: {exc}") from None
            finally:
                src.close()
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = _aside(db_path, stamp)
            os.replace(temp, db_path)
        finally:
            _remove(temp)
        applied = migrate(db_path)
        conn = sqlite3.connect(db_path, isolation_level=None)
        try:
            counts = _counts(conn)
        finally:
            conn.close()
    return RestoreReport(
        path=str(db_path),
        source=str(backup),
        kept_aside=kept,
        migrations_applied=applied,
        counts=counts,
        note=EPOCH_NOTE,
    )
