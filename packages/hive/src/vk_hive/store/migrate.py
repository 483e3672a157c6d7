"""Applies the ordered SQL migrations of ``vk_hive/store/migrations``.

Each migration file ``NNNN_name.sql`` runs in its own transaction and is recorded in
``schema_migrations(version, name, applied_at)``. Every transaction first takes a transaction-level
advisory lock, so two hives migrating the same database at once apply each migration exactly once.
Every run also ensures the activity partitions of today, tomorrow and the day after.
The SQL files are the schema; a piccolo model of it (``tests/support/hive_tables.py``) must match
them, checked by ``tests/integration/hive/store/test_tables_match_migrations.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

# Any constant bigint works; this one is ASCII "vkhivemg".
MIGRATION_LOCK_KEY = 0x766B686976656D67

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """All migrations shipped with the package, ordered by version."""
    found: list[Migration] = []
    for entry in resources.files("vk_hive.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def migrate(target: str | asyncpg.Connection, *, through: int | None = None) -> list[str]:
    """Apply pending migrations to ``target`` (a DSN or an open connection), all of them or those
    up to version ``through`` (to build a database as an older hive left it).

    Returns the names (``NNNN_name``) of the migrations applied by this call; empty when the
    database was already current.
    """
    if isinstance(target, str):
        conn = await asyncpg.connect(target)
        try:
            return await _migrate(conn, through)
        finally:
            await conn.close()
    return await _migrate(target, through)


async def _migrate(conn: asyncpg.Connection, through: int | None) -> list[str]:
    applied: list[str] = []
    for migration in load_migrations():
        if through is not None and migration.version > through:
            break
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            await conn.execute(_BOOTSTRAP)
            done = await conn.fetchval(
                "SELECT 1 FROM schema_migrations WHERE version = $1", migration.version
            )
            if done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        applied.append(f"{migration.version:04d}_{migration.name}")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute("SELECT ensure_activity_partitions(now())")
    return applied
