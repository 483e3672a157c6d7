"""Execution processes: completion, restore boundary, recovery helpers, session lookups."""

from __future__ import annotations

import pytest

from vk_node.store import Store, outbox
from vk_node.store.repositories import execution_processes as ep
from vk_node.store.repositories import executor_sessions, workstream
from vk_shared.wire.ops import ExecutionUpsert, OpType

from . import _seed


@pytest.mark.asyncio
async def test_create_and_completion_publish_execution_upserts(store: Store) -> None:
    """A process starts running and its completion (with completed_at) is published."""
    async with store.transaction() as conn:
        _, _, _, e = await _seed.world(conn)
        assert (e.status, e.completed_at, e.executor_action_type) == (
            "running",
            None,
            "CodingAgentInitialRequest",
        )
        done = await ep.update_completion(
            conn, e.id, status="completed", exit_code=0, completion_reason="result_success"
        )
        assert done.completed_at is not None
        assert await ep.was_stopped(conn, e.id)
        ops = [
            op.payload
            for op in await outbox.peek_unacked(conn, 100)
            if op.op_type is OpType.EXECUTION_UPSERT
        ]
    assert [x.status for x in ops] == ["running", "completed"]  # type: ignore[union-attr]
    assert isinstance(ops[1], ExecutionUpsert)
    assert ops[1].exit_code == 0


@pytest.mark.asyncio
async def test_restore_boundary_drops_at_and_after_and_never_undrops(store: Store) -> None:
    """drop_at_and_after hides the boundary and later processes; set_restore_boundary only later."""
    async with store.transaction() as conn:
        _, _, a, first = await _seed.world(conn)
        second = await _seed.process(conn, a)
        third = await _seed.process(conn, a)
        assert await ep.count_later_than(conn, a.id, first.id) == 2
        assert await ep.set_restore_boundary(conn, a.id, second.id) == 1
        assert [x.id for x in await ep.find_by_task_attempt_id(conn, a.id)] == [
            first.id,
            second.id,
        ]
        assert await ep.drop_at_and_after(conn, a.id, first.id) == 2
        assert await ep.find_by_task_attempt_id(conn, a.id) == []
        everything = await ep.find_by_task_attempt_id(conn, a.id, include_dropped=True)
        assert [x.id for x in everything] == [first.id, second.id, third.id]
        assert all(x.dropped for x in everything)
        assert await ep.set_restore_boundary(conn, a.id, third.id) == 0  # never un-drops
        assert await ep.find_latest_for_attempt(conn, a.id) is None


@pytest.mark.asyncio
async def test_orphans_fail_unless_being_resumed(store: Store) -> None:
    """mark_orphaned_as_failed fails other instances' running rows except pending/resumed ones."""
    async with store.transaction() as conn:
        _, _, a, mine = await _seed.world(conn)
        await conn.execute(
            "UPDATE execution_processes SET server_instance_id = 'me' WHERE id = ?",
            (mine.id.bytes,),
        )
        orphan = await _seed.process(conn, a)
        resuming = await _seed.process(conn, a)
        await ep.set_resume_state(conn, resuming.id, "pending")
        assert await ep.mark_orphaned_as_failed(conn, "me") == 1
        assert (await ep.get(conn, orphan.id)).status == "failed"
        assert (await ep.get(conn, mine.id)).status == "running"
        assert (await ep.get(conn, resuming.id)).status == "running"
        assert await ep.increment_fence_attempt_count(conn, orphan.id) == 1
        assert await ep.increment_fence_attempt_count(conn, orphan.id) == 2
        await ep.update_pid(conn, mine.id, 4242)
        assert [x.id for x in await ep.find_running_with_pids(conn)] == [mine.id]
        assert [x.id for x in await ep.find_running_by_instance(conn, "me")] == [mine.id]


@pytest.mark.asyncio
async def test_session_lookups_and_workstream_view(store: Store) -> None:
    """Session ids come from the newest agent process; the view joins process and session."""
    async with store.transaction() as conn:
        _, _, a, first = await _seed.world(conn)
        second = await _seed.process(conn, a)
        await executor_sessions.create(conn, a.id, first.id, "p1")
        await executor_sessions.create(conn, a.id, second.id, "p2")
        await executor_sessions.update_session_id(conn, first.id, "s1")
        await executor_sessions.update_session_id(conn, second.id, "s2")
        assert await ep.find_latest_session_id_by_task_attempt(conn, a.id) == "s2"
        assert await ep.find_session_id_before_process(conn, a.id, second.id) == "s1"
        assert await ep.find_previous_session_ids(conn, a.id, 5) == ["s2", "s1"]
        # Timestamps have millisecond resolution: processes started in the same millisecond
        # keep their creation order.
        tied = await conn.execute(
            "UPDATE execution_processes SET created_at = '2026-01-01 00:00:00.000' "
            "WHERE task_attempt_id = ?",
            (a.id.bytes,),
        )
        assert tied.rowcount == 2
        assert await ep.find_session_id_before_process(conn, a.id, second.id) == "s1"
        assert await ep.find_session_id_before_process(conn, a.id, first.id) is None
        await ep.update_after_head_commit(conn, first.id, "c1c1c1c")
        await ep.update_after_head_commit(conn, second.id, "c2c2c2c")
        assert await ep.find_prev_after_head_commit(conn, a.id, second.id) == "c1c1c1c"
        assert await ep.find_prev_after_head_commit(conn, a.id, first.id) is None
        await ep.update_completion(conn, second.id, status="failed")
        assert await executor_sessions.count_fixable_sessions(conn, a.id) == 1
        assert await executor_sessions.invalidate_failed_sessions(conn, a.id) == 1
        assert await ep.find_latest_session_id_by_task_attempt(conn, a.id) == "s1"
        await ep.set_resume_state(conn, first.id, "pending")
        await conn.execute("UPDATE task_attempts SET container_ref = '/wt'")
        (state,) = await workstream.find_resumable_running(conn)
        assert (state.execution_process_id, state.session_id) == (first.id, "s1")
        assert len(await workstream.find_by_task_attempt(conn, a.id)) == 2
        profile = await ep.latest_executor_profile_for_attempt(conn, a.id)
        assert profile == {"executor": "SCRIPT"}
