"""Task attempt repository: create (attempt.upsert), context validation, worktree helpers."""

from __future__ import annotations

from uuid import uuid4

import pytest

from vk_node.store import NotFound, Store, outbox
from vk_node.store.repositories import execution_processes, task_attempts
from vk_shared.wire.ops import AttemptUpsert

from . import _seed


@pytest.mark.asyncio
async def test_create_and_updates_publish_attempt_upserts(store: Store) -> None:
    """Creating and changing an attempt of a linked project appends attempt.upsert each time."""
    assignment = uuid4()
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        t = await _seed.task(conn, p)
        a = await _seed.attempt(conn, t)
        assert (a.target_branch, a.executor, a.worktree_deleted) == ("main", "SCRIPT", False)
        await task_attempts.update_container_ref(conn, a.id, "/wt/a")  # local only: no op
        await task_attempts.set_hive_assignment_id(conn, a.id, assignment)
        await task_attempts.mark_worktree_deleted(conn, a.id)
        ops = [op.payload for op in await outbox.peek_unacked(conn, 100)][1:]
    assert all(isinstance(x, AttemptUpsert) for x in ops)
    assert len(ops) == 3
    assert ops[1].assignment_id == assignment  # type: ignore[union-attr]
    assert ops[2].worktree_deleted  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_load_context_validates_the_chain(store: Store) -> None:
    """load_context finds attempt ∈ task ∈ project and refuses a mismatched chain."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        other = await _seed.project(conn, name="other")
        t = await _seed.task(conn, p)
        a = await _seed.attempt(conn, t)
        ctx = await task_attempts.load_context(conn, a.id, t.id, p.id)
        assert (ctx.task_attempt.id, ctx.task.id, ctx.project.id) == (a.id, t.id, p.id)
        with pytest.raises(NotFound):
            await task_attempts.load_context(conn, a.id, t.id, other.id)
        assert await task_attempts.find_by_hive_assignment_id(conn, uuid4()) is None
        assert [x.id for x in await task_attempts.fetch_all_attempts(conn, t.id)] == [a.id]


@pytest.mark.asyncio
async def test_worktree_queries(store: Store) -> None:
    """Live worktrees, path in use (by any or by another attempt), container-ref resolution and
    expiry follow the rules."""
    async with store.transaction() as conn:
        p = await _seed.project(conn, linked=False)
        t = await _seed.task(conn, p)
        a1 = await _seed.attempt(conn, t)
        a2 = await _seed.attempt(conn, t)
        await task_attempts.update_container_ref(conn, a1.id, "/wt/shared")
        await task_attempts.update_container_ref(conn, a2.id, "/wt/shared")
        await _seed.process(conn, a1)  # a1 has a running process
        assert await task_attempts.container_ref_exists(conn, "/wt/shared")
        assert await task_attempts.container_ref_exists(conn, "/wt/shared", besides=a1.id)
        await task_attempts.mark_worktree_deleted(conn, a2.id)
        assert not await task_attempts.container_ref_exists(conn, "/wt/shared", besides=a1.id)
        assert await task_attempts.container_ref_exists(conn, "/wt/shared")
        await task_attempts.reset_worktree_deleted(conn, a2.id)
        resolved = await task_attempts.resolve_container_ref(conn, "/wt/shared")
        assert resolved is not None
        assert resolved.task_attempt.id == a1.id
        assert {x.id for x in await task_attempts.find_by_worktree_deleted(conn)} == {a1.id, a2.id}
        await conn.execute(
            "UPDATE task_attempts SET updated_at = '2000-01-01 00:00:00.000' WHERE id = ?",
            (a2.id.bytes,),
        )
        expired = await task_attempts.find_expired_for_cleanup(conn)
        assert [x.id for x in expired] == [a2.id]  # a1 is running, a2 is stale
        procs = await execution_processes.find_by_task_attempt_id(conn, a1.id)
        await execution_processes.update_completion(conn, procs[0].id, status="completed")
        assert {x.id for x in await task_attempts.find_expired_for_cleanup(conn)} == {a2.id}
