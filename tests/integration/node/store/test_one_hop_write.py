"""``Store.write``: a whole transaction body in one round trip to the writer thread — commits,
rolls back on errors, refuses a body that waits on anything but the store, stays serialized with
``Store.transaction()``, survives the caller's cancellation and wakes the outbox listeners; the
WAL is checkpointed off the write path."""

from __future__ import annotations

import asyncio
import threading
import time
from uuid import uuid4

import aiosqlite
import pytest

from vk_node.errors import NotFound
from vk_node.store import Store, outbox
from vk_node.store.db import CHECKPOINT_EVERY
from vk_node.store.models import Project, Task
from vk_node.store.repositories import projects, tasks
from vk_node.store.sql import fetch_value

from . import _seed


async def _count(store: Store, sql: str) -> int:
    async with store.read() as conn:
        return int(await fetch_value(conn, sql))


@pytest.mark.asyncio
async def test_a_body_commits_and_its_value_is_returned(store: Store) -> None:
    async def body(conn: aiosqlite.Connection) -> Task:
        p = await _seed.project(conn, linked=False)
        return await _seed.task(conn, p, title="one hop")

    created = await store.write(body)
    async with store.read() as conn:
        assert await tasks.get(conn, created.id) == created


@pytest.mark.asyncio
async def test_an_error_rolls_the_whole_body_back(store: Store) -> None:
    """The project inserted before the failing lookup is gone; the error reaches the caller."""

    async def body(conn: aiosqlite.Connection) -> None:
        p = await _seed.project(conn, linked=False, name="doomed")
        await tasks.get(conn, p.id)  # no such task: NotFound

    with pytest.raises(NotFound):
        await store.write(body)
    assert await _count(store, "SELECT COUNT(*) FROM projects") == 0


@pytest.mark.asyncio
async def test_a_body_awaiting_anything_else_is_refused_and_rolled_back(store: Store) -> None:
    async def body(conn: aiosqlite.Connection) -> None:
        await _seed.project(conn, linked=False)
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="only store statements"):
        await store.write(body)
    assert await _count(store, "SELECT COUNT(*) FROM projects") == 0
    await store.write(lambda conn: _seed.project(conn, linked=False))
    assert await _count(store, "SELECT COUNT(*) FROM projects") == 1


@pytest.mark.asyncio
async def test_one_hop_writes_and_transactions_never_lose_an_update(store: Store) -> None:
    """Read-modify-write of one row from both writers at once: every increment lands."""
    p: Project = await store.write(lambda conn: _seed.project(conn, linked=False, name="0"))

    async def bump_in(conn: aiosqlite.Connection) -> None:
        n = int(await fetch_value(conn, "SELECT name FROM projects WHERE id = ?", (p.id.bytes,)))
        await conn.execute("UPDATE projects SET name = ? WHERE id = ?", (str(n + 1), p.id.bytes))

    async def by_transaction() -> None:
        async with store.transaction() as conn:
            await bump_in(conn)

    await asyncio.gather(
        *(store.write(bump_in) for _ in range(20)), *(by_transaction() for _ in range(20))
    )
    assert await _count(store, "SELECT CAST(name AS INTEGER) FROM projects") == 40


@pytest.mark.asyncio
async def test_a_cancelled_caller_does_not_interrupt_the_transaction(store: Store) -> None:
    """The body runs to its commit; the next writer waits for it, then sees its row."""
    started, release = threading.Event(), threading.Event()

    async def body(conn: aiosqlite.Connection) -> Project:
        started.set()
        release.wait(10)  # holds the writer thread until the caller has been cancelled
        return await _seed.project(conn, linked=False, name="kept")

    pending = asyncio.ensure_future(store.write(body))
    assert await asyncio.to_thread(started.wait, 10)
    pending.cancel()
    after = asyncio.ensure_future(_count_in_transaction(store))
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert await after == 1


async def _count_in_transaction(store: Store) -> int:
    async with store.transaction() as conn:
        return int(await fetch_value(conn, "SELECT COUNT(*) FROM projects WHERE name = 'kept'"))


@pytest.mark.asyncio
async def test_outbox_listeners_hear_only_committed_ops(store: Store) -> None:
    heard: list[int] = []
    store.add_outbox_listener(lambda: heard.append(1))
    p: Project = await store.write(lambda conn: _seed.project(conn))  # linked
    assert heard == []

    async def edit(conn: aiosqlite.Connection) -> Task:
        return await _seed.task(conn, p, title="queued")

    await store.write(edit)
    assert heard == [1]

    async def failing(conn: aiosqlite.Connection) -> None:
        await _seed.task(conn, p, title="rolled back")
        await projects.get(conn, (await edit(conn)).id)  # a task id is no project: NotFound

    with pytest.raises(NotFound):
        await store.write(failing)
    assert heard == [1]
    async with store.read() as conn:
        assert await outbox.backlog_count(conn) == 1


@pytest.mark.asyncio
async def test_the_wal_is_checkpointed_in_the_background_every_few_commits(store: Store) -> None:
    """After CHECKPOINT_EVERY commits a passive checkpoint copies the WAL into the database
    file, though the WAL is far below wal_autocheckpoint (no commit checkpointed by itself)."""
    p: Project = await store.write(lambda conn: _seed.project(conn, linked=False))
    before = store.path.stat().st_size
    for k in range(CHECKPOINT_EVERY):

        async def body(conn: aiosqlite.Connection, k: int = k) -> None:
            await tasks.create(
                conn, uuid4(), project_id=p.id, title=f"t{k}", description="x" * 2000
            )

        await store.write(body)
    # The checkpoint writes the pages one by one, so the file grows in steps while it runs:
    # wait for the size it must reach, not for its first page.
    grown = before + CHECKPOINT_EVERY * 2000
    deadline = time.monotonic() + 10
    while store.path.stat().st_size <= grown and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert store.path.stat().st_size > grown
