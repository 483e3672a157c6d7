"""Shared tasks: versions, status machine, activity trail, node upserts."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from integration.hive.store._world import World
from vk_hive.errors import InvalidInput, InvalidTransition, NotFound, VersionConflict
from vk_hive.store.repositories import activity, shared_tasks
from vk_hive.store.repositories.shared_tasks import NewTask, NodeTaskData
from vk_shared.status import Author, TaskStatus


def _new(world: World, title: str = "Fix the build") -> NewTask:
    return NewTask(
        organization_id=world.org_id,
        swarm_project_id=world.project.id,
        title=title,
        description="details",
        executor="SCRIPT",
        creator_user_id=world.user_id,
        assignee_user_id=world.user_id,
    )


def _node_data(world: World, local_id: uuid.UUID, **kw: object) -> NodeTaskData:
    base: dict[str, object] = {
        "organization_id": world.org_id,
        "swarm_project_id": world.project.id,
        "source_task_id": local_id,
        "title": "node task",
    }
    base.update(kw)
    return NodeTaskData(**base)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_create_writes_task_created_activity(world: World) -> None:
    """A created task is todo, version 1, keyed by its swarm project, with a task.created event."""
    async with world.db.acquire() as conn:
        created = await shared_tasks.create(conn, _new(world))
        events = await activity.fetch_since(conn, world.project.id, 0)
    task = created.task
    assert (task.status, task.version, task.executor) == (TaskStatus.TODO, 1, "SCRIPT")
    assert task.project_id == task.swarm_project_id == world.project.id
    assert created.user is not None
    assert created.user.username == "alice"
    assert [e.event_type for e in events] == ["task.created"]
    assert events[0].payload["task"]["id"] == str(task.id)
    assert events[0].payload["user"]["id"] == str(world.user_id)


@pytest.mark.asyncio
async def test_update_checks_version_and_status_machine(world: World) -> None:
    """Updates bump the version; a stale version or an illegal transition changes nothing."""
    async with world.db.acquire() as conn:
        task = (await shared_tasks.create(conn, _new(world))).task
        updated = await shared_tasks.update(conn, task.id, title="New", expected_version=1)
        assert updated.task.version == 2
        with pytest.raises(VersionConflict):
            await shared_tasks.update(conn, task.id, title="Stale", expected_version=1)
        with pytest.raises(InvalidTransition):
            await shared_tasks.update(conn, task.id, status=TaskStatus.DONE)
        with pytest.raises(InvalidTransition):
            await shared_tasks.update(
                conn, task.id, status=TaskStatus.IN_PROGRESS, author=Author.NODE
            )
        started = await shared_tasks.set_status(conn, task.id, TaskStatus.IN_PROGRESS, Author.HIVE)
        assert started.task.status == TaskStatus.IN_PROGRESS
        review = await shared_tasks.update_status_from_node(conn, task.id, TaskStatus.IN_REVIEW)
        current = await shared_tasks.get(conn, task.id)
        events = await activity.fetch_since(conn, world.project.id, 0)
    assert review.task.version == current.version == 4
    assert current.title == "New"
    assert [e.event_type for e in events][-3:] == ["task.updated"] * 3


@pytest.mark.asyncio
async def test_concurrent_updates_with_same_version_one_wins(world: World) -> None:
    """Two writers holding version 1: exactly one update succeeds, the other gets a conflict."""
    async with world.db.acquire() as conn:
        task = (await shared_tasks.create(conn, _new(world))).task

    async def write(title: str) -> str:
        async with world.db.transaction() as conn:
            try:
                await shared_tasks.update(conn, task.id, title=title, expected_version=1)
            except VersionConflict:
                return "conflict"
            return "ok"

    assert sorted(await asyncio.gather(write("a"), write("b"))) == ["conflict", "ok"]


@pytest.mark.asyncio
async def test_archive_set_keep_and_clear(world: World) -> None:
    """archived_at is kept unless given; None clears it."""
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    async with world.db.acquire() as conn:
        task = (await shared_tasks.create(conn, _new(world))).task
        archived = await shared_tasks.update(conn, task.id, archived_at=when)
        kept = await shared_tasks.update(conn, task.id, title="x")
        cleared = await shared_tasks.update(conn, task.id, archived_at=None)
    assert archived.task.archived_at == when
    assert kept.task.archived_at == when
    assert cleared.task.archived_at is None


@pytest.mark.asyncio
async def test_assign_and_delete_write_activity(world: World) -> None:
    """Reassigning checks the previous assignee; delete soft-deletes and records task.deleted."""
    async with world.db.acquire() as conn:
        task = (await shared_tasks.create(conn, _new(world))).task
        with pytest.raises(VersionConflict):
            await shared_tasks.assign_task(conn, task.id, None, expected_previous=uuid.uuid4())
        unassigned = await shared_tasks.assign_task(
            conn, task.id, None, expected_previous=world.user_id, expected_version=1
        )
        assert unassigned.task.assignee_user_id is None
        assert unassigned.user is None
        deleted = await shared_tasks.delete_task(conn, task.id, world.user_id, expected_version=2)
        assert deleted.task.deleted_at is not None
        assert await shared_tasks.find_by_id(conn, task.id) is None
        assert await shared_tasks.organization_id(conn, task.id) == world.org_id
        with pytest.raises(NotFound):
            await shared_tasks.update(conn, task.id, title="gone")
        events = await activity.fetch_since(conn, world.project.id, 0)
        snapshot = await shared_tasks.bulk_fetch(conn, world.project.id)
    assert [e.event_type for e in events] == ["task.created", "task.reassigned", "task.deleted"]
    assert snapshot.deleted_task_ids == [task.id]
    assert snapshot.latest_seq == 3


@pytest.mark.asyncio
async def test_text_limit_is_enforced(world: World) -> None:
    """Title plus description above 50 KiB is rejected before touching the table."""
    async with world.db.acquire() as conn:
        with pytest.raises(InvalidInput):
            await shared_tasks.create(conn, _new(world, title="x" * (50 * 1024 + 1)))


@pytest.mark.asyncio
async def test_upsert_from_node_creates_then_updates_by_source(world: World) -> None:
    """A node's task is inserted once (owner = node, activity task.created), then updated."""
    local = uuid.uuid4()
    async with world.db.acquire() as conn:
        created, was_created = await shared_tasks.upsert_from_node(
            conn,
            world.node.id,
            _node_data(world, local, status=TaskStatus.IN_PROGRESS, owner_name="n1"),
        )
        assert was_created
        assert created.task.owner_node_id == world.node.id
        assert created.task.source_node_id == world.node.id
        updated, was_created = await shared_tasks.upsert_from_node(
            conn,
            world.node.id,
            _node_data(world, local, title="renamed", status=TaskStatus.IN_REVIEW),
        )
        assert not was_created
        with pytest.raises(InvalidTransition):
            await shared_tasks.upsert_from_node(
                conn, world.node.id, _node_data(world, local, status=TaskStatus.DONE)
            )
        with pytest.raises(NotFound):
            await shared_tasks.upsert_from_node(
                conn, world.node.id, _node_data(world, uuid.uuid4(), organization_id=uuid.uuid4())
            )
        versions = await shared_tasks.list_source_task_versions_for_node(conn, world.node.id)
        events = await activity.fetch_since(conn, world.project.id, 0)
    assert updated.task.id == created.task.id
    assert (updated.task.title, updated.task.version) == ("renamed", 2)
    assert [(v.source_task_id, v.version) for v in versions] == [(local, 2)]
    assert [e.event_type for e in events] == ["task.created", "task.updated"]


@pytest.mark.asyncio
async def test_upsert_from_node_by_shared_id_updates_hive_task(world: World) -> None:
    """A node op naming a hive-created task updates that row (no duplicate), keeping its owner."""
    async with world.db.acquire() as conn:
        task = (await shared_tasks.create(conn, _new(world))).task
        await shared_tasks.set_status(conn, task.id, TaskStatus.IN_PROGRESS, Author.HIVE)
        result, was_created = await shared_tasks.upsert_from_node(
            conn,
            world.node.id,
            _node_data(
                world,
                uuid.uuid4(),
                shared_task_id=task.id,
                title="from node",
                status=TaskStatus.DONE,
            ),
        )
        count = await conn.fetchval(
            "SELECT count(*) FROM shared_tasks WHERE organization_id = $1", world.org_id
        )
    assert not was_created
    assert count == 1
    assert result.task.id == task.id
    assert result.task.status == TaskStatus.DONE
    assert result.task.owner_node_id is None
    assert result.task.executing_node_id == world.node.id
    assert result.task.assignee_user_id == world.user_id


@pytest.mark.asyncio
async def test_find_by_swarm_project_lists_newest_first_with_owner_url(world: World) -> None:
    """Project listing is newest-updated first and carries the owner node's public URL."""
    async with world.db.acquire() as conn:
        await conn.execute("UPDATE nodes SET public_url = 'http://n1' WHERE id = $1", world.node.id)
        first = (await shared_tasks.create(conn, _new(world, "first"))).task
        node_task, _ = await shared_tasks.upsert_from_node(
            conn, world.node.id, _node_data(world, uuid.uuid4())
        )
        await shared_tasks.update(conn, first.id, title="first again")
        listed = await shared_tasks.find_by_swarm_project_id(conn, world.project.id)
    assert [t.task.id for t in listed] == [first.id, node_task.task.id]
    assert listed[1].owner_public_url == "http://n1"


@pytest.mark.asyncio
async def test_rest_write_and_op_batch_on_one_project_do_not_deadlock(world: World) -> None:
    """A batch that locked the project's counter and then writes two tasks, and a REST write of
    the second task starting in between, queue on the counter instead of deadlocking on
    (task row, counter) in opposite order; both commit."""
    async with world.db.acquire() as conn:
        first = (await shared_tasks.create(conn, _new(world, "first"))).task
        second = (await shared_tasks.create(conn, _new(world, "second"))).task
    batch_has_first = asyncio.Event()

    async def batch() -> None:
        async with world.db.transaction() as conn:
            await activity.lock_projects(conn, [world.project.id])
            await shared_tasks.update(conn, first.id, title="first, by the node")
            batch_has_first.set()
            await asyncio.sleep(0.2)  # the REST write starts meanwhile
            await shared_tasks.update(conn, second.id, title="second, by the node")

    async def rest() -> None:
        await batch_has_first.wait()
        async with world.db.transaction() as conn:
            await shared_tasks.update(conn, second.id, title="second, by a user")

    await asyncio.wait_for(asyncio.gather(batch(), rest()), 20)
    async with world.db.acquire() as conn:
        final = await shared_tasks.get(conn, second.id)
    assert final.title == "second, by a user"  # the REST write waited for the batch
    assert final.version == second.version + 2
