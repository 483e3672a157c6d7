"""A node that missed an ``op_rejected`` (its connection dropped after the hive committed the
batch) is told again when it resends the op — which it does after a reconnect, since it takes
acks only for seqs sent in the session — so its outbox never holds a skipped op as applied.
Found by ``make chaos`` (a node SIGKILLed while its late ops after a lease reclaim were being
refused)."""

from __future__ import annotations

import uuid

import pytest

from vk_shared.wire import AuthResult, OpAck, OpRejected

from .conftest import World

pytestmark = pytest.mark.asyncio


async def test_a_resent_skipped_op_is_rejected_again(world: World) -> None:
    """The same batch twice: the second answer repeats the rejection of the skipped op (and
    still applies nothing twice); the op log records the outcome and the token."""
    node = await world.node()
    ok = node.task_op(title="fine")
    bad = node.task_op(shared_task_id=uuid.uuid4())  # no such hive task: skipped
    first = await node.batch(ok, bad)
    assert first.applied_through_seq == bad.seq
    rejected = await node.client.expect(OpRejected)
    assert (rejected.seq, rejected.code) == (bad.seq, "not_found")

    again = await node.batch(ok, bad)
    assert again.applied_through_seq == bad.seq
    repeated = [m for m in node.client.buffer if isinstance(m, OpRejected)]
    node.client.buffer.clear()
    assert [(m.seq, m.idempotency_key, m.code) for m in repeated] == [
        (bad.seq, bad.idempotency_key, "not_found")
    ]
    async with world.db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT seq, reject_code FROM node_op_log WHERE node_id = $1 ORDER BY seq", node.id
        )
    assert [(r["seq"], r["reject_code"]) for r in rows] == [
        (ok.seq, None),
        (bad.seq, "not_found"),
    ]


async def test_a_node_reconnecting_behind_the_hive_hears_its_missed_rejections_on_resend(
    world: World,
) -> None:
    """A node whose last seen ack is before a committed batch gets nothing pushed at ``auth``
    (``applied_through_seq`` is informative); resending its unacked ops brings the rejection of
    the skipped one again, and the ack, without applying anything twice."""
    node = await world.node(machine_id="m-lost")
    early_bad = node.task_op(shared_task_id=uuid.uuid4())
    await node.batch(early_bad)
    await node.client.expect(OpRejected)
    seen_acked = early_bad.seq
    ok = node.task_op(title="applied")
    bad = node.task_op(shared_task_id=uuid.uuid4())
    ack = await node.batch(ok, bad)
    assert isinstance(ack, OpAck)
    await node.client.close()  # as if the op_rejected and op_ack never arrived

    client = await world.client()
    result = await client.auth(node.api_key, machine_id="m-lost", last_acked_seq=seen_acked)
    assert isinstance(result, AuthResult), result
    assert result.applied_through_seq == bad.seq
    assert not [m for m in await client.drain(quiet=0.3) if isinstance(m, OpRejected)]
    node.client = client
    again = await node.batch(ok, bad)
    assert again.applied_through_seq == bad.seq
    rejected = [m for m in client.buffer if isinstance(m, OpRejected)]
    assert [(m.seq, m.idempotency_key, m.code) for m in rejected] == [
        (bad.seq, bad.idempotency_key, "not_found")
    ]
    async with world.db.acquire() as conn:
        applied = await conn.fetchval(
            "SELECT count(*) FROM shared_tasks WHERE owner_node_id = $1", node.id
        )
    assert applied == 1


async def test_the_ack_of_a_resent_batch_covers_that_batch_only(world: World) -> None:
    """A node behind the hive resends in several batches: the ack of the first batch must not
    reach past it. An ack up to the hive's cursor would count the later batches' ops as acked
    before their answers came — and when the connection drops before those answers arrive, the
    node never resends them, so a rejection it missed is never told again (found by the
    convergence test: a refused title stayed on a node)."""
    node = await world.node(machine_id="m-split")
    ok = node.task_op(title="applied")
    bad = node.task_op(shared_task_id=uuid.uuid4())  # skipped: not_found
    ack = await node.batch(ok, bad)
    assert ack.applied_through_seq == bad.seq
    await node.client.close()  # the op_rejected and op_ack are lost

    client = await world.client()
    result = await client.auth(node.api_key, machine_id="m-split", last_acked_seq=0)
    assert isinstance(result, AuthResult), result
    node.client = client
    first = await node.batch(ok)
    assert first.applied_through_seq == ok.seq  # not bad.seq: that op's answer is not sent yet
    assert not [m for m in client.buffer if isinstance(m, OpRejected)]
    second = await node.batch(bad)
    assert second.applied_through_seq == bad.seq
    rejected = [m for m in client.buffer if isinstance(m, OpRejected)]
    assert [(m.seq, m.code) for m in rejected] == [(bad.seq, "not_found")]
