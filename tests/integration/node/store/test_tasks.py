"""Task repository: writes and their ops, activity_at rules, listing, archive, hive upserts."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from vk_node.store import NotFound, Store, outbox
from vk_node.store.repositories import activity, execution_processes, tasks
from vk_shared.status import NodeTaskStatus
from vk_shared.wire.ops import OpType, TaskUpsert

from . import _seed


@pytest.mark.asyncio
async def test_create_update_and_status_change_each_enqueue_the_whole_task(store: Store) -> None:
    """create, update, update_status, archive and unarchive each append a task.upsert."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        t = await _seed.task(conn, p, title="first")
        await tasks.update(
            conn, t.id, title="second", description="d", status=t.status, parent_task_id=None
        )
        await tasks.update_status(conn, t.id, NodeTaskStatus.INPROGRESS)
        await tasks.archive(conn, t.id)
        await tasks.unarchive(conn, t.id)
        ops = await outbox.peek_unacked(conn, 100)
    payloads = [op.payload for op in ops]
    assert all(isinstance(x, TaskUpsert) for x in payloads)
    assert [x.title for x in payloads] == ["first", "second", "second", "second", "second"]  # type: ignore[union-attr]
    assert payloads[2].status == NodeTaskStatus.INPROGRESS  # type: ignore[union-attr]
    assert payloads[3].archived_at is not None  # type: ignore[union-attr]
    assert payloads[4].archived_at is None  # type: ignore[union-attr]
    assert {op.op_type for op in ops} == {OpType.TASK_UPSERT}


@pytest.mark.asyncio
async def test_activity_at_moves_on_status_change_and_execution_only(store: Store) -> None:
    """A plain edit keeps activity_at; a status change and a new execution set it."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        t = await _seed.task(conn, p)
        assert t.activity_at is None
        edited = await tasks.update(
            conn, t.id, title="x", description=None, status=t.status, parent_task_id=None
        )
        assert edited.activity_at is None
        moved = await tasks.update_status(conn, t.id, NodeTaskStatus.INPROGRESS)
        assert moved.activity_at is not None
        a = await _seed.attempt(conn, moved)
        await conn.execute("UPDATE tasks SET activity_at = NULL")
        await _seed.process(conn, a)
        assert (await tasks.get(conn, t.id)).activity_at is not None


@pytest.mark.asyncio
async def test_update_moves_activity_and_clears_a_dismissal_only_on_a_status_change(
    store: Store,
) -> None:
    """update() with the same status keeps activity_at and an activity dismissal; with another
    status it sets activity_at and clears the dismissal."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        t = await _seed.task(conn, p)
        await activity.dismiss(conn, t.id)
        edited = await tasks.update(
            conn, t.id, title="x", description=None, status=t.status, parent_task_id=None
        )
        assert (edited.activity_at, edited.status) == (None, NodeTaskStatus.TODO)
        assert await activity.is_dismissed(conn, t.id)
        moved = await tasks.update(
            conn,
            t.id,
            title="y",
            description=None,
            status=NodeTaskStatus.INPROGRESS,
            parent_task_id=None,
        )
        assert moved.status == NodeTaskStatus.INPROGRESS
        assert moved.activity_at is not None
        assert not await activity.is_dismissed(conn, t.id)
        with pytest.raises(NotFound):
            await tasks.update(
                conn, uuid4(), title="z", description=None, status=t.status, parent_task_id=None
            )


@pytest.mark.asyncio
async def test_list_with_attempt_status_visibility_and_order(store: Store) -> None:
    """The list computes attempt flags, hides hive-only tasks with no attempt, sorts by activity."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        older = await _seed.task(conn, p, title="older")
        running = await _seed.task(conn, p, title="running")
        a = await _seed.attempt(conn, running)
        await _seed.process(conn, a)
        failed = await _seed.task(conn, p, title="failed")
        fa = await _seed.attempt(conn, failed)
        fp = await _seed.process(conn, fa)
        await execution_processes.update_completion(conn, fp.id, status="failed", exit_code=1)
        await tasks.upsert_remote_task(
            conn, project_id=p.id, shared_task_id=uuid4(), title="hive-only", description=None,
            status=NodeTaskStatus.TODO, remote_version=1,
        )  # fmt: skip
        archived = await _seed.task(conn, p, title="archived")
        await tasks.archive(conn, archived.id)
        await tasks.update_status(conn, older.id, NodeTaskStatus.INREVIEW)  # newest activity
    async with store.read() as conn:
        listed = await tasks.find_by_project_id_with_attempt_status(conn, p.id)
        with_archived = await tasks.find_by_project_id_with_attempt_status(
            conn, p.id, include_archived=True
        )
    assert [x.title for x in listed] == ["older", "failed", "running"]
    by_title = {x.title: x for x in listed}
    assert by_title["running"].has_in_progress_attempt
    assert not by_title["running"].last_attempt_failed
    assert by_title["failed"].last_attempt_failed
    assert not by_title["failed"].has_in_progress_attempt
    assert by_title["failed"].latest_agent_completed_at is not None
    assert by_title["running"].executor == "SCRIPT"
    assert by_title["older"].executor is None
    assert {x.title for x in with_archived} == {"older", "failed", "running", "archived"}


@pytest.mark.asyncio
async def test_subtasks_and_relationships(store: Store) -> None:
    """Children are found by parent; deleting the parent keeps them with parent_task_id NULL."""
    async with store.transaction() as conn:
        p = await _seed.project(conn, linked=False)
        parent = await _seed.task(conn, p, title="parent")
        c1 = await _seed.task(conn, p, title="c1", parent=parent.id)
        c2 = await _seed.task(conn, p, title="c2", parent=parent.id)
        a = await _seed.attempt(conn, c1)
        rel = await tasks.find_relationships_for_attempt(conn, a)
        assert rel.parent_task is not None
        assert rel.parent_task.id == parent.id
        assert rel.children == []
        kids = await tasks.find_children_by_parent_id(conn, parent.id)
        assert {k.id for k in kids} == {c1.id, c2.id}
        await tasks.delete(conn, parent.id)
        assert (await tasks.get(conn, c1.id)).parent_task_id is None
        assert tasks.to_prompt(c1) == "c1"
        assert tasks.to_prompt(await tasks.update(
            conn, c2.id, title="T", description="D", status=c2.status, parent_task_id=None,
        )) == "T\n\nD"  # fmt: skip


@pytest.mark.asyncio
async def test_archive_many_and_unarchive_if_archived(store: Store) -> None:
    """archive_many archives in one statement with one op per newly archived task."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        ts = [await _seed.task(conn, p, title=f"t{i}") for i in range(3)]
        await outbox.ack_through(conn, 100)
        assert await tasks.archive_many(conn, [t.id for t in ts[:2]]) == 2
        assert await tasks.archive_many(conn, [t.id for t in ts]) == 1
        assert await outbox.backlog_count(conn) == 3
        assert await tasks.unarchive_if_archived(conn, ts[0].id)
        assert not await tasks.unarchive_if_archived(conn, ts[0].id)


@pytest.mark.asyncio
async def test_upsert_remote_task_inserts_then_applies_only_newer_versions(store: Store) -> None:
    """The hive upsert inserts, ignores stale versions, applies newer ones whole (archive
    included), and never enqueues."""
    shared = uuid4()
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        await outbox.ack_through(conn, 100)
        kw = {"project_id": p.id, "shared_task_id": shared, "description": None}
        created = await tasks.upsert_remote_task(
            conn, title="v2", status=NodeTaskStatus.TODO, remote_version=2, **kw
        )
        assert (created.title, created.remote_version) == ("v2", 2)
        assert created.remote_last_synced_at is not None
        stale = await tasks.upsert_remote_task(
            conn, title="v1", status=NodeTaskStatus.DONE, remote_version=1, **kw
        )
        assert (stale.title, stale.id) == ("v2", created.id)
        archived_at = datetime(2024, 1, 1, tzinfo=UTC)
        newer = await tasks.upsert_remote_task(
            conn, title="v3", status=NodeTaskStatus.INPROGRESS, remote_version=3,
            archived_at=archived_at, **kw,
        )  # fmt: skip
        assert (newer.title, newer.status, newer.archived_at) == ("v3", "inprogress", archived_at)
        again = await tasks.upsert_remote_task(
            conn, title="v4", status=NodeTaskStatus.INPROGRESS, remote_version=4, **kw
        )
        # The hive's copy is taken whole: an archive it does not have is cleared.
        assert (again.title, again.archived_at) == ("v4", None)
        assert await outbox.backlog_count(conn) == 0


@pytest.mark.asyncio
async def test_dirty_guard_keeps_a_task_with_unacked_ops(store: Store) -> None:
    """upsert_remote_task returns the local task unchanged while it has unacked outbox ops."""
    shared = uuid4()
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        t = await _seed.task(conn, p, title="local edit")
        assert await tasks.set_shared_task_id(conn, t.id, shared)
        before = await tasks.get(conn, t.id)
        result = await tasks.upsert_remote_task(
            conn, project_id=p.id, shared_task_id=shared, title="hive edit", description=None,
            status=NodeTaskStatus.DONE, remote_version=10,
        )  # fmt: skip
        assert result == before
        await outbox.ack_through(conn, 100)
        result = await tasks.upsert_remote_task(
            conn, project_id=p.id, shared_task_id=shared, title="hive edit", description=None,
            status=NodeTaskStatus.DONE, remote_version=10,
        )  # fmt: skip
        assert (result.id, result.title, result.remote_version) == (t.id, "hive edit", 10)


@pytest.mark.asyncio
async def test_upsert_adopts_a_node_created_task_by_local_id(store: Store) -> None:
    """A hive copy naming our local id attaches the shared id to that row instead of duplicating."""
    shared = uuid4()
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        t = await _seed.task(conn, p)
        await outbox.ack_through(conn, 100)
        adopted = await tasks.upsert_remote_task(
            conn, project_id=p.id, shared_task_id=shared, local_id=t.id, title="t",
            description=None, status=NodeTaskStatus.TODO, remote_version=1,
        )  # fmt: skip
        assert adopted.id == t.id
        assert adopted.shared_task_id == shared


@pytest.mark.asyncio
async def test_shared_id_set_clear_and_soft_unlink(store: Store) -> None:
    """set_shared_task_id refuses a taken id; unlink keeps the row; stale unlink honours keep."""
    s1, s2 = uuid4(), uuid4()
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        t1 = await _seed.task(conn, p)
        t2 = await _seed.task(conn, p)
        assert await tasks.set_shared_task_id(conn, t1.id, s1)
        assert not await tasks.set_shared_task_id(conn, t2.id, s1)
        assert await tasks.set_shared_task_id(conn, t1.id, s1)  # same id again is fine
        assert await tasks.set_shared_task_id(conn, t2.id, s2)
        assert await tasks.find_digest_entries(conn, p.id) == sorted(
            [(t1.id, s1, 1), (t2.id, s2, 1)], key=lambda e: e[0].bytes
        )
        assert await tasks.unlink_stale_shared_tasks(conn, p.id, [s2]) == 1
        assert (await tasks.get(conn, t1.id)).shared_task_id is None
        assert await tasks.unlink_by_shared_task_id(conn, s2)
        kept = await tasks.get(conn, t2.id)
        assert (kept.shared_task_id, kept.remote_version) == (None, 0)


@pytest.mark.asyncio
async def test_lookups_are_scoped(store: Store) -> None:
    """find_by_id_and_project_id does not find a task through another project; get raises."""
    async with store.transaction() as conn:
        p1 = await _seed.project(conn, name="a")
        p2 = await _seed.project(conn, name="b")
        t = await _seed.task(conn, p1)
        assert await tasks.find_by_id_and_project_id(conn, t.id, p1.id) is not None
        assert await tasks.find_by_id_and_project_id(conn, t.id, p2.id) is None
        with pytest.raises(NotFound):
            await tasks.get(conn, uuid4())
