"""The Store connection layer: transactions commit/roll back and never interleave; reads see
committed snapshots; close checkpoints the WAL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import pytest

from vk_node.store import Store
from vk_node.store.repositories import projects
from vk_node.store.sql import fetch_value


@pytest.mark.asyncio
async def test_concurrent_transactions_are_serialized(store: Store) -> None:
    """Many coroutines doing read-modify-write in transactions never lose an update."""
    async with store.transaction() as conn:
        await conn.execute("CREATE TEMP TABLE counter (n INTEGER)")
        await conn.execute("INSERT INTO counter VALUES (0)")

    async def bump() -> None:
        async with store.transaction() as conn:
            n = await fetch_value(conn, "SELECT n FROM counter")
            await asyncio.sleep(0)
            await conn.execute("UPDATE counter SET n = ?", (n + 1,))

    await asyncio.gather(*(bump() for _ in range(40)))
    async with store.transaction() as conn:
        assert await fetch_value(conn, "SELECT n FROM counter") == 40


@pytest.mark.asyncio
async def test_reads_see_only_committed_data(store: Store) -> None:
    """A read during an open write transaction does not see its uncommitted rows."""
    project_id = uuid4()
    async with store.transaction() as conn:
        await projects.create(conn, project_id, name="p", git_repo_path="/r/p")
        async with store.read() as reader:
            assert await projects.find_by_id(reader, project_id) is None
    async with store.read() as reader:
        assert await projects.find_by_id(reader, project_id) is not None


@pytest.mark.asyncio
async def test_closed_store_refuses_work_and_close_is_idempotent(node_db_path: Path) -> None:
    """After close() the store raises on use, and a second close() is a no-op."""
    store = await Store.open(node_db_path)
    await store.close()
    await store.close()
    assert store.closed
    with pytest.raises(RuntimeError, match="closed"):
        async with store.transaction():
            pass


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["read", "transaction"])
async def test_cancelled_while_beginning_leaves_no_transaction_open(
    store: Store, kind: str
) -> None:
    """A task cancelled while its BEGIN is queued on the connection's thread (the statement still
    runs there) leaves the connection clean: later reads and writes start their own transactions."""
    entered = asyncio.Event()

    async def victim() -> None:
        ctx = store.read() if kind == "read" else store.transaction()
        async with ctx:
            entered.set()

    for _ in range(5):
        task = asyncio.create_task(victim())
        await asyncio.sleep(0)  # the task now waits for its BEGIN
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with store.read() as conn:
            assert await fetch_value(conn, "SELECT 1") == 1
        async with store.transaction() as conn:
            assert await fetch_value(conn, "SELECT 1") == 1
