"""The activity feed: gapless per-project seqs, partitions, NOTIFY, readers."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest

from vk_hive.store.db import Database
from vk_hive.store.repositories import activity


@pytest.mark.asyncio
async def test_concurrent_appends_get_gapless_seqs_per_project(store_db: Database) -> None:
    """Twenty concurrent transactions appending to one project get exactly seqs 1..20."""
    project = uuid.uuid4()

    async def one(i: int) -> int:
        async with store_db.transaction() as conn:
            event = await activity.append(conn, project, "task.updated", {"i": i})
            await asyncio.sleep(0)
            return event.seq

    seqs = await asyncio.gather(*(one(i) for i in range(20)))
    assert sorted(seqs) == list(range(1, 21))
    async with store_db.acquire() as conn:
        assert await activity.last_seq(conn, project) == 20
        page = await activity.fetch_since(conn, project, 5, limit=10)
    assert [e.seq for e in page] == list(range(6, 16))


@pytest.mark.asyncio
async def test_rolled_back_append_leaves_no_gap(store_db: Database) -> None:
    """An append whose transaction rolls back does not consume a seq."""
    project = uuid.uuid4()
    async with store_db.acquire() as conn:
        await activity.append(conn, project, "task.created", {})
        tx = conn.transaction()
        await tx.start()
        await activity.append(conn, project, "task.updated", {})
        await tx.rollback()
        event = await activity.append(conn, project, "task.updated", {"x": 1})
        assert event.seq == 2
        found = await activity.fetch_by_seq(conn, project, 2)
    assert found is not None
    assert found.payload == {"x": 1}


@pytest.mark.asyncio
async def test_projects_have_independent_sequences(store_db: Database) -> None:
    """Each project's stream starts at 1 regardless of the others."""
    a, b = uuid.uuid4(), uuid.uuid4()
    async with store_db.acquire() as conn:
        await activity.append(conn, a, "task.created", {})
        await activity.append(conn, a, "task.created", {})
        first_b = await activity.append(conn, b, "task.created", {})
        assert first_b.seq == 1
        assert [e.seq for e in await activity.fetch_since(conn, a, 0)] == [1, 2]


@pytest.mark.asyncio
async def test_missing_partition_is_created_and_caller_transaction_survives(
    hive_db: Database,
) -> None:
    """With today's partition gone, append ensures partitions, retries once, and the caller's
    earlier writes in the same transaction still commit."""
    async with hive_db.acquire() as conn:
        today = await conn.fetchval(
            "SELECT 'activity_p_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')"
        )
        await conn.execute(f'ALTER TABLE activity DETACH PARTITION "{today}"')
        await conn.execute(f'DROP TABLE "{today}"')
        project = uuid.uuid4()
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO organizations (name, slug) VALUES ('before', 'before-append')"
            )
            event = await activity.append(conn, project, "task.created", {"ok": True})
        assert event.seq == 1
        assert await conn.fetchval(
            "SELECT count(*) FROM organizations WHERE slug = 'before-append'"
        )
        assert await conn.fetchval("SELECT to_regclass($1)", today) is not None


@pytest.mark.asyncio
async def test_insert_notifies_activity_channel(store_db: Database, store_dsn: str) -> None:
    """Committing an activity row sends a pg_notify on 'activity' with seq, project and type."""
    project = uuid.uuid4()
    received: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(store_dsn)
    try:
        await listener.add_listener("activity", lambda *args: received.put_nowait(args[3]))
        async with store_db.transaction() as conn:
            await activity.append(conn, project, "task.deleted", {"task": {}})
        while True:
            note = json.loads(await asyncio.wait_for(received.get(), 5))
            if note["project_id"] == str(project):
                break
    finally:
        await listener.close()
    assert note["seq"] == 1
    assert note["event_type"] == "task.deleted"
    assert set(note) == {"seq", "event_id", "project_id", "event_type", "created_at"}


@pytest.mark.asyncio
async def test_min_retained_seq_tracks_retention(hive_db: Database) -> None:
    """min_retained_seq is the oldest stored seq, and last_seq+1 once retention dropped all."""
    project = uuid.uuid4()
    async with hive_db.acquire() as conn:
        assert await activity.min_retained_seq(conn, project) == 1
        for _ in range(3):
            await activity.append(conn, project, "task.updated", {})
        assert await activity.min_retained_seq(conn, project) == 1
        dropped = await conn.fetch(
            "SELECT drop_activity_partitions_before(now() + interval '10 days') AS name"
        )
        assert len(dropped) == 3
        assert await activity.min_retained_seq(conn, project) == 4
        assert await activity.fetch_since(conn, project, 0) == []
        created = await activity.ensure_partitions(conn)
        assert len(created) == 3
        assert (await activity.append(conn, project, "task.updated", {})).seq == 4


@pytest.mark.asyncio
async def test_fetch_by_swarm_project_and_limits(store_db: Database) -> None:
    """Events keyed to a swarm project are readable by it; page sizes are capped at 500."""
    async with store_db.acquire() as conn:
        org = await conn.fetchval(
            "INSERT INTO organizations (name, slug) VALUES ('o', $1) RETURNING id",
            uuid.uuid4().hex,
        )
        project = await conn.fetchval(
            "INSERT INTO swarm_projects (organization_id, name) VALUES ($1, 'p') RETURNING id", org
        )
        for _ in range(3):
            await activity.append(conn, project, "task.updated", {}, swarm_project_id=project)
        by_swarm = await activity.fetch_since_by_swarm_project(conn, project, 1)
        capped = await activity.fetch_since(conn, project, 0, limit=10_000)
    assert [e.seq for e in by_swarm] == [2, 3]
    assert len(capped) == 3
    assert activity.MAX_LIMIT == 500
