"""Attempt, execution process, log and progress mirrors."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import pytest

from integration.hive.store._world import World
from vk_hive.errors import AttemptNotFound
from vk_hive.store.models import NewOutputLog
from vk_hive.store.repositories import assignments, executions, shared_tasks
from vk_hive.store.repositories.executions import AttemptData, ProcessData
from vk_hive.store.repositories.shared_tasks import NewTask


async def _attempt(world: World, conn: asyncpg.Connection) -> tuple[uuid.UUID, uuid.UUID]:
    task = await shared_tasks.create(
        conn, NewTask(organization_id=world.org_id, swarm_project_id=world.project.id, title="t")
    )
    assignment = await assignments.create(conn, task.task.id, world.node.id, world.link.id)
    attempt = await executions.upsert_attempt(
        conn,
        world.node.id,
        AttemptData(
            id=uuid.uuid4(),
            shared_task_id=task.task.id,
            assignment_id=assignment.id,
            executor="SCRIPT",
            branch="vk/t",
            target_branch="main",
        ),
    )
    return attempt.id, assignment.id


@pytest.mark.asyncio
async def test_attempt_upsert_keeps_sync_state(world: World) -> None:
    """An attempt mirror starts partial; re-upserts update fields but never the sync state."""
    async with world.db.acquire() as conn:
        attempt_id, _ = await _attempt(world, conn)
        await executions.mark_complete(conn, attempt_id)
        found = await executions.find_attempt(conn, attempt_id)
        assert found is not None
        again = await executions.upsert_attempt(
            conn,
            world.node.id,
            AttemptData(
                id=attempt_id,
                shared_task_id=found.shared_task_id,
                assignment_id=found.assignment_id,
                executor="SCRIPT",
                branch="vk/t2",
                target_branch="main",
                worktree_deleted=True,
            ),
        )
    assert again.branch == "vk/t2"
    assert again.worktree_deleted is True
    assert again.sync_state == "complete"


@pytest.mark.asyncio
async def test_process_upsert_requires_the_attempt(world: World) -> None:
    """A process naming an unknown attempt raises AttemptNotFound; a known one upserts."""
    now = dt.datetime.now(dt.UTC)
    async with world.db.acquire() as conn:
        with pytest.raises(AttemptNotFound):
            await executions.upsert_process(
                conn,
                world.node.id,
                ProcessData(
                    id=uuid.uuid4(),
                    attempt_id=uuid.uuid4(),
                    run_reason="codingagent",
                    status="running",
                    started_at=now,
                ),
            )
        attempt_id, _ = await _attempt(world, conn)
        data = ProcessData(
            id=uuid.uuid4(),
            attempt_id=attempt_id,
            run_reason="codingagent",
            status="running",
            started_at=now,
            executor_action={"type": "script"},
        )
        await executions.upsert_process(conn, world.node.id, data)
        assert len(await executions.find_running_by_node_id(conn, world.node.id)) == 1
        data.status, data.exit_code = "completed", 0
        done = await executions.upsert_process(conn, world.node.id, data)
    assert done.status == "completed"
    assert done.exit_code == 0
    assert done.executor_action == {"type": "script"}


@pytest.mark.asyncio
async def test_log_batches_are_idempotent_and_strip_nul(world: World) -> None:
    """Re-sending a log batch inserts nothing twice; NUL bytes are removed; paging by id works."""
    now = dt.datetime.now(dt.UTC)
    async with world.db.acquire() as conn:
        attempt_id, assignment_id = await _attempt(world, conn)
        process = await executions.upsert_process(
            conn,
            world.node.id,
            ProcessData(
                id=uuid.uuid4(),
                attempt_id=attempt_id,
                run_reason="codingagent",
                status="running",
                started_at=now,
            ),
        )
        lines = [
            NewOutputLog(output_type="stdout", content=f"line {i}\x00!", local_log_id=i)
            for i in range(1, 6)
        ]
        assert await executions.insert_logs(conn, assignment_id, process.id, lines) == 5
        assert await executions.insert_logs(conn, assignment_id, process.id, lines[3:]) == 0
        more = [NewOutputLog(output_type="stderr", content="late", local_log_id=6)]
        assert await executions.insert_logs(conn, assignment_id, process.id, lines + more) == 1
        first = await executions.list_logs(conn, assignment_id=assignment_id, limit=4)
        rest = await executions.list_logs(
            conn, assignment_id=assignment_id, after_id=first[-1].id, limit=4
        )
        newest = await executions.list_logs(
            conn, execution_process_id=process.id, limit=2, direction="desc"
        )
        assert await executions.count_logs(conn, assignment_id) == 6
    assert [line.content for line in first] == ["line 1!", "line 2!", "line 3!", "line 4!"]
    assert [line.local_log_id for line in rest] == [5, 6]
    assert [line.content for line in newest] == ["late", "line 5!"]


@pytest.mark.asyncio
async def test_backfill_state_moves_only_from_partial(world: World) -> None:
    """Backfill marks only partial attempts; failed or stale requests return them to partial."""
    async with world.db.acquire() as conn:
        a, _ = await _attempt(world, conn)
        b, _ = await _attempt(world, conn)
        await executions.mark_complete(conn, b)
        request = uuid.uuid4()
        assert await executions.mark_pending_backfill(conn, [a, b], request) == [a]
        incomplete = await executions.find_incomplete_for_node(conn, world.node.id)
        assert {x.id for x in incomplete} == {a}
        assert [x.id for x in await executions.find_by_backfill_request_id(conn, request)] == [a]
        await conn.execute(
            "UPDATE node_task_attempts SET sync_requested_at = now() - interval '1 hour' "
            "WHERE id = $1",
            a,
        )
        assert await executions.reset_stale_pending_backfill(conn, dt.timedelta(minutes=5)) >= 1
        assert await executions.mark_pending_backfill(conn, [a], request) == [a]
        assert await executions.reset_failed_backfill(conn, world.node.id) == 1
        online = await executions.find_incomplete_with_online_nodes(conn, limit=500)
        assert a in {x.id for x in online}
        await executions.mark_pending_backfill(conn, [a], request)
        await executions.reset_attempt_to_partial(conn, a)
        found = await executions.find_attempt(conn, a)
    assert found is not None
    assert found.sync_state == "partial"


@pytest.mark.asyncio
async def test_progress_events_in_time_order(world: World) -> None:
    """Progress events list oldest first and the latest is found."""
    async with world.db.acquire() as conn:
        _, assignment_id = await _attempt(world, conn)
        await executions.create_progress_event(conn, assignment_id, "started", "go")
        await executions.create_progress_event(conn, assignment_id, "step", None, {"n": 2})
        events = await executions.list_progress_events(conn, assignment_id)
        latest = await executions.latest_progress_event(conn, assignment_id)
    assert [e.event_type for e in events] == ["started", "step"]
    assert latest is not None
    assert latest.metadata == {"n": 2}
