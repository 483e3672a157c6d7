"""The durable outbox: ops are written atomically with their writes and decode to wire ops."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import aiosqlite
import msgspec
import pytest

from vk_node.errors import InvalidOp
from vk_node.services.tasks import TaskChanges, update_task
from vk_node.store import Store, outbox
from vk_node.store.repositories import log_entries, tasks
from vk_node.store.sql import fetch_all, fetch_value
from vk_shared.codec import encode_json
from vk_shared.status import ExecutionStatus, NodeTaskStatus
from vk_shared.wire.ops import (
    AssignmentStatus,
    AttemptUpsert,
    ExecutionUpsert,
    LogsAppend,
    OpType,
    OutboxOp,
    TaskUpsert,
)

from . import _seed


async def _ops(store: Store) -> list[OutboxOp]:
    async with store.read() as conn:
        return await outbox.peek_unacked(conn, 1000)


@pytest.mark.asyncio
async def test_linked_writes_produce_ops_in_parent_first_order(store: Store) -> None:
    """Task, attempt, execution and logs of a linked project each append their op, in that order."""
    async with store.transaction() as conn:
        p, t, a, e = await _seed.world(conn)
        await log_entries.append_many(conn, e.id, [("stdout", "hello"), ("stderr", "oops")])
    ops = await _ops(store)
    assert [op.op_type for op in ops] == [
        OpType.TASK_UPSERT,
        OpType.ATTEMPT_UPSERT,
        OpType.EXECUTION_UPSERT,
        OpType.LOGS_APPEND,
    ]
    assert [op.seq for op in ops] == [1, 2, 3, 4]
    task_op, attempt_op, exec_op, logs_op = (op.payload for op in ops)
    assert isinstance(task_op, TaskUpsert)
    assert (task_op.id, task_op.project_id, task_op.status) == (t.id, p.id, NodeTaskStatus.TODO)
    assert task_op.remote_version == 0
    assert isinstance(attempt_op, AttemptUpsert)
    assert (attempt_op.task_id, attempt_op.executor) == (t.id, "SCRIPT")
    assert isinstance(exec_op, ExecutionUpsert)
    assert exec_op.attempt_id == a.id
    assert exec_op.executor_action["typ"]["type"] == "CodingAgentInitialRequest"
    assert isinstance(logs_op, LogsAppend)
    assert [(x.output_type, x.content) for x in logs_op.entries] == [
        ("stdout", "hello"),
        ("stderr", "oops"),
    ]
    assert ops[0].entity_id == t.id
    assert ops[0].idempotency_key.startswith(f"task:{t.id}:")
    for op in ops:  # every op survives the real wire codec
        assert msgspec.json.decode(encode_json(op), type=OutboxOp) == op


@pytest.mark.asyncio
async def test_logs_append_row_stores_only_the_id_range(store: Store) -> None:
    """A logs.append row holds {execution_id, first_log_id, last_log_id}, not the log content."""
    async with store.transaction() as conn:
        _, _, _, e = await _seed.world(conn)
        entries = await log_entries.append_many(conn, e.id, [("stdout", "secret-content")] * 3)
    async with store.read() as conn:
        payload = await fetch_value(
            conn, "SELECT payload FROM node_outbox WHERE op_type = 'logs.append'"
        )
    assert msgspec.json.decode(payload) == {
        "op_type": "logs.append",
        "execution_id": str(e.id),
        "first_log_id": entries[0].id,
        "last_log_id": entries[-1].id,
    }


@pytest.mark.asyncio
async def test_unlinked_project_produces_no_ops(store: Store) -> None:
    """Tasks, attempts, processes and logs of an unlinked project append nothing."""
    async with store.transaction() as conn:
        _, t, _, e = await _seed.world(conn, linked=False)
        await log_entries.append_many(conn, e.id, [("stdout", "x")])
        await tasks.update_status(conn, t.id, NodeTaskStatus.INPROGRESS)
        await tasks.archive(conn, t.id)
    async with store.read() as conn:
        assert await outbox.backlog_count(conn) == 0
        assert await fetch_value(conn, "SELECT COUNT(*) FROM node_outbox") == 0


@pytest.mark.asyncio
async def test_op_rolls_back_with_its_write(store: Store) -> None:
    """When the write's transaction fails, neither the task nor its op is committed."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
    task_id = uuid4()

    async def failing_write() -> None:
        async with store.transaction() as conn:
            await tasks.create(conn, task_id, project_id=p.id, title="doomed")
            assert await outbox.backlog_count(conn) == 1  # visible inside the transaction
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing_write()
    async with store.read() as conn:
        assert await tasks.find_by_id(conn, task_id) is None
        assert await outbox.backlog_count(conn) == 0


@pytest.mark.asyncio
async def test_invalid_op_payload_aborts_the_write(store: Store) -> None:
    """A write whose op would not be a valid wire payload raises InvalidOp and commits nothing."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
    task_id = uuid4()
    with pytest.raises(InvalidOp):
        async with store.transaction() as conn:
            await tasks.create(conn, task_id, project_id=p.id, title="")  # Title needs 1+ chars
    async with store.read() as conn:
        assert await tasks.find_by_id(conn, task_id) is None
        assert await outbox.backlog_count(conn) == 0


@pytest.mark.asyncio
async def test_enqueue_outside_a_transaction_is_refused(store: Store) -> None:
    """Enqueueing on a connection that is not in a transaction raises instead of autocommitting."""
    async with store.read() as conn:
        await conn.execute("ROLLBACK")  # leave the read snapshot: autocommit mode
        with pytest.raises(RuntimeError, match="inside the write's transaction"):
            await outbox.enqueue_assignment_status(conn, uuid4(), ExecutionStatus.RUNNING)


@pytest.mark.asyncio
async def test_seq_is_gap_free_and_unique_under_concurrent_writers(store: Store) -> None:
    """Fifty coroutines writing at once get seqs 1..N with no duplicates or gaps."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)

    async def writer(i: int) -> None:
        async with store.transaction() as conn:
            t = await tasks.create(conn, uuid4(), project_id=p.id, title=f"t{i}")
            await asyncio.sleep(0)
            await tasks.update_status(conn, t.id, NodeTaskStatus.INPROGRESS)

    await asyncio.gather(*(writer(i) for i in range(50)))
    async with store.read() as conn:
        seqs = [r[0] for r in await fetch_all(conn, "SELECT seq FROM node_outbox ORDER BY id")]
    assert sorted(seqs) == list(range(1, 101))
    ops = await _ops(store)
    assert [op.seq for op in ops] == list(range(1, 101))
    # each writer's two ops are adjacent: transactions never interleave
    by_entity: dict[object, list[int]] = {}
    for op in ops:
        by_entity.setdefault(op.entity_id, []).append(op.seq)
    assert all(b - a == 1 for a, b in by_entity.values())


@pytest.mark.asyncio
async def test_seq_is_unique_across_two_stores_on_one_file(node_db_path, store: Store) -> None:  # type: ignore[no-untyped-def]
    """Two Store instances (two writer connections) on one file still get distinct seqs."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
    other = await Store.open(node_db_path)
    try:

        async def write(s: Store, i: int) -> None:
            async with s.transaction() as conn:
                await tasks.create(conn, uuid4(), project_id=p.id, title=f"t{i}")

        await asyncio.gather(*(write(store if i % 2 else other, i) for i in range(20)))
    finally:
        await other.close()
    ops = await _ops(store)
    assert [op.seq for op in ops] == list(range(1, 21))


@pytest.mark.asyncio
async def test_ack_through_and_rejection_advance_the_queue(store: Store) -> None:
    """ack_through acks a prefix; a rejection is recorded, acked and never blocks the queue."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        for i in range(5):
            await _seed.task(conn, p, title=f"t{i}")
    async with store.transaction() as conn:
        assert await outbox.last_acked_seq(conn) == 0
        first_written = await outbox.oldest_unacked_created_at(conn)
        assert first_written is not None
        assert await outbox.ack_through(conn, 2) == 2
        fourth = (await outbox.peek_from_seq(conn, 4, 1))[0]
        assert await outbox.record_rejection(
            conn, 4, fourth.idempotency_key, "invalid_op", "bad title"
        )
        assert not await outbox.record_rejection(conn, 99, "k", "x", "y")
        assert not await outbox.record_rejection(conn, 3, fourth.idempotency_key, "x", "y")
        assert await outbox.last_acked_seq(conn) == 2  # seq 3 still unacked
        assert await outbox.backlog_count(conn) == 2
    assert [op.seq for op in await _ops(store)] == [3, 5]
    async with store.transaction() as conn:
        assert await outbox.oldest_unacked_created_at(conn) >= first_written  # type: ignore[operator]
        await outbox.ack_through(conn, 5)
        assert await outbox.last_acked_seq(conn) == 5
        assert await outbox.backlog_count(conn) == 0
        assert await outbox.oldest_unacked_created_at(conn) is None
        row = (
            await fetch_all(
                conn,
                "SELECT acked_at, rejected_at, reject_code, reject_reason "
                "FROM node_outbox WHERE seq = 4",
            )
        )[0]
    assert row["acked_at"] is not None
    assert (row["reject_code"], row["reject_reason"]) == ("invalid_op", "bad title")
    async with store.read() as conn:
        resent = await outbox.peek_from_seq(conn, 2, 10)
    assert [op.seq for op in resent] == [2, 3, 5]  # acked ones resend, rejected one does not


@pytest.mark.asyncio
async def test_has_unacked_for_entity_tracks_the_entity(store: Store) -> None:
    """has_unacked_for_entity is true until every op of that entity is acked."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        t1 = await _seed.task(conn, p)
        t2 = await _seed.task(conn, p)
        assert await outbox.has_unacked_for_entity(conn, t1.id)
        await outbox.ack_through(conn, 1)
        assert not await outbox.has_unacked_for_entity(conn, t1.id)
        assert await outbox.has_unacked_for_entity(conn, t2.id)


@pytest.mark.asyncio
async def test_assignment_status_op(store: Store) -> None:
    """assignment.status enqueues with its fencing token and decodes to AssignmentStatus."""
    assignment = uuid4()
    async with store.transaction() as conn:
        seq = await outbox.enqueue_assignment_status(
            conn, assignment, ExecutionStatus.COMPLETED, message="done", fencing_token=7
        )
    (op,) = await _ops(store)
    assert op.seq == seq
    assert op.fencing_token == 7
    assert op.entity_id == assignment
    assert op.payload == AssignmentStatus(
        assignment_id=assignment, status=ExecutionStatus.COMPLETED, message="done"
    )


@pytest.mark.asyncio
async def test_large_log_batches_split_into_bounded_ops(store: Store) -> None:
    """A batch larger than MAX_LOG_ENTRIES_PER_OP yields several contiguous logs.append ops."""
    from vk_shared.protocol import MAX_LOG_ENTRIES_PER_OP

    n = MAX_LOG_ENTRIES_PER_OP * 2 + 7
    async with store.transaction() as conn:
        _, _, _, e = await _seed.world(conn)
        entries = await log_entries.append_many(
            conn, e.id, [("stdout", f"line {i}") for i in range(n)]
        )
    assert [x.content for x in entries] == [f"line {i}" for i in range(n)]
    logs_ops = [op.payload for op in await _ops(store) if op.op_type is OpType.LOGS_APPEND]
    assert [len(o.entries) for o in logs_ops] == [MAX_LOG_ENTRIES_PER_OP] * 2 + [7]  # type: ignore[union-attr]
    ids = [x.id for o in logs_ops for x in o.entries]  # type: ignore[union-attr]
    assert ids == [x.id for x in entries]


@pytest.mark.asyncio
async def test_each_op_row_names_the_task_it_is_about(store: Store) -> None:
    """Task, attempt, execution and logs ops keep their local task on the row (assignment.status
    none), and peek_to_send hands it to the sender with each op."""
    async with store.transaction() as conn:
        _, t, _, e = await _seed.world(conn)
        await log_entries.append_many(conn, e.id, [("stdout", "x")])
        await outbox.enqueue_assignment_status(conn, uuid4(), ExecutionStatus.RUNNING)
    async with store.read() as conn:
        stored = [
            (r[0], None if r[1] is None else UUID(bytes=r[1]))
            for r in await fetch_all(conn, "SELECT op_type, task_id FROM node_outbox ORDER BY seq")
        ]
        queued = await outbox.peek_to_send(conn, 1, 100)
    assert stored == [
        ("task.upsert", t.id),
        ("attempt.upsert", t.id),
        ("execution.upsert", t.id),
        ("logs.append", t.id),
        ("assignment.status", None),
    ]
    assert [(q.op.op_type.value, q.task_id) for q in queued] == stored


@pytest.mark.asyncio
async def test_a_task_update_reads_the_task_and_its_project_once(store: Store) -> None:
    """A task update through the service runs one read of the task and one of its project; the
    op comes from the UPDATE's RETURNING row (nothing is read back) and equals the task returned."""
    async with store.transaction() as conn:
        p = await _seed.project(conn)
        t = await _seed.task(conn, p, title="before")
    statements: list[str] = []

    async def trace(conn: aiosqlite.Connection) -> None:
        await conn.set_trace_callback(statements.append)

    async def untrace(conn: aiosqlite.Connection) -> None:
        await conn.set_trace_callback(None)

    await store.write(trace)  # the one-hop writer, which the service uses
    statements.clear()
    try:
        updated = await update_task(store, t.id, TaskChanges(title="after", description="d"))
        seen = list(statements)
    finally:
        await store.write(untrace)
    kinds = [" ".join(s.split()[:3]).upper() for s in seen]
    assert kinds == [
        "BEGIN IMMEDIATE",
        "SELECT * FROM",  # the task
        "SELECT * FROM",  # its project
        "DELETE FROM ACTIVITY_DISMISSALS",  # only when the status changes
        "UPDATE TASKS SET",  # … RETURNING the row
        "INSERT INTO NODE_OUTBOX",
        "COMMIT",
    ], seen
    (_, op) = await _ops(store)
    assert op.payload == TaskUpsert(
        id=t.id,
        project_id=p.id,
        title="after",
        description="d",
        status=NodeTaskStatus.TODO,
        created_at=updated.created_at,
        updated_at=updated.updated_at,
    )
    async with store.read() as conn:
        assert await tasks.get(conn, t.id) == updated
