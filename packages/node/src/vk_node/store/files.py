"""The node's files are private to the user it runs as.

The data dir holds the whole state of the node (tasks, run output, agent sessions) and the
database files hold it all in clear, so:

* the data dir is created mode ``0700``, and an existing one is tightened to ``0700`` when the
  node starts or migrates (:func:`secure_data_dir`);
* ``db.sqlite`` is created ``0600`` before SQLite opens it, and an existing database and its
  ``-wal``/``-shm``/``-journal`` files are tightened to ``0600`` (:func:`secure_db_file`). SQLite
  gives the journal files it creates the database file's mode, so they stay ``0600`` too.

A directory the store merely opens a database in (a backup elsewhere) is created ``0700`` when
missing but never changed when it exists; only the configured data dir is tightened.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import structlog

__all__ = ["DATA_DIR_MODE", "DB_FILE_MODE", "secure_data_dir", "secure_db_file"]

log = structlog.get_logger("vk_node.store")

DATA_DIR_MODE = 0o700
DB_FILE_MODE = 0o600
_SIDE_FILES = ("-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current != mode:
            path.chmod(mode)
            log.info("file.mode_tightened", path=str(path), was=oct(current), now=oct(mode))
    except OSError as exc:  # not ours to change (another owner): say so and go on
        log.warning("file.mode_unchanged", path=str(path), error=exc.strerror or str(exc))


def secure_data_dir(path: Path) -> None:
    """Create the data dir ``0700`` (its missing parents with the usual mode), or tighten an
    existing one to ``0700``."""
    path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DATA_DIR_MODE)


def secure_db_file(path: Path) -> None:
    """Make sure the database at ``path`` exists with mode ``0600`` (its directory created
    ``0700`` when missing), and tighten its journal files that exist."""
    path.parent.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DB_FILE_MODE))
    for candidate in (path, *(path.with_name(path.name + s) for s in _SIDE_FILES)):
        if candidate.exists():
            _tighten(candidate, DB_FILE_MODE)
