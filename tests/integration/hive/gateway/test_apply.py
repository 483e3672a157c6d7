"""op_batch apply: dedup, PARK, SKIP+ADVANCE, fencing, status authors, execution mirrors."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest

from vk_hive.store.repositories import assignments, executions, shared_tasks
from vk_shared.protocol import MAX_TASK_TEXT_BYTES
from vk_shared.wire import (
    AssignmentStatus,
    ExecutionUpsert,
    LeaseRevoked,
    LinkProject,
    LogEntry,
    LogsAppend,
    OpRejected,
    TaskAssign,
)

from .conftest import Node, World, now, run_ops

pytestmark = pytest.mark.asyncio


async def _count(world: World, sql: str, *args: object) -> int:
    async with world.db.acquire() as conn:
        return int(await conn.fetchval(sql, *args))


async def _shared_id(world: World, node: Node, local_id: uuid.UUID) -> uuid.UUID:
    async with world.db.acquire() as conn:
        task = await shared_tasks.find_by_source_task_id(conn, node.id, local_id)
    assert task is not None
    return task.id


async def test_same_batch_twice_applies_once(world: World) -> None:
    """Re-sending a batch applies nothing twice and acks the same seq."""
    node = await world.node()
    ops = [node.task_op(title=f"t{i}") for i in range(3)]
    first = await node.batch(*ops)
    again = await node.batch(*ops)
    assert first.applied_through_seq == again.applied_through_seq == 3
    assert await _count(world, "SELECT count(*) FROM shared_tasks") == 3
    assert await _count(world, "SELECT count(*) FROM node_op_log") == 3


async def test_a_batch_behind_a_parked_one_stops_at_the_gap(world: World) -> None:
    """Two batches in flight: the first parks at its second op, so the second batch starts past
    the applied-through seq. The hive applies nothing of it (it would advance the cursor over
    the parked op, which the node would then count as acked though never applied); once the
    parked op can apply, the resent ops apply in order, each once."""
    node = await world.node()
    ok = node.task_op(title="fine")
    later_project = uuid.uuid4()
    parked = node.task_op(title="parked", project_id=later_project)
    behind = [node.task_op(title=f"behind {i}") for i in range(2)]
    ack = await node.batch(ok, parked)
    assert ack.applied_through_seq == ok.seq
    ack = await node.batch(*behind)  # sent before the first ack came back
    assert ack.applied_through_seq == ok.seq
    assert await _count(world, "SELECT count(*) FROM node_op_log") == 1
    assert await _count(world, "SELECT count(*) FROM shared_tasks") == 1
    project2 = await world.project("second")
    await node.client.send(
        LinkProject(project_id=project2, local_project_id=later_project, git_repo_path="/r2")
    )
    await world.wait_linked(node.id, project2)
    ack = await node.batch(parked, *behind)
    assert ack.applied_through_seq == behind[-1].seq
    assert await _count(world, "SELECT count(*) FROM node_op_log") == 4
    assert await _count(world, "SELECT count(*) FROM shared_tasks") == 4


async def test_unknown_local_project_parks_then_resumes(world: World) -> None:
    """An op whose local project the hive has not heard of parks the batch; after the link it
    applies."""
    node = await world.node()
    ok = node.task_op(title="fine")
    later_project = uuid.uuid4()
    parked = node.task_op(title="parked", project_id=later_project)
    ack = await node.batch(ok, parked)
    assert ack.applied_through_seq == ok.seq
    project2 = await world.project("second")
    await node.client.send(
        LinkProject(project_id=project2, local_project_id=later_project, git_repo_path="/r2")
    )
    await world.wait_linked(node.id, project2)
    ack = await node.batch(parked)
    assert ack.applied_through_seq == parked.seq
    assert (
        await _count(
            world, "SELECT count(*) FROM shared_tasks WHERE swarm_project_id = $1", project2
        )
        == 1
    )


async def test_unlinked_project_is_skipped_and_advanced(world: World) -> None:
    """An op for a known but unlinked local project is rejected and the cursor moves past it."""
    node = await world.node(link=False)
    bad = node.task_op()
    good_after = node.task_op(title="never linked either")
    ack = await node.batch(bad, good_after)
    assert ack.applied_through_seq == good_after.seq
    rejected = await node.client.expect(OpRejected)
    assert rejected.seq == bad.seq
    assert rejected.code == "project_not_linked"


async def test_stale_token_is_rejected_with_lease_revoked(world: World) -> None:
    """An op with an old fencing token is rejected, the lease revoked, the task unchanged."""
    node = await world.node()
    created = await world.create_task(start_attempt=True)
    assign = await node.client.expect(TaskAssign)
    task_id = uuid.UUID(created["task"]["id"])
    local = uuid.uuid4()
    op = node.task_op(local, shared_task_id=task_id, status="inreview", title="x", token=None)
    ack = await node.batch(op)
    assert ack.applied_through_seq == op.seq
    rejected = await node.client.expect(OpRejected)
    assert rejected.code == "stale_fencing_token"
    revoked = await node.client.expect(LeaseRevoked)
    assert revoked.assignment_id == assign.assignment_id
    async with world.db.acquire() as conn:
        task = await shared_tasks.get(conn, task_id)
    assert task.status == "in-progress"
    assert task.title == "t"
    # With the current token the node-authored transition applies.
    ok = node.task_op(
        local, shared_task_id=task_id, status="inreview", title="x", token=assign.fencing_token
    )
    await node.batch(ok)
    async with world.db.acquire() as conn:
        task = await shared_tasks.get(conn, task_id)
    assert task.status == "in-review"
    assert task.title == "x"


async def test_owner_needs_no_lease_and_may_make_any_legal_transition(world: World) -> None:
    """The owning node updates its own task without a token, incl. hive-authored transitions."""
    node = await world.node()
    local = uuid.uuid4()
    await node.batch(node.task_op(local, status="todo"))
    await node.batch(node.task_op(local, status="inprogress"))
    await node.batch(node.task_op(local, status="cancelled"))
    shared = await _shared_id(world, node, local)
    async with world.db.acquire() as conn:
        assert (await shared_tasks.get(conn, shared)).status == "cancelled"


async def test_illegal_transition_is_rejected(world: World) -> None:
    """A transition the state machine does not allow is rejected, never coerced."""
    node = await world.node()
    local = uuid.uuid4()
    await node.batch(node.task_op(local, status="done"))
    back = node.task_op(local, status="inprogress")
    ack = await node.batch(back)
    assert ack.applied_through_seq == back.seq
    rejected = await node.client.expect(OpRejected)
    assert rejected.code == "illegal_transition"
    async with world.db.acquire() as conn:
        task = await shared_tasks.get(conn, await _shared_id(world, node, local))
    assert task.status == "done"


async def test_other_orgs_task_is_rejected_and_nothing_changes(world: World) -> None:
    """An op naming another organization's task is rejected as forbidden; that task is unchanged."""
    other_org = await world.other_org()
    other_project = await world.project("foreign", org_id=other_org)
    foreign = await world.node(api_key=await world.api_key(other_org), project_id=other_project)
    local = uuid.uuid4()
    await foreign.batch(foreign.task_op(local, title="theirs"))
    their_task = await _shared_id(world, foreign, local)
    node = await world.node()
    op = node.task_op(shared_task_id=their_task, title="mine now")
    ack = await node.batch(op)
    assert ack.applied_through_seq == op.seq
    assert (await node.client.expect(OpRejected)).code == "forbidden"
    async with world.db.acquire() as conn:
        assert (await shared_tasks.get(conn, their_task)).title == "theirs"


async def test_attempts_executions_and_logs_are_mirrored_once(world: World) -> None:
    """Attempt, execution and log ops of an owned task are mirrored; logs are inserted once."""
    node = await world.node()
    local_task = uuid.uuid4()
    attempt_id, exec_id = uuid.uuid4(), uuid.uuid4()
    entries = [
        LogEntry(id=i, output_type="stdout", content=f"line {i}", timestamp=now())
        for i in range(1, 11)
    ]
    ops = [
        node.task_op(local_task, status="inprogress"),
        *run_ops(node, local_task, attempt_id, exec_id),
        node.op(
            LogsAppend(execution_id=exec_id, first_log_id=1, last_log_id=10, entries=entries),
            entity_id=exec_id,
        ),
    ]
    ack = await node.batch(*ops)
    assert ack.applied_through_seq == ops[-1].seq
    # The same log range again under a new key (a re-read after a crash) inserts nothing.
    again = node.op(
        LogsAppend(execution_id=exec_id, first_log_id=1, last_log_id=10, entries=entries),
        entity_id=exec_id,
    )
    await node.batch(again)
    async with world.db.acquire() as conn:
        attempt = await executions.find_attempt(conn, attempt_id)
        process = await executions.find_process(conn, exec_id)
    assert attempt is not None
    assert attempt.branch == "vk/a"
    assert process is not None
    assert process.status == "running"
    count = "SELECT count(*) FROM node_task_output_logs WHERE execution_process_id = $1"
    assert await _count(world, count, exec_id) == 10


async def test_a_run_of_logs_is_fenced_op_by_op(world: World) -> None:
    """Log ops of one execution of a hive-assigned task in one batch: those with the current
    token land; one with another token in the middle of the run is rejected (the checks of the
    run are reused only for the token they were made for); after the assignment is closed in
    the same batch, a further log op is rejected too."""
    node = await world.node()
    await world.create_task(start_attempt=True)
    assign = await node.client.expect(TaskAssign)
    token = assign.fencing_token
    attempt_id, exec_id = uuid.uuid4(), uuid.uuid4()

    def logs(first: int, op_token: int | None) -> Any:
        entries = [
            LogEntry(id=i, output_type="stdout", content=f"line {i}", timestamp=now())
            for i in range(first, first + 5)
        ]
        return node.op(
            LogsAppend(
                execution_id=exec_id, first_log_id=first, last_log_id=first + 4, entries=entries
            ),
            entity_id=exec_id,
            token=op_token,
        )

    ops = [
        *run_ops(
            node,
            assign.task_id,
            attempt_id,
            exec_id,
            token=token,
            shared_task_id=assign.task_id,
            assignment_id=assign.assignment_id,
        ),
        logs(1, token),
        logs(6, token),
        logs(11, token + 1000),  # not the current token: rejected
        logs(16, token),
        node.op(
            AssignmentStatus(assignment_id=assign.assignment_id, status="completed"),
            entity_id=assign.assignment_id,
            token=token,
        ),
        logs(21, token),  # the assignment is closed: rejected
    ]
    ack = await node.batch(*ops)
    assert ack.applied_through_seq == ops[-1].seq
    rejected = [m for m in await node.client.drain() if isinstance(m, OpRejected)]
    assert sorted(r.seq for r in rejected) == [ops[4].seq, ops[7].seq]
    count = "SELECT count(*) FROM node_task_output_logs WHERE execution_process_id = $1"
    assert await _count(world, count, exec_id) == 15


async def test_child_of_unknown_attempt_parks(world: World) -> None:
    """An execution whose attempt the hive has never seen parks (it may still arrive)."""
    node = await world.node()
    exec_id = uuid.uuid4()
    op = node.op(
        ExecutionUpsert(
            id=exec_id, attempt_id=uuid.uuid4(), run_reason="x", status="running", started_at=now()
        ),
        entity_id=exec_id,
    )
    ack = await node.batch(op)
    assert ack.applied_through_seq == 0


async def test_assignment_status_running_then_completed_closes_it(world: World) -> None:
    """assignment.status with the current token records the status and completes on terminal."""
    node = await world.node()
    await world.create_task(start_attempt=True)
    assign = await node.client.expect(TaskAssign)
    running = node.op(
        AssignmentStatus(assignment_id=assign.assignment_id, status="running"),
        entity_id=assign.assignment_id,
        token=assign.fencing_token,
    )
    done = node.op(
        AssignmentStatus(assignment_id=assign.assignment_id, status="completed"),
        entity_id=assign.assignment_id,
        token=assign.fencing_token,
    )
    await node.batch(running, done)
    async with world.db.acquire() as conn:
        row = await assignments.find_by_id(conn, assign.assignment_id)
    assert row is not None
    assert row.completed_at is not None
    assert row.execution_status == "completed"
    assert row.started_at is not None


async def test_batch_of_500_task_ops_applies_in_one_transaction(world: World) -> None:
    """500 task ops apply in one batch: one row each, all written by one transaction (its speed
    is measured by `make bench`, not asserted here)."""
    node = await world.node()
    ops = [node.task_op(title=f"bulk {i}") for i in range(500)]
    ack = await node.batch(*ops, within=30)
    assert ack.applied_through_seq == 500
    assert await _count(world, "SELECT count(*) FROM shared_tasks") == 500
    assert await _count(world, "SELECT count(*) FROM node_op_log") == 500
    assert await _count(world, "SELECT count(DISTINCT xmin::text) FROM shared_tasks") == 1


async def test_activity_of_node_ops_names_the_op_as_origin(world: World) -> None:
    """The task.created (bulk path) and task.updated events of a node's task.upsert ops carry
    origin {node_id, seq}, so the node can tell echoes of its own older writes; REST edits carry
    none."""
    node = await world.node()
    local = uuid.uuid4()
    create, edit = node.task_op(local, title="v1"), node.task_op(local, title="v2")
    ack = await node.batch(create, edit)
    assert ack.applied_through_seq == edit.seq
    async with world.db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_type, payload FROM activity WHERE swarm_project_id = $1 ORDER BY seq",
            world.project_id,
        )
    payloads = [(r["event_type"], _json(r["payload"])) for r in rows]
    origin = {"node_id": str(node.id)}
    assert [(t, p.get("origin")) for t, p in payloads] == [
        ("task.created", {**origin, "seq": create.seq}),
        ("task.updated", {**origin, "seq": edit.seq}),
    ]
    shared_id = payloads[0][1]["task"]["id"]
    r = await world.http.patch(
        f"/v1/tasks/{shared_id}", json={"title": "hive edit"}, headers=world.headers
    )
    assert r.status_code == 200, r.text
    async with world.db.acquire() as conn:
        last = await conn.fetchval(
            "SELECT payload FROM activity WHERE swarm_project_id = $1 ORDER BY seq DESC LIMIT 1",
            world.project_id,
        )
    assert "origin" not in _json(last)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def test_updates_of_own_tasks_take_the_bulk_path_with_per_op_effects(world: World) -> None:
    """A batch of edits of tasks the node owns (two tasks interleaved, a chain of status moves,
    one illegal move in the middle, an archive, the shared id named or not) has the effects of
    applying the ops one by one: each op bumps its task's version once and writes one
    task.updated event naming it as origin, in op order per task; the illegal move is rejected
    and the ops after it still apply; the archive sticks."""
    node = await world.node()
    a, b = uuid.uuid4(), uuid.uuid4()
    await node.batch(node.task_op(a, title="a0"), node.task_op(b, title="b0"))
    shared_a = await _shared_id(world, node, a)
    ops = [
        node.task_op(a, title="a1", status="inprogress"),
        node.task_op(b, title="b1", shared_task_id=await _shared_id(world, node, b)),
        node.task_op(a, title="a2", status="inreview", shared_task_id=shared_a),
        node.task_op(a, title="a-bad", status="todo"),  # in-review -> todo: illegal
        node.task_op(b, title="b2", status="cancelled"),
        node.task_op(a, title="a3", status="done"),
    ]
    archived = node.task_op(b, title="b3", status="cancelled")
    archived = msgspec.structs.replace(
        archived, payload=msgspec.structs.replace(archived.payload, archived_at=now())
    )
    after = node.task_op(b, title="b4", status="cancelled")  # no archived_at: stays archived
    ack = await node.batch(*ops, archived, after)
    assert ack.applied_through_seq == after.seq
    rejected = [m for m in await node.client.drain() if isinstance(m, OpRejected)]
    assert [(r.seq, r.code) for r in rejected] == [(ops[3].seq, "illegal_transition")]
    async with world.db.acquire() as conn:
        task_a = await shared_tasks.get(conn, shared_a)
        task_b = await shared_tasks.get(conn, await _shared_id(world, node, b))
        rows = await conn.fetch(
            "SELECT event_type, payload FROM activity WHERE swarm_project_id = $1 ORDER BY seq",
            world.project_id,
        )
    assert (task_a.title, task_a.status, task_a.version) == ("a3", "done", 4)
    assert (task_b.title, task_b.status, task_b.version) == ("b4", "cancelled", 5)
    assert task_b.archived_at is not None
    assert task_a.executing_node_id == node.id
    events = [(r["event_type"], _json(r["payload"])) for r in rows][2:]  # after the creates
    assert all(t == "task.updated" for t, _ in events)
    seen = [(p["task"]["id"], p["task"]["title"], p["task"]["version"], p["origin"]["seq"])
            for _, p in events]  # fmt: skip
    applied = [op for op in [*ops, archived, after] if op.seq != ops[3].seq]
    by_task = {str(shared_a): "a"}
    assert [(by_task.get(i, "b"), title, version, seq) for i, title, version, seq in seen] == [
        ("a" if op.payload.id == a else "b", op.payload.title, version, op.seq)
        for op, version in zip(applied, [2, 2, 3, 3, 4, 4, 5], strict=True)
    ]
    logged = await _count(
        world,
        "SELECT count(*) FROM node_op_log WHERE node_id = $1 AND reject_code IS NULL",
        node.id,
    )
    assert logged == 2 + len(applied)


async def test_text_over_the_limit_and_nul_bytes_are_rejected_by_their_codes(world: World) -> None:
    """A task whose title and description exceed MAX_TASK_TEXT_BYTES is refused with
    ``text_too_long``, one with a NUL byte with ``invalid_payload``; neither is stored, and the
    op after them in the batch applies."""
    node = await world.node()
    long = node.task_op(title="é" * (MAX_TASK_TEXT_BYTES // 2) + "x")
    nul = node.task_op(title="a\x00b")
    fine = node.task_op(title="fine")
    ack = await node.batch(long, nul, fine)
    assert ack.applied_through_seq == fine.seq
    rejected = [m for m in await node.client.drain() if isinstance(m, OpRejected)]
    assert [(r.seq, r.code) for r in rejected] == [
        (long.seq, "text_too_long"),
        (nul.seq, "invalid_payload"),
    ]
    assert await _count(world, "SELECT count(*) FROM shared_tasks") == 1


async def test_an_unrecorded_op_at_or_below_the_cursor_starts_a_new_epoch(world: World) -> None:
    """A node whose outbox restarted below the hive's cursor (a store restored from an older
    backup) sends seqs the cursor already counts, under keys the hive never recorded: the hive
    starts a new epoch just before the first of them and applies them, so they are acked for
    what they are, not taken for duplicates."""
    node = await world.node()
    await node.batch(*[node.task_op(title=f"old {i}") for i in range(3)])
    async with world.db.acquire() as conn:
        epoch = await conn.fetchval("SELECT epoch FROM node_op_cursors WHERE node_id = $1", node.id)
    node.seq = 1  # the restored outbox's next op is seq 2
    restored = [node.task_op(title=f"restored {i}") for i in range(2)]
    ack = await node.batch(*restored)
    assert ack.applied_through_seq == restored[-1].seq == 3
    assert await _count(world, "SELECT count(*) FROM shared_tasks") == 5
    async with world.db.acquire() as conn:
        after = await conn.fetchval("SELECT epoch FROM node_op_cursors WHERE node_id = $1", node.id)
    assert after == epoch + 1
