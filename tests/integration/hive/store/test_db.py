"""The pool releases connections without asyncpg's session reset query (one round trip less per
acquire); a transaction that failed is still rolled back before the connection is reused."""

from __future__ import annotations

import pytest

from vk_hive.store.db import Database


@pytest.mark.asyncio
async def test_a_released_connection_keeps_its_session_but_no_transaction(store_dsn: str) -> None:
    """After a transaction that raised, the next acquire gets the same session, not reset (a
    session setting survives: no RESET ALL ran), outside any transaction, without the failed
    write."""
    db = await Database.connect(store_dsn, min_size=1, max_size=1)
    try:
        async with db.acquire() as conn:
            await conn.execute("CREATE TEMP TABLE scratch (v int)")
            await conn.execute("SET work_mem = '7MB'")
            pid = conn.get_server_pid()

        async def failing_write() -> None:
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO scratch VALUES (1)")
                raise RuntimeError("the work failed")

        with pytest.raises(RuntimeError):
            await failing_write()
        async with db.acquire() as conn:
            assert conn.get_server_pid() == pid
            assert await conn.fetchval("SHOW work_mem") == "7MB"
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM scratch") == 0
    finally:
        await db.close()
