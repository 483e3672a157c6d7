"""Apply one ``op_batch`` of a node in ONE transaction (DESIGN.md §3, docs/sync-protocol.md).

Per op, in seq order: stop at a gap → dedup by (node, idempotency key) → plan
(:func:`vk_hive.gateway.plan.plan`: resolve parents — PARK when a parent may still arrive —,
fence check with the owner bypass, status-author check) → write (:mod:`.writer`) → record.
A gap is an op whose seq does not follow the applied-through seq: an earlier batch parked
or failed while this one was in flight, so the ops before it are missing; applying it would move
the cursor over them and the node would count them as acked. An op at or below the cursor whose
key was never recorded means the node's outbox is not the one the cursor counts (a store restored
from an older backup): every seq up to the cursor had its key recorded. The node then gets a new
op-sequence epoch from that op on, so its new ops are acked for what they are, not by the old
cursor. A permanently invalid op is recorded and skipped (SKIP+ADVANCE) with an ``op_rejected``
whose code comes from the refusal's type (:mod:`.refusals`). Each ``task.upsert`` that wrote a
task — or that was applied by an earlier batch (a resend) — is reported in the result's ``tasks``
(the shared id and the version it produced), which ``op_ack`` carries to the node. Each op
applied on its own runs in a savepoint, so a failing op leaves nothing half-applied. Lock order:
the node's cursor row, then the counters of every project the node links, then (in the plan's
reads and the writes) task and assignment rows. The node's cursor is advanced and the op log
written before the commit; the caller sends the rejections, revocations and ``op_ack`` only after
the commit. The ack reaches no further than the batch's last op (see :func:`apply_batch`). Any
other database error propagates: nothing is acked and the node resends.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TypeGuard

import asyncpg
import structlog

from vk_hive.errors import DomainError
from vk_hive.gateway.facts import FactReader
from vk_hive.gateway.identity import NodeIdentity
from vk_hive.gateway.plan import (
    AppendLogs,
    Decision,
    Facts,
    LogClearance,
    Need,
    Park,
    Reject,
    Write,
    WriteTask,
    plan,
)
from vk_hive.gateway.refusals import DATABASE_ERRORS, OpRefused, refusal_for
from vk_hive.gateway.writer import Writer
from vk_hive.store.db import Database
from vk_hive.store.models import Label, ProjectNodeLink, SharedTask
from vk_hive.store.repositories import activity, op_log, project_links, shared_tasks
from vk_hive.store.repositories.shared_tasks import NodeTaskData
from vk_shared.wire import (
    AckedTask,
    AssignmentStatus,
    LeaseRevoked,
    LogsAppend,
    OpRejected,
    OutboxOp,
    TaskUpsert,
)

__all__ = ["BatchResult", "apply_batch"]

log = structlog.get_logger("vk_hive.gateway.apply")


@dataclass
class BatchResult:
    applied_through: int
    applied: int = 0
    duplicates: int = 0
    parked_seq: int | None = None
    gap_at: int | None = None
    """Seq of the first op not applied because the ones before it are missing."""
    rejected: list[OpRejected] = field(default_factory=list)
    revoked: list[LeaseRevoked] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(op type, applied|skipped|parked|duplicate) → ops, for the metrics."""
    elapsed_s: float = 0.0
    """How long the apply transaction took."""
    tasks: list[AckedTask] = field(default_factory=list)
    """What the batch's ``task.upsert`` ops did to the hive's tasks, in seq order."""
    labels: list[Label] = field(default_factory=list)
    """Labels the batch's ``label.upsert`` ops wrote (the caller announces them)."""


async def apply_batch(db: Database, node: NodeIdentity, ops: list[OutboxOp]) -> BatchResult:
    """Apply ``ops`` (ascending seq) for ``node`` in one transaction; see the module doc."""
    started = time.perf_counter()
    async with db.transaction() as conn:
        cursor = await op_log.lock_node(conn, node.node_id)
        # The hive's lock order: project counters before task and assignment rows.
        linked = await project_links.list_by_node(conn, node.node_id)
        await activity.lock_projects(conn, [link.swarm_project_id for link in linked])
        batch = _Batch(conn, node, cursor, linked)
        await batch.run(ops)
        result = batch.result
        cursor = await op_log.record_and_advance(
            conn, node.node_id, list(batch.records.values()), batch.through
        )
        # The ack covers this batch only, even when the cursor is further on (ops a lost
        # connection's batches applied): the node counts every acked op as answered, so an ack
        # past this batch would let a connection drop before the next batch's answers hide one
        # of its rejections for good — the node would never resend that op to be told again.
        result.applied_through = min(cursor, ops[-1].seq) if ops else cursor
        result.revoked = list(batch.revoked.values())
        result.tasks = sorted(batch.acked.values(), key=lambda t: t.seq)
        result.labels = batch.writer.labels
    result.elapsed_s = time.perf_counter() - started
    log.info(
        "op_batch.applied",
        node_id=str(node.node_id),
        ops=len(ops),
        applied=result.applied,
        duplicates=result.duplicates,
        rejected=len(result.rejected),
        parked_seq=result.parked_seq,
        gap_at=result.gap_at,
        applied_through=result.applied_through,
    )
    return result


class _Parked(Exception):
    """The op parks: stop the batch before it."""


class _Batch:
    """One batch's walk over its ops.

    Each op is planned first from what the batch prefetched (the node's links, its own tasks
    named by the batch, the log clearances so far). Writes of the node's own tasks — new ones
    and edits, several of one task too — are collected, the batch's view of each task following
    them (:func:`~vk_hive.store.repositories.shared_tasks.node_write`), and written together
    before any op that is applied on its own: one statement for the tasks and one for their
    events, in op order. The lines of ``logs.append`` ops that passed their checks are collected
    too and inserted by one statement at the end of the batch. A refusal decided from
    prefetched facts writes nothing, so it does not interrupt a collection. Every other op is
    applied on its own in a savepoint, planned again on fresh reads
    (:class:`~vk_hive.gateway.facts.FactReader`)."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        node: NodeIdentity,
        cursor: int,
        linked: list[ProjectNodeLink],
    ) -> None:
        self.conn = conn
        self.node = node
        self.reader = FactReader(conn, node.node_id)
        self.writer = Writer(conn, node.node_id)
        self.result = BatchResult(applied_through=cursor)
        self.records: dict[str, op_log.OpRecord] = {}
        self.revoked: dict[uuid.UUID, LeaseRevoked] = {}
        self.through = cursor
        self.cursor = cursor
        """The node's applied-through seq at the start (or at the rebase of a new epoch)."""
        self.seen: set[str] = set()
        self.links = {link.local_project_id: link for link in linked}
        self.inventory: dict[uuid.UUID, bool] = {}
        self.clearances: dict[uuid.UUID, LogClearance] = {}
        self.own: dict[uuid.UUID, SharedTask | None] = {}
        """The node's own live tasks by local id as they are after the ops so far (None: none
        yet); an id missing here is unknown (a task created in this batch, or one an op on its
        own may have changed)."""
        self.writes: list[tuple[OutboxOp, NodeTaskData]] = []
        """Collected writes of the node's own tasks, in op order."""
        self.before: dict[uuid.UUID, SharedTask | None] = {}
        """By local id: each collected task as the database has it (None: new)."""
        self.placeholders: set[uuid.UUID] = set()
        """Ids of the collected new tasks in ``own`` (not yet inserted: not their shared ids)."""
        self.logs: list[tuple[OutboxOp, AppendLogs]] = []
        """Collected lines of ``logs.append`` ops whose checks passed, in op order."""
        self.acked: dict[int, AckedTask] = {}
        """By seq: the task each ``task.upsert`` of the batch wrote (or had written before)."""

    def _prefetched(self) -> Facts:
        """Facts for the first plan of an op: what the batch knows without a read."""
        return Facts(
            self.node,
            self.links,
            inventory=self.inventory,
            own_tasks=self.own,
            clearances=self.clearances,
        )

    async def _rebase(self, op: OutboxOp) -> None:
        """Start a new epoch of the node's op sequence just before ``op`` (see the module doc)."""
        epoch = await op_log.start_epoch(self.conn, self.node.node_id, op.seq - 1)
        log.warning(
            "op_batch.rebased",
            node_id=str(self.node.node_id),
            seq=op.seq,
            previous_applied_through=self.through,
            epoch=epoch,
        )
        self.through = self.cursor = op.seq - 1
        self.result.applied_through = self.through

    async def run(self, ops: list[OutboxOp]) -> None:
        keys = [op.idempotency_key for op in ops]
        recorded = await op_log.recorded(self.conn, self.node.node_id, keys)
        self.seen = recorded.keys
        # A resent op that was skipped: the node may never have seen its op_rejected (the
        # connection dropped after the commit), so it is told again.
        skipped = recorded.rejections
        local_ids = [op.payload.id for op in ops if isinstance(op.payload, TaskUpsert)]
        if local_ids:
            existing = await shared_tasks.find_by_source_task_ids(
                self.conn, self.node.node_id, local_ids
            )
            self.own = {local_id: existing.get(local_id) for local_id in local_ids}
        for op in ops:
            if op.seq <= self.through and op.idempotency_key not in self.seen:
                await self._rebase(op)
            if op.seq > self.through + 1:
                self.result.gap_at = op.seq
                break
            if op.idempotency_key in self.seen:
                if op.idempotency_key in skipped:
                    seq, code, reason = skipped[op.idempotency_key]
                    self.result.rejected.append(
                        OpRejected(
                            seq=seq, idempotency_key=op.idempotency_key, code=code, reason=reason
                        )
                    )
                else:
                    self._ack_duplicate(op)
                self.result.duplicates += 1
                self.result.outcomes[op.op_type.value, "duplicate"] += 1
                self.through = max(self.through, op.seq)
                continue
            decision = plan(op, self._prefetched())
            if _bulk(decision):
                self._collect(op, decision)
                self._done(op)
                continue
            if isinstance(decision, AppendLogs):
                self._collect_logs(op, decision)
                self._done(op)
                continue
            if isinstance(decision, Reject):
                self._done(op, self._reject(op, decision.error))
                continue
            await self._flush_tasks()
            self._forget(op)
            if not await self._one(op):
                break
        await self._flush_tasks()
        await self._flush_logs()

    def _collect(self, op: OutboxOp, decision: WriteTask) -> None:
        """Queue a write of one of the node's own tasks; the batch's view of the task follows
        it."""
        local_id = decision.data.source_task_id
        if local_id not in self.before:
            self.before[local_id] = decision.task
        after = shared_tasks.node_write(self.node.node_id, decision.task, decision.data)
        if decision.task is None:
            self.placeholders.add(after.id)
        self.own[local_id] = after
        self.writes.append((op, decision.data))

    def _collect_logs(self, op: OutboxOp, decision: AppendLogs) -> None:
        """Queue the lines of a ``logs.append`` op whose checks passed. The fence's row lock is
        held until this batch commits, so a token that was current for this op stays current
        for the next log ops of its execution."""
        self.clearances[decision.execution_id] = decision.clearance
        self.logs.append((op, decision))

    def _ack_duplicate(self, op: OutboxOp) -> None:
        """A ``task.upsert`` applied by an earlier batch: its task's id (the version it produced
        is not known any more)."""
        p = op.payload
        if isinstance(p, TaskUpsert):
            task = self.own.get(p.id)
            known = task is not None and task.id not in self.placeholders
            shared = task.id if task is not None and known else p.shared_task_id
            if shared is not None:
                self.acked[op.seq] = AckedTask(seq=op.seq, id=shared)

    def _ack(self, op: OutboxOp, task: SharedTask) -> None:
        """The task an op wrote. The version goes with it only when the hive's copy is what the
        op said: a write keeps an archive the op did not name (``archived_at`` is never cleared
        by a node), and then the node must take the hive's copy (no version: it pulls)."""
        p = op.payload
        same = not isinstance(p, TaskUpsert) or (p.archived_at is None) == (
            task.archived_at is None
        )
        version = task.version if same else None
        self.acked[op.seq] = AckedTask(seq=op.seq, id=task.id, version=version)

    def _forget(self, op: OutboxOp) -> None:
        """An op applied on its own may change what the batch knows: a ``task.upsert`` its
        task; an ``assignment.status`` any task (it may set a status); any op but
        ``logs.append`` the fences the log clearances stand for."""
        p = op.payload
        if not isinstance(p, LogsAppend):
            self.clearances.clear()
        if isinstance(p, TaskUpsert):
            self.own.pop(p.id, None)
        elif isinstance(p, AssignmentStatus):
            self.own = {local_id: None for local_id, task in self.own.items() if task is None}

    def _done(self, op: OutboxOp, rejected: OpRejected | None = None) -> None:
        """Record the op's outcome (applied, or the rejection) in the op log of this batch."""
        self.seen.add(op.idempotency_key)
        self.records[op.idempotency_key] = op_log.OpRecord(
            idempotency_key=op.idempotency_key,
            seq=op.seq,
            op_type=op.op_type.value,
            entity_id=op.entity_id,
            reject_code=None if rejected is None else rejected.code,
            reject_reason=None if rejected is None else rejected.reason,
            fencing_token=op.fencing_token,
        )
        self.through = max(self.through, op.seq)

    async def _flush_tasks(self) -> None:
        """Write the collected task writes (already recorded as applied) in a savepoint; if that
        fails on something the plan did not foresee, apply them one by one instead."""
        if not self.writes:
            return
        writes, self.writes = self.writes, []
        before, self.before = self.before, {}
        self.placeholders.clear()
        try:
            async with self.conn.transaction():
                written = await self.writer.write_tasks(before, [data for _, data in writes])
        except (DomainError, *DATABASE_ERRORS):
            for op, _ in writes:
                self._forget(op)
                await self._one(op, recorded=True)
            return
        self.result.applied += len(writes)
        for (op, _), task in zip(writes, written, strict=True):
            self._ack(op, task)
            self.result.outcomes[op.op_type.value, "applied"] += 1
            if task.source_task_id is not None:
                self.own[task.source_task_id] = task

    async def _flush_logs(self) -> None:
        """Insert the collected log lines (their ops already recorded as applied) with one
        statement in a savepoint; if that fails, op by op, refusing the ops that fail."""
        if not self.logs:
            return
        logs, self.logs = self.logs, []
        try:
            async with self.conn.transaction():
                await self.writer.append_logs([decision for _, decision in logs])
        except DATABASE_ERRORS:
            for op, decision in logs:
                try:
                    async with self.conn.transaction():
                        await self.writer.write(decision)
                except DATABASE_ERRORS as exc:
                    self._done(op, self._reject(op, refusal_for(exc)))
                    continue
                self._applied(op)
            return
        for op, _ in logs:
            self._applied(op)

    def _applied(self, op: OutboxOp) -> None:
        self.result.applied += 1
        self.result.outcomes[op.op_type.value, "applied"] += 1

    async def _decide(self, op: OutboxOp) -> Write | Reject | Park:
        """Plan ``op`` on fresh reads: read each fact the plan asks for, in the order it asks."""
        facts = Facts(self.node, self.links, inventory=self.inventory, clearances=self.clearances)
        asked: set[Need] = set()
        while True:
            decision = plan(op, facts)
            if not isinstance(decision, Need):
                return decision
            if decision in asked:  # pragma: no cover - a reader that does not fill its fact
                raise RuntimeError(f"the plan asked twice for {decision}")
            asked.add(decision)
            await self.reader.read(facts, decision)

    async def _one(self, op: OutboxOp, *, recorded: bool = False) -> bool:
        """Apply one op in a savepoint; False when it parked (the batch stops there).
        ``recorded``: the op is in the batch's op log already (as applied); a rejection
        replaces that record."""
        rejection: OpRejected | None = None
        try:
            async with self.conn.transaction():
                decision = await self._decide(op)
                if isinstance(decision, Park):
                    raise _Parked()
                if isinstance(decision, Reject):
                    raise decision.error
                if isinstance(decision, AppendLogs):
                    self._collect_logs(op, decision)  # inserted with the batch's other lines
                    written = None
                else:
                    written = await self.writer.write(decision)
            if written is not None:
                self._ack(op, written)
            if not isinstance(decision, AppendLogs):
                self._applied(op)
        except _Parked:
            self.result.parked_seq = op.seq
            self.result.outcomes[op.op_type.value, "parked"] += 1
            return False
        except OpRefused as refused:
            rejection = self._reject(op, refused)
        except (DomainError, *DATABASE_ERRORS) as exc:
            rejection = self._reject(op, refusal_for(exc))
        if not recorded or rejection is not None:
            self._done(op, rejection)
        return True

    def _reject(self, op: OutboxOp, refused: OpRefused) -> OpRejected:
        """Count and log the refusal of ``op``; its ``op_rejected`` (and ``lease_revoked``)."""
        if refused.revoke is not None:
            self.revoked.setdefault(refused.revoke.assignment_id, refused.revoke)
        self.result.outcomes[op.op_type.value, "skipped"] += 1
        log.info(
            "op.rejected",
            seq=op.seq,
            op_type=op.op_type.value,
            code=refused.code,
            reason=refused.reason,
        )
        rejected = OpRejected(
            seq=op.seq,
            idempotency_key=op.idempotency_key,
            code=refused.code,
            reason=refused.reason[:4096],
        )
        self.result.rejected.append(rejected)
        return rejected


def _bulk(decision: Decision) -> TypeGuard[WriteTask]:
    """A task write the batch may collect into its one-statement insert or update."""
    return isinstance(decision, WriteTask) and decision.bulk
