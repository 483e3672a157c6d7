"""Round trips of one op batch: a batch of task upserts or of log lines costs a constant number of
statements to PostgreSQL, whatever its size and mix, with the same effects as applying the ops
one by one (versions, events in op order, acks, the op log).

The statements are counted with asyncpg's query logger on a pool of its own (every statement a
connection sends, ``BEGIN``/``SAVEPOINT``/``COMMIT`` included), and the batch is applied with
:func:`vk_hive.gateway.apply.apply_batch` on that pool, as the session does."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from vk_hive.gateway.apply import BatchResult, apply_batch
from vk_hive.gateway.identity import NodeIdentity
from vk_hive.store.db import Database, init_connection
from vk_hive.store.repositories import shared_tasks
from vk_shared.wire import LogEntry, LogsAppend, OutboxOp

from .conftest import Node, World, now, run_ops

pytestmark = pytest.mark.asyncio


class Counted:
    """A database whose connections log every statement they send."""

    def __init__(self, db: Database, statements: list[str]) -> None:
        self.db = db
        self.statements = statements

    async def apply(self, node: Node, *ops: OutboxOp) -> tuple[BatchResult, list[str]]:
        """Apply ``ops`` as one batch of ``node``; the result and the statements it sent."""
        identity = NodeIdentity(
            node_id=node.id, organization_id=node.auth.organization_id, name="n"
        )
        self.statements.clear()
        decoded = [msgspec.msgpack.decode(msgspec.msgpack.encode(op), type=OutboxOp) for op in ops]
        result = await apply_batch(self.db, identity, decoded)
        return result, list(self.statements)


@contextlib.asynccontextmanager
async def counted(dsn: str) -> AsyncIterator[Counted]:
    statements: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        await init_connection(conn)
        conn.add_query_logger(lambda record: statements.append(record.query))

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, init=init)
    try:
        yield Counted(Database(pool), statements)
    finally:
        await pool.close()


async def _events(world: World) -> list[tuple[str, dict[str, Any]]]:
    async with world.db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_type, payload FROM activity WHERE swarm_project_id = $1 ORDER BY seq",
            world.project_id,
        )
    return [(r["event_type"], _json(r["payload"])) for r in rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _edit(node: Node, local: uuid.UUID, title: str, status: str = "todo") -> OutboxOp:
    return node.task_op(local, title=title, status=status)


def _archive(op: OutboxOp) -> OutboxOp:
    return msgspec.structs.replace(
        op, payload=msgspec.structs.replace(op.payload, archived_at=now())
    )


async def test_a_batch_of_upserts_costs_the_same_statements_whatever_its_size(
    world: World, hive_dsn: str
) -> None:
    """New tasks, edits of existing tasks and edits of tasks created in the same batch (chains of
    several ops on one task) cost a constant number of statements: 10 ops and 60 ops the same."""
    node = await world.node()
    counts: list[int] = []
    async with counted(hive_dsn) as db:
        for size in (10, 60):
            existing = [uuid.uuid4() for _ in range(size // 5)]
            result, _ = await db.apply(node, *[_edit(node, t, "first") for t in existing])
            assert result.applied == len(existing)
            ops: list[OutboxOp] = []
            for i in range(size // 5):
                fresh = uuid.uuid4()
                ops += [
                    _edit(node, fresh, f"new {i}"),
                    _edit(node, existing[i], f"edit {i}", "inprogress"),
                    _edit(node, fresh, f"new {i} again", "inprogress"),
                    _edit(node, existing[i], f"edit {i} again", "inreview"),
                    _edit(node, fresh, f"new {i} third", "inreview"),
                ]
            result, statements = await db.apply(node, *ops)
            assert result.applied == size
            assert not result.rejected
            print(f"{size} task.upsert ops (creates, edits, chains): {len(statements)} statements")
            counts.append(len(statements))
    assert counts[0] == counts[1], counts


async def test_chains_in_one_batch_have_the_effects_of_one_op_at_a_time(
    world: World, hive_dsn: str
) -> None:
    """A task created and edited twice in one batch, interleaved with edits of an existing task
    and an archive: each op bumps its task's version once, writes one event (created, then
    updated) naming it as origin in op order, and is acked with the version it produced; the
    archive sticks through a later op without one; an illegal move in the chain is rejected
    and the ops after it apply."""
    node = await world.node()
    old, new = uuid.uuid4(), uuid.uuid4()
    async with counted(hive_dsn) as db:
        await db.apply(node, _edit(node, old, "old 0"))
        ops = [
            _edit(node, new, "new 1"),
            _edit(node, old, "old 1", "inprogress"),
            _edit(node, new, "new 2", "inprogress"),
            _archive(_edit(node, old, "old 2", "inprogress")),
            _edit(node, new, "new review", "inreview"),
            _edit(node, new, "new 3", "done"),
            _edit(node, old, "old 3", "inreview"),
            _edit(node, new, "new 4", "inprogress"),  # done -> in-progress: illegal
        ]
        result, _ = await db.apply(node, *ops)
    assert [r.seq for r in result.rejected] == [ops[-1].seq]
    assert [r.code for r in result.rejected] == ["illegal_transition"]
    applied = ops[:-1]
    async with world.db.acquire() as conn:
        task_old = await shared_tasks.find_by_source_task_id(conn, node.id, old)
        task_new = await shared_tasks.find_by_source_task_id(conn, node.id, new)
    assert task_old is not None
    assert task_new is not None
    assert (task_old.title, task_old.status, task_old.version) == ("old 3", "in-review", 4)
    assert task_old.archived_at is not None
    assert (task_new.title, task_new.status, task_new.version) == ("new 3", "done", 4)
    events = (await _events(world))[1:]
    expected_versions = {old: 1, new: 0}
    expected = []
    for op in applied:
        expected_versions[op.payload.id] += 1
        kind = "task.created" if expected_versions[op.payload.id] == 1 else "task.updated"
        expected.append((kind, op.payload.title, expected_versions[op.payload.id], op.seq))
    assert [
        (t, p["task"]["title"], p["task"]["version"], p["origin"]["seq"]) for t, p in events
    ] == expected
    archived = [p["task"]["archived_at"] is not None for _, p in events]
    assert archived == [False, False, False, True, False, False, True]
    # An op that does not carry the archive its task has is acked without a version (the node
    # takes the hive's copy).
    shared = {old: task_old.id, new: task_new.id}
    assert [(t.seq, t.id, t.version) for t in result.tasks] == [
        (op.seq, shared[op.payload.id], None if kept and op.payload.archived_at is None else v)
        for op, (_, _, v, _), kept in zip(applied, expected, archived, strict=True)
    ]


async def test_a_batch_of_log_lines_costs_one_insert_and_keeps_their_order(
    world: World, hive_dsn: str
) -> None:
    """``logs.append`` ops of two executions in one batch are inserted by one statement, the
    lines of each execution in order, and each execution's id is NOTIFYed once."""
    node = await world.node()
    task = uuid.uuid4()
    runs = [(uuid.uuid4(), uuid.uuid4()) for _ in range(2)]
    async with counted(hive_dsn) as db:
        setup = [_edit(node, task, "runs")]
        for attempt, execution in runs:
            setup += run_ops(node, task, attempt, execution)
        await db.apply(node, *setup)
        async with world.db.acquire() as listener:
            heard: list[str] = []

            def hear(*args: Any) -> None:
                heard.append(args[3])

            await listener.add_listener("logs", hear)
            ops = []
            for n in range(4):
                for _, execution in runs:
                    entries = [
                        LogEntry(
                            id=n * 10 + i, output_type="stdout", content=f"{n}.{i}", timestamp=now()
                        )
                        for i in range(1, 6)
                    ]
                    ops.append(
                        node.op(
                            LogsAppend(
                                execution_id=execution,
                                first_log_id=entries[0].id,
                                last_log_id=entries[-1].id,
                                entries=entries,
                            ),
                            entity_id=execution,
                        )
                    )
            result, statements = await db.apply(node, *ops)
            rows = await listener.fetch(
                "SELECT execution_process_id, content FROM node_task_output_logs ORDER BY id"
            )
            await listener.execute("SELECT 1")  # notifications are delivered between queries
            await listener.remove_listener("logs", hear)
    assert result.applied == len(ops)
    inserts = [s for s in statements if "node_task_output_logs" in s]
    print(f"{len(ops)} logs.append ops: {len(statements)} statements, {len(inserts)} inserts")
    assert len(inserts) == 1
    for _, execution in runs:
        lines = [r["content"] for r in rows if r["execution_process_id"] == execution]
        assert lines == [f"{n}.{i}" for n in range(4) for i in range(1, 6)]
    assert sorted(heard) == sorted(str(execution) for _, execution in runs)
