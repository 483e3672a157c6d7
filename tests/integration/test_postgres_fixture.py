"""The PostgreSQL fixture chain of DESIGN.md §9 serves real databases."""

from __future__ import annotations

import asyncpg
import pytest

from support.postgres import DatabaseFactory, PostgresServer, find_server, release_server


@pytest.mark.asyncio
async def test_fresh_database_creates_inserts_and_reads(pg_database: str) -> None:
    """A per-test database accepts DDL and returns what was written."""
    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
        await conn.executemany("INSERT INTO notes VALUES ($1, $2)", [(1, "one"), (2, "two")])
        rows = await conn.fetch("SELECT id, body FROM notes ORDER BY id")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [(1, "one"), (2, "two")]


@pytest.mark.asyncio
async def test_factory_drops_every_database_it_created(pg_server: PostgresServer) -> None:
    """Databases made by a factory are gone after drop_all, so runs leave nothing behind."""
    factory = DatabaseFactory(pg_server, prefix="vk_droptest")
    first = await factory.create("a")
    await factory.create("b")
    conn = await asyncpg.connect(pg_server.admin_url)
    try:
        names = {
            r["datname"]
            for r in await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", factory.run_id + "%"
            )
        }
        assert len(names) == 2
        assert first.rsplit("/", 1)[1] in names
        await factory.drop_all()
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname LIKE $1", factory.run_id + "%"
        )
    finally:
        await conn.close()
    assert left == 0


def test_closed_port_falls_back_to_throwaway_initdb_cluster() -> None:
    """With no URL, nothing on the port and no Docker, the chain starts its own cluster."""
    server = find_server(env={}, port=1, allow_docker=False)
    try:
        assert server.source.startswith("throwaway initdb cluster")

        async def roundtrip() -> int:
            conn = await asyncpg.connect(server.admin_url)
            try:
                return int(await conn.fetchval("SELECT 40 + 2"))
            finally:
                await conn.close()

        import asyncio

        assert asyncio.run(roundtrip()) == 42
    finally:
        release_server(server)


def test_unreachable_explicit_url_is_a_clear_error() -> None:
    """An operator-supplied URL that does not answer is reported, not silently replaced."""
    from support.postgres import NoPostgresError

    with pytest.raises(NoPostgresError, match="VK_TEST_DATABASE_URL is set but"):
        find_server(env={"VK_TEST_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres"})
