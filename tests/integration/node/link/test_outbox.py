"""The outbox stream against a real hive: every op reaches it exactly once, acks drain the
backlog, rejections are recorded."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import pytest

from support.node_link import World, wait_for
from vk_node.services.tasks import TaskChanges, archive_task, update_task
from vk_node.store.models import Task
from vk_node.store.repositories import tasks as tasks_repo
from vk_node.store.sql import fetch_one
from vk_shared.status import NodeTaskStatus
from vk_shared.wire import DigestResult


@pytest.mark.asyncio
async def test_a_thousand_local_writes_reach_the_hive_exactly_once(world: World) -> None:
    """1,000 task writes in a linked project become 1,000 hive tasks; the backlog drains to 0."""
    node = await world.node()
    await asyncio.wait_for(node.link.connected.wait(), 10)
    for start in range(0, 1000, 100):
        async with node.store.transaction() as conn:
            for i in range(start, start + 100):
                await tasks_repo.create(
                    conn, uuid4(), project_id=node.project_id, title=f"task {i}"
                )

    async def drained() -> bool:
        return await node.backlog() == 0

    await wait_for(drained, within=60, what="the outbox backlog to drain")
    async with world.hive.ctx.database.acquire() as conn:  # type: ignore[union-attr]
        rows = await conn.fetch(
            "SELECT title FROM shared_tasks WHERE swarm_project_id = $1 AND deleted_at IS NULL",
            world.swarm_project_id,
        )
    titles = [r["title"] for r in rows]
    assert len(titles) == 1000
    assert len(set(titles)) == 1000
    status = await node.link.status()
    assert status.outbox_backlog == 0
    assert node.link.sender.sent_ops >= 1000


@pytest.mark.asyncio
async def test_an_illegal_transition_is_rejected_recorded_and_does_not_block(world: World) -> None:
    """The hive rejects todo→inreview; the node records why and later ops still flow."""
    node = await world.node()
    await asyncio.wait_for(node.link.connected.wait(), 10)
    task_id = uuid4()
    async with node.store.transaction() as conn:
        await tasks_repo.create(conn, task_id, project_id=node.project_id, title="t")
        await tasks_repo.update_status(conn, task_id, NodeTaskStatus.INREVIEW)
        await tasks_repo.create(conn, uuid4(), project_id=node.project_id, title="after")

    async def drained() -> bool:
        return await node.backlog() == 0

    await wait_for(drained, what="the backlog to drain")
    async with node.store.read() as conn:
        row = await fetch_one(
            conn,
            "SELECT reject_code FROM node_outbox WHERE rejected_at IS NOT NULL AND seq = 2",
        )
    assert row is not None
    assert row["reject_code"] == "illegal_transition"
    assert node.link.stats.rejections == 1


@pytest.mark.asyncio
async def test_a_refused_edit_of_a_hive_task_is_taken_back(world: World) -> None:
    """A local edit and archive of a hive task the node does not own are refused by the hive
    (no assignment); the node takes the hive's copy back — title, archive and version — so a
    digest then finds nothing to pull."""
    node = await world.node()
    await node.ready()
    r = await world.http.post(
        "/v1/tasks", json={"project_id": str(world.swarm_project_id), "title": "hive's"}
    )
    assert r.status_code == 201, r.text
    shared = UUID(r.json()["task"]["id"])

    async def local() -> Task | None:
        async with node.store.read() as conn:
            return await tasks_repo.find_by_shared_task_id(conn, shared)

    copy = await wait_for(local, what="the local copy of the hive task")
    await update_task(node.store, copy.id, TaskChanges(title="mine"))
    await archive_task(node.store, copy.id)

    async def taken_back() -> bool:
        task = await local()
        return (
            await node.backlog() == 0
            and task is not None
            and (task.title, task.archived_at, task.remote_version) == ("hive's", None, 1)
        )

    await wait_for(taken_back, what="the hive's copy to replace the refused edits")
    assert node.link.stats.rejections == 2
    node.link.stats.last_digest_result = None
    assert await node.link.send_digest()

    async def answered() -> DigestResult | None:
        return node.link.stats.last_digest_result

    result = await wait_for(answered, what="the digest_result")
    assert result.pull_entities == []
