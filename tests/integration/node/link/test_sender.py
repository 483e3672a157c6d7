"""The outbox sender on a real store: each batch is encoded once in the session's format and that
frame is what the size check measures and what is sent; fencing tokens come from the task each
outbox row names, with no lookup per op.

The frames go to a recording sink (the sender's ``SendFrame``) instead of a socket, and the
node's current assignments are a small in-memory table: what is checked is what the sender
hands to the session, decoded with the hive's own decoder.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from vk_node.link.clock import SystemClock
from vk_node.link.sender import OutboxSender
from vk_node.settings import NodeSettings
from vk_node.store import Store, outbox
from vk_node.store.repositories import log_entries, tasks
from vk_shared.codec import Codec, decode_node_message
from vk_shared.protocol import MAX_FRAME_BYTES, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK
from vk_shared.status import ExecutionStatus
from vk_shared.wire import OpBatch, OutboxOp

from ..store import _seed


class _Assignments:
    """The node's current fencing tokens, by local task and by assignment."""

    def __init__(
        self, by_task: dict[UUID, int] | None = None, by_assignment: dict[UUID, int] | None = None
    ) -> None:
        self.by_task = by_task or {}
        self.by_assignment = by_assignment or {}

    def has_tokens(self) -> bool:
        return bool(self.by_task or self.by_assignment)

    def token_for_task(self, local_task_id: UUID) -> int | None:
        return self.by_task.get(local_task_id)

    def token_for_assignment(self, assignment_id: UUID) -> int | None:
        return self.by_assignment.get(assignment_id)


@pytest.fixture(params=[SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON])
def codec(request: pytest.FixtureRequest) -> Codec:
    return Codec.for_subprotocol(request.param)


async def _last_seq(store: Store) -> int:
    async with store.read() as conn:
        return await outbox.last_seq(conn)


async def _stream(
    store: Store,
    tmp_path: Path,
    codec: Codec,
    last: int,
    assignments: _Assignments | None = None,
) -> list[bytes]:
    """Run the sender until ops 1..last were sent (acking each frame); the frames."""
    sender = OutboxSender(
        store,
        NodeSettings(data_dir=str(tmp_path)),
        SystemClock(),
        assignments or _Assignments(),  # type: ignore[arg-type]
    )
    frames: list[bytes] = []
    done = asyncio.Event()

    async def send(frame: bytes) -> None:
        frames.append(frame)
        through = sender.sent_through()
        asyncio.get_running_loop().call_soon(sender.on_ack, through)
        if through >= last:
            done.set()

    runner = asyncio.create_task(sender.run(codec, send, 0))
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        sender.close()
    return frames


def _ops(frames: list[bytes], codec: Codec) -> list[OutboxOp]:
    ops: list[OutboxOp] = []
    for frame in frames:
        batch = decode_node_message(frame if codec.binary else frame.decode(), binary=codec.binary)
        assert isinstance(batch, OpBatch)
        ops.extend(batch.ops)
    return ops


@pytest.mark.asyncio
async def test_a_batch_is_one_frame_in_the_session_format(
    store: Store, tmp_path: Path, codec: Codec
) -> None:
    """Task, attempt, execution and logs ops go out as one op_batch frame in the session's
    format (JSON text or msgpack) that the hive decodes to exactly the stored ops."""
    async with store.transaction() as conn:
        _, _, _, e = await _seed.world(conn)
        await log_entries.append_many(conn, e.id, [("stdout", "one"), ("stderr", "two")])
    frames = await _stream(store, tmp_path, codec, await _last_seq(store))
    assert len(frames) == 1
    async with store.read() as conn:
        stored = await outbox.peek_from_seq(conn, 1, 100)
    assert _ops(frames, codec) == stored
    assert [op.seq for op in stored] == [1, 2, 3, 4]


@pytest.mark.asyncio
async def test_a_batch_too_large_for_one_frame_is_split_until_each_frame_fits(
    store: Store, tmp_path: Path, codec: Codec
) -> None:
    """Logs ops worth more than one frame are sent in several frames, each at most
    MAX_FRAME_BYTES as sent, carrying every op once and in seq order."""
    line = "x" * (200 * 1024)
    async with store.transaction() as conn:
        _, _, _, e = await _seed.world(conn)
        for _ in range(30):  # ~6 MiB of log content, one logs.append op each
            await log_entries.append_many(conn, e.id, [("stdout", line)])
    frames = await _stream(store, tmp_path, codec, await _last_seq(store))
    assert len(frames) > 1
    assert all(len(frame) <= MAX_FRAME_BYTES for frame in frames)
    assert [op.seq for op in _ops(frames, codec)] == list(range(1, 34))


@pytest.mark.asyncio
async def test_tokens_come_from_the_task_on_each_row_without_a_lookup_per_op(
    store: Store, tmp_path: Path
) -> None:
    """Every op about a task with a current assignment carries that assignment's token (task,
    attempt, execution and logs alike), assignment.status carries its assignment's, others keep
    theirs; reading a batch takes one outbox query and one log query per logs op, nothing else."""
    assignment = uuid4()
    async with store.transaction() as conn:
        p, t, _, e = await _seed.world(conn)
        await log_entries.append_many(conn, e.id, [("stdout", "hello")])
        other = await tasks.create(conn, uuid4(), project_id=p.id, title="unassigned")
        await outbox.enqueue_assignment_status(
            conn, assignment, ExecutionStatus.RUNNING, local_task_id=t.id, fencing_token=3
        )
    last = await _last_seq(store)
    statements: list[str] = []
    async with store.read() as conn:  # the reader connection, which the sender reads on
        await conn.set_trace_callback(statements.append)
    statements.clear()
    codec = Codec.for_subprotocol(SUBPROTOCOL_MSGPACK)
    try:
        frames = await _stream(
            store, tmp_path, codec, last, _Assignments({t.id: 9}, {assignment: 11})
        )
        seen = list(statements)
    finally:
        async with store.read() as conn:
            await conn.set_trace_callback(None)
    ops = _ops(frames, codec)
    assert [(op.op_type.value, op.fencing_token) for op in ops] == [
        ("task.upsert", 9),
        ("attempt.upsert", 9),
        ("execution.upsert", 9),
        ("logs.append", 9),
        ("task.upsert", None),
        ("assignment.status", 11),
    ]
    assert ops[4].entity_id == other.id
    flat = [" ".join(s.split()) for s in seen]
    tables = [s.split(" FROM ")[1].split()[0] for s in flat if " FROM " in s]
    assert set(tables) == {"node_outbox", "log_entries"}, seen  # the peek(s) and the logs op
    assert tables.count("log_entries") == 1, seen
