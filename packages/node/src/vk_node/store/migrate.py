"""Applies the hand-written SQL migrations of ``vk_node/store/migrations`` in order.

Each file ``NNNN_name.sql`` runs in one ``BEGIN IMMEDIATE`` transaction together with its row in
``schema_migrations(version, name, applied_at)``; the "already applied?" check happens inside that
transaction, so two processes migrating one file apply each migration once. A migration whose
text contains the line ``-- migrate: foreign_keys=off`` (a table rebuild) runs with foreign keys
off and must leave ``PRAGMA foreign_key_check`` clean before it commits.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import aiosqlite

from vk_node.store.files import secure_db_file

__all__ = ["Migration", "apply_migrations", "load_migrations", "migrate", "split_statements"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_FK_OFF = "-- migrate: foreign_keys=off"

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def load_migrations() -> list[Migration]:
    """All migrations shipped with the package, ordered by version."""
    found: list[Migration] = []
    for entry in resources.files("vk_node.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is not None:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (trigger bodies stay whole)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            text = buffer.strip()
            if _has_code(text):
                statements.append(text)
            buffer = ""
    if _has_code(buffer):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer[:80]!r}")
    return statements


def _has_code(text: str) -> bool:
    return (
        any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())
        and text.strip() != ";"
    )


async def apply_migrations(conn: aiosqlite.Connection) -> list[str]:
    """Apply pending migrations on an open autocommit connection; return the labels applied."""
    if conn.in_transaction:
        raise RuntimeError("apply_migrations needs a connection outside any transaction")
    await conn.execute(_BOOTSTRAP)
    applied: list[str] = []
    for migration in load_migrations():
        fk_off = _FK_OFF in migration.sql
        if fk_off:
            await conn.execute("PRAGMA foreign_keys = OFF")
        try:
            if await _apply_one(conn, migration):
                applied.append(migration.label)
        finally:
            if fk_off:
                await conn.execute("PRAGMA foreign_keys = ON")
    return applied


async def _apply_one(conn: aiosqlite.Connection, migration: Migration) -> bool:
    await conn.execute("BEGIN IMMEDIATE")
    try:
        async with conn.execute(
            "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
        ) as cur:
            if await cur.fetchone() is not None:
                await conn.execute("COMMIT")
                return False
        for statement in split_statements(migration.sql):
            await conn.execute(statement)
        async with conn.execute("PRAGMA foreign_key_check") as cur:
            violation = await cur.fetchone()
        if violation is not None:
            raise RuntimeError(
                f"migration {migration.label} leaves a foreign key violation: {tuple(violation)}"
            )
        await conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
            (migration.version, migration.name),
        )
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    return True


async def migrate(path: str | Path) -> list[str]:
    """Open ``path`` (creating it ``0600`` and its directory ``0700``), apply pending migrations,
    close it.

    Returns the labels (``NNNN_name``) of the migrations this call applied; empty when current.
    """
    path = Path(path)
    await asyncio.to_thread(secure_db_file, path)
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA busy_timeout = 5000")
        await conn.execute("PRAGMA foreign_keys = ON")
        return await apply_migrations(conn)
    finally:
        await conn.close()
