"""The hive's answers to the outbox: ``op_ack`` (cumulative) and ``op_rejected`` (one op).

Both are taken only for ops this session sent (the sender's window knows which): an ack beyond
that is cut to what was sent, a rejection of an op not sent — or naming a sent seq with another
op's idempotency key — changes nothing. An ack's ``tasks`` (what the batch's ``task.upsert`` ops
did on the hive: the shared id of each task and the version the op produced) are recorded on the
local tasks in the ack's transaction — that is how the node learns the hive id of a task it
created, since the hive does not echo a node's own ops back to it; a task named without a version
(its op was a resend the hive had applied before) is pulled. A refused ``task.upsert``
marks its local task refused and, when the shared id is known, queues a pull of the hive's copy.
"""

from __future__ import annotations

from uuid import UUID

import aiosqlite
import structlog

from vk_node.link.assignments import AssignmentManager
from vk_node.link.inbound import Inbound, SessionView
from vk_node.link.sender import OutboxSender
from vk_node.link.state import LinkStats
from vk_node.store import Store, outbox
from vk_node.store.repositories import labels as labels_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.wire import AckedTask, LabelUpsert, OpAck, OpRejected, OutboxOp, TaskUpsert

__all__ = ["Acks"]

log = structlog.get_logger("vk_node.link")


class Acks:
    def __init__(
        self,
        store: Store,
        sender: OutboxSender,
        assignments: AssignmentManager,
        inbound: Inbound,
        stats: LinkStats,
    ) -> None:
        self._store = store
        self._sender = sender
        self._assignments = assignments
        self._inbound = inbound
        self._stats = stats

    async def on_ack(self, session: SessionView, msg: OpAck) -> None:
        """Take the hive's cumulative ack — only as far as this session sent: an ack beyond that
        names ops this node never sent on this connection and changes nothing."""
        through = msg.applied_through_seq
        sent = self._sender.sent_through()
        if through > sent:
            log.warning("link.ack_beyond_sent", applied_through_seq=through, sent_through=sent)
            through = sent
        tasks = [t for t in msg.tasks if t.seq <= through and self._sender.was_sent(t.seq)]
        async with self._store.transaction() as conn:
            await _record_acked_tasks(conn, tasks)
            acked = await outbox.ack_through(conn, through)
            retired = await self._assignments.retire(conn, through)
        self._stats.ops_acked += acked
        self._assignments.forget(retired)
        self._sender.on_ack(through)
        # An op applied by an earlier batch (its ack was lost) comes back without the version it
        # produced, and the hive does not echo it: the hive's copy is pulled instead.
        unknown = list(dict.fromkeys(t.id for t in tasks if t.version is None))
        if unknown:
            self._inbound.pull_later(session, unknown)
        await self._inbound.release_held(session)

    async def on_rejected(self, session: SessionView, msg: OpRejected) -> None:
        """Record the hive's refusal of one op — only of an op this session sent, named by both
        its seq and its idempotency key; anything else is ignored."""
        if not self._sender.was_sent(msg.seq):
            log.warning("link.rejection_not_sent", seq=msg.seq, code=msg.code)
            return
        async with self._store.transaction() as conn:
            refused = await _refused_task(conn, msg.seq, msg.idempotency_key)
            await _refused_label(conn, msg.seq, msg.idempotency_key)
            known = await outbox.record_rejection(
                conn, msg.seq, msg.idempotency_key, msg.code, msg.reason
            )
        if not known:
            log.warning("link.rejection_unknown_op", seq=msg.seq, code=msg.code)
            return
        self._stats.rejections += 1
        log.warning("link.op_rejected", seq=msg.seq, code=msg.code, reason=msg.reason)
        if refused is not None:
            # The local task holds a change the hive refused: take the hive's copy back.
            self._inbound.pull_later(session, [refused])


async def _record_acked_tasks(conn: aiosqlite.Connection, tasks: list[AckedTask]) -> None:
    """Record the shared id and version of each acked ``task.upsert`` on its local task."""
    local = await outbox.task_ids_of_upserts(conn, [t.seq for t in tasks])
    for acked in tasks:
        task_id = local.get(acked.seq)
        if task_id is None:
            log.warning("link.ack_task_not_an_upsert", seq=acked.seq)
        elif not await tasks_repo.record_ack(conn, task_id, acked.id, acked.version):
            # Deleted locally since, or its shared id is already another local task's.
            log.info(
                "link.ack_task_not_recorded",
                seq=acked.seq,
                task_id=str(task_id),
                shared_task_id=str(acked.id),
            )


async def _refused_task(conn: aiosqlite.Connection, seq: int, idempotency_key: str) -> UUID | None:
    """Mark the local task a refused ``task.upsert`` op (by seq and key) changed, so the next copy
    from the hive replaces the refused change; returns its shared id when the node knows it (the
    caller queues a pull). A task whose shared id has not arrived yet is marked all the same:
    the hive's copy that names it (an activity event, or the digest's mismatch) then replaces it."""
    op = await _op_at(conn, seq, idempotency_key)
    if op is None or not isinstance(op.payload, TaskUpsert):
        return None
    task = await tasks_repo.find_by_id(conn, op.payload.id)
    if task is None:
        return None
    await tasks_repo.mark_refused_by_hive(conn, task.id)
    return task.shared_task_id


async def _refused_label(conn: aiosqlite.Connection, seq: int, idempotency_key: str) -> None:
    """A refused ``label.upsert`` (a name the project has on the hive, say): the label stays
    local, so it no longer names itself as its hive copy."""
    op = await _op_at(conn, seq, idempotency_key)
    if op is not None and isinstance(op.payload, LabelUpsert):
        label = await labels_repo.find_by_id(conn, op.payload.id)
        if label is not None and label.shared_label_id == label.id:
            await labels_repo.clear_shared_label_id(conn, label.id)


async def _op_at(conn: aiosqlite.Connection, seq: int, idempotency_key: str) -> OutboxOp | None:
    """The outbox op with ``seq`` and ``idempotency_key`` (None: no such op of this node)."""
    ops = await outbox.peek_from_seq(conn, seq, 1)
    if not ops or ops[0].seq != seq or ops[0].idempotency_key != idempotency_key:
        return None
    return ops[0]
