"""The echo contract: a node that announces ``ack_tasks`` learns what its ``task.upsert`` ops did
from ``op_ack.tasks`` and gets no activity event of its own ops — ``activity_skipped`` moves its
cursor over them, live and in replay — while a node of the first release (no features) still
gets every event, its own included."""

from __future__ import annotations

import uuid

import pytest

from vk_shared.protocol import FEATURE_ACK_TASKS
from vk_shared.wire import AckedTask, Activity, ActivitySkipped, HiveMessage

from .conftest import Node, World

pytestmark = pytest.mark.asyncio


def _stream(messages: list[HiveMessage], project_id: uuid.UUID) -> list[tuple[str, int]]:
    """The project's activity messages as (kind, seq)."""
    return [
        ("event" if isinstance(m, Activity) else "skip", m.seq)
        for m in messages
        if isinstance(m, Activity | ActivitySkipped) and m.project_id == project_id
    ]


async def _stream_through(node: Node, project_id: uuid.UUID, seq: int) -> list[tuple[str, int]]:
    """The project's activity messages the node got until one covers ``seq`` (and a quiet
    moment after it: nothing more may follow)."""
    got: list[HiveMessage] = []
    for _ in range(50):
        got += await node.client.drain(0.2)
        stream = _stream(got, project_id)
        if stream and stream[-1][1] >= seq:
            return stream
    raise AssertionError(f"the stream never reached seq {seq}: {_stream(got, project_id)}")


def _per_seq(stream: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """What each seq of the stream was delivered as, in the order the node's cursor moves: an
    event covers its own seq, a skip every seq after the previous message up to its own. A seq
    that nothing covered shows as ``missing``, a message that does not move the cursor forward
    as ``backwards``.

    How many skips a run of own events takes depends on the path the events took, which the
    hive chooses by timing: a live event (the stream is caught up and the event is the next seq)
    gets its own skip, a run read back from the table (the link's first catch-up still running,
    the listener not yet listening or reconnecting after a slow liveness check) gets one skip.
    The cursor's moves are the contract; the number of messages is not."""
    out: list[tuple[str, int]] = []
    cursor = 0
    for kind, seq in stream:
        if seq <= cursor:
            out.append(("backwards", seq))
            continue
        first = seq if kind == "event" else cursor + 1
        out += [("missing", s) for s in range(cursor + 1, first)]
        out += [(kind, s) for s in range(first, seq + 1)]
        cursor = seq
    return out


async def _shared_id(world: World, node: Node, local: uuid.UUID) -> uuid.UUID:
    async with world.db.acquire() as conn:
        value = await conn.fetchval(
            "SELECT id FROM shared_tasks WHERE source_node_id = $1 AND source_task_id = $2",
            node.id,
            local,
        )
    assert isinstance(value, uuid.UUID)
    return value


async def test_the_ack_carries_ids_and_versions_and_the_own_events_are_skipped(
    world: World,
) -> None:
    """Create then edit a task (bulk path) and edit it again on its own: the ack names the shared
    id and the version each op produced; the node's cursor moves over each event of its own by
    an ``activity_skipped`` (one per event when they go out live), and a REST edit afterwards
    arrives as an event."""
    node = await world.node(features=(FEATURE_ACK_TASKS,))
    local = uuid.uuid4()
    create, edit = node.task_op(local, title="v1"), node.task_op(local, title="v2")
    ack = await node.batch(create, edit)
    shared = await _shared_id(world, node, local)
    assert ack.tasks == [
        AckedTask(seq=create.seq, id=shared, version=1),
        AckedTask(seq=edit.seq, id=shared, version=2),
    ]
    by_id = node.task_op(local, title="v3", shared_task_id=shared, status="inprogress")
    ack = await node.batch(by_id)
    assert ack.tasks == [AckedTask(seq=by_id.seq, id=shared, version=3)]

    r = await world.http.patch(
        f"/v1/tasks/{shared}", json={"title": "hive edit"}, headers=world.headers
    )
    assert r.status_code == 200, r.text
    stream = await _stream_through(node, world.project_id, 4)
    assert _per_seq(stream) == [("skip", 1), ("skip", 2), ("skip", 3), ("event", 4)]


async def test_a_resent_op_is_acked_with_its_task_id_but_no_version(world: World) -> None:
    """A batch sent again (its ack was lost) is applied once; the second ack still names the
    task each op wrote, without a version (which one the op produced is not known any more)."""
    node = await world.node(features=(FEATURE_ACK_TASKS,))
    local = uuid.uuid4()
    create = node.task_op(local, title="once")
    await node.batch(create)
    again = await node.batch(create)
    assert again.applied_through_seq == create.seq
    assert again.tasks == [AckedTask(seq=create.seq, id=await _shared_id(world, node, local))]


async def test_replay_sends_one_skip_for_a_run_of_own_events(world: World) -> None:
    """A node reconnecting from cursor 0 gets the REST event, then one skip for its two own
    events, then the next REST event: every seq is covered once, in order."""
    key = await world.api_key()
    first = await world.node(api_key=key, machine_id="m-echo", features=(FEATURE_ACK_TASKS,))
    await world.create_task(title="from REST 1")
    local = uuid.uuid4()
    await first.batch(first.task_op(local, title="mine"), first.task_op(local, title="mine 2"))
    await world.create_task(title="from REST 2")
    await first.client.close()

    again = await world.node(
        api_key=key,
        machine_id="m-echo",
        cursors={world.project_id: 0},
        features=(FEATURE_ACK_TASKS,),
    )
    stream = await _stream_through(again, world.project_id, 4)
    assert stream == [("event", 1), ("skip", 3), ("event", 4)]


async def test_a_node_without_the_feature_still_gets_its_own_events(world: World) -> None:
    """A node of the first release (no ``features`` in its auth) learns its new task's shared id
    from the echo: it gets the events of its own ops, with their origin."""
    node = await world.node()
    local = uuid.uuid4()
    create = node.task_op(local, title="old node")
    ack = await node.batch(create)
    event = await node.client.expect(Activity, within=10)
    assert event.payload["task"]["source_task_id"] == str(local)
    assert event.payload["origin"] == {"node_id": str(node.id), "seq": create.seq}
    shared = uuid.UUID(event.payload["task"]["id"])
    assert ack.tasks == [AckedTask(seq=create.seq, id=shared, version=1)]
