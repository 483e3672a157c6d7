"""Apply one ``op_batch`` of a node in ONE transaction (DESIGN.md §3, docs/sync-protocol.md).

Per op, in seq order: stop at a gap → dedup by (node, idempotency key) → resolve parents (PARK
when a parent may still arrive) → fence check (owner bypass) → status-author check → apply →
record. A gap is an op whose seq does not follow the applied-through seq: an earlier batch parked
or failed while this one was in flight, so the ops before it are missing; applying it would move
the cursor over them and the node would count them as acked. An op at or below the cursor whose
key was never recorded means the node's outbox is not the one the cursor counts (a store restored
from an older backup): every seq up to the cursor had its key recorded. The node then gets a new
op-sequence epoch from that op on, so its new ops are acked for what they are, not by the old
cursor. A permanently invalid op is recorded
and skipped (SKIP+ADVANCE) with an ``op_rejected``. Each op runs in a savepoint, so a failing op
leaves nothing half-applied. The node's cursor is advanced and the op log written before the
commit; the caller sends the rejections, revocations and ``op_ack`` only after the commit. Any
other database error propagates: nothing is acked and the node resends.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
import structlog

from vk_hive.errors import DomainError, InvalidInput, InvalidTransition, NotFound
from vk_hive.store.db import Database
from vk_hive.store.models import Assignment, NewOutputLog, ProjectNodeLink, SharedTask
from vk_hive.store.repositories import (
    activity,
    assignments,
    executions,
    node_local_projects,
    op_log,
    project_links,
    shared_tasks,
)
from vk_hive.store.repositories.executions import AttemptData, ProcessData
from vk_hive.store.repositories.shared_tasks import NodeTaskData
from vk_shared.protocol import MAX_TASK_TEXT_BYTES
from vk_shared.status import Author, ExecutionStatus, TaskStatus, is_legal, may_transition, to_hive
from vk_shared.wire import (
    AssignmentStatus,
    AttemptUpsert,
    ExecutionUpsert,
    LeaseRevoked,
    LogsAppend,
    OpRejected,
    OutboxOp,
    RejectCode,
    TaskUpsert,
)

__all__ = ["BatchResult", "NodeIdentity", "apply_batch"]

log = structlog.get_logger("vk_hive.gateway.apply")

TERMINAL = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})


class NodeIdentity(Protocol):
    node_id: uuid.UUID
    organization_id: uuid.UUID
    name: str


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


class _Park(Exception):
    """A parent is not on the hive yet: stop the batch here."""


class _Skip(Exception):
    def __init__(self, code: str, reason: str, revoke: LeaseRevoked | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.revoke = revoke


def _store_error_code(exc: DomainError) -> str:
    if isinstance(exc, InvalidTransition):
        return RejectCode.ILLEGAL_TRANSITION
    if isinstance(exc, NotFound):
        return RejectCode.NOT_FOUND
    if isinstance(exc, InvalidInput) and "exceed" in exc.detail:
        return RejectCode.TEXT_TOO_LONG
    return RejectCode.INVALID_PAYLOAD


@dataclass(frozen=True)
class _LogParents:
    """What the checks of a ``logs.append`` found for its execution within one batch."""

    assignment_id: uuid.UUID | None
    token: int | None
    """The fencing token the op had to carry; None: the node owns the task (no lease)."""


class _Applier:
    def __init__(self, conn: asyncpg.Connection, node: NodeIdentity) -> None:
        self.conn = conn
        self.node_id = node.node_id
        self.org_id = node.organization_id
        self.node_name = node.name
        self._links: dict[uuid.UUID, ProjectNodeLink | None] = {}
        self._log_parents: dict[uuid.UUID, _LogParents] = {}

    async def apply(self, op: OutboxOp) -> None:
        payload = op.payload
        if not isinstance(payload, LogsAppend):
            self._log_parents.clear()  # any other op may change what the checks saw
        if isinstance(payload, TaskUpsert):
            await self._task(op, payload)
        elif isinstance(payload, AttemptUpsert):
            await self._attempt(op, payload)
        elif isinstance(payload, ExecutionUpsert):
            await self._execution(op, payload)
        elif isinstance(payload, LogsAppend):
            await self._logs(op, payload)
        else:
            await self._assignment_status(op, payload)

    # --- parents -------------------------------------------------------------------------------

    async def _link_for(self, local_project_id: uuid.UUID) -> ProjectNodeLink:
        if local_project_id not in self._links:
            self._links[local_project_id] = await project_links.find_by_local_project(
                self.conn, self.node_id, local_project_id
            )
        link = self._links[local_project_id]
        if link is None:
            inventory = await node_local_projects.find_by_node_and_project(
                self.conn, self.node_id, local_project_id
            )
            if inventory is None:
                raise _Park()  # projects_sync / link_project has not arrived yet
            raise _Skip(
                RejectCode.PROJECT_NOT_LINKED, f"local project {local_project_id} is not linked"
            )
        return link

    async def _missing_parent(self, what: str, parent_id: uuid.UUID) -> None:
        """PARK while the parent's op may still come; SKIP once it was applied or rejected."""
        if await op_log.has_entity(self.conn, self.node_id, parent_id):
            raise _Skip(RejectCode.NOT_FOUND, f"{what} {parent_id} was rejected or deleted")
        raise _Park()

    async def _shared_task(self, shared_task_id: uuid.UUID) -> SharedTask:
        task = await shared_tasks.find_including_deleted(self.conn, shared_task_id)
        if task is None:
            raise _Skip(RejectCode.NOT_FOUND, f"task {shared_task_id} does not exist on the hive")
        if task.organization_id != self.org_id:
            raise _Skip(RejectCode.FORBIDDEN, f"task {shared_task_id} is not in your organization")
        if task.deleted_at is not None:
            raise _Skip(RejectCode.NOT_FOUND, f"task {shared_task_id} was deleted on the hive")
        return task

    async def _task_of(
        self, local_task_id: uuid.UUID, shared_task_id: uuid.UUID | None
    ) -> SharedTask:
        if shared_task_id is not None:
            return await self._shared_task(shared_task_id)
        task = await shared_tasks.find_by_source_task_id(self.conn, self.node_id, local_task_id)
        if task is None:
            await self._missing_parent("task", local_task_id)
        assert task is not None
        return task

    # --- fencing -------------------------------------------------------------------------------

    async def _fence(self, op: OutboxOp, task: SharedTask) -> Assignment | None:
        """The live assignment the op's token proves; None for the task's owner (no lease)."""
        if task.owner_node_id == self.node_id:
            return None
        active = await assignments.find_active_for_task(self.conn, task.id, lock=True)
        if active is None:
            latest = await assignments.find_latest_by_task_id(self.conn, task.id, self.node_id)
            revoke = None
            if latest is not None:
                revoke = LeaseRevoked(
                    assignment_id=latest.id,
                    reason="no active assignment (lease revoked or completed)",
                )
            raise _Skip(
                RejectCode.NO_ACTIVE_ASSIGNMENT,
                f"task {task.id} has no active assignment for this node",
                revoke,
            )
        if (
            active.node_id != self.node_id
            or op.fencing_token is None
            or op.fencing_token != active.fencing_token
        ):
            revoke = None
            if active.node_id == self.node_id:
                revoke = LeaseRevoked(assignment_id=active.id, reason="stale fencing token")
            else:
                mine = await assignments.find_latest_by_task_id(self.conn, task.id, self.node_id)
                if mine is not None:
                    revoke = LeaseRevoked(
                        assignment_id=mine.id, reason="the task is assigned to another node"
                    )
            raise _Skip(
                RejectCode.STALE_FENCING_TOKEN,
                f"fencing token {op.fencing_token} is not the current token of task {task.id}",
                revoke,
            )
        return active

    # --- op types ------------------------------------------------------------------------------

    async def _task(self, op: OutboxOp, p: TaskUpsert) -> None:
        if p.id != op.entity_id:
            raise _Skip(RejectCode.INVALID_PAYLOAD, "entity_id must equal the task id")
        size = len(p.title.encode()) + len((p.description or "").encode())
        if size > MAX_TASK_TEXT_BYTES:
            raise _Skip(
                RejectCode.TEXT_TOO_LONG,
                f"title and description exceed {MAX_TASK_TEXT_BYTES} bytes",
            )
        status = to_hive(p.status)
        if p.shared_task_id is not None:
            task: SharedTask | None = await self._shared_task(p.shared_task_id)
        else:
            task = await shared_tasks.find_by_source_task_id(self.conn, self.node_id, p.id)
        link = await self._link_for(p.project_id)
        owner = task is None or task.owner_node_id == self.node_id
        if task is not None:
            await self._fence(op, task)
            if task.status != status:
                allowed = (
                    is_legal(task.status, status)
                    if owner
                    else may_transition(Author.NODE, task.status, status)
                )
                if not allowed:
                    raise _Skip(
                        RejectCode.ILLEGAL_TRANSITION,
                        f"status {task.status.value} -> {status.value} may not be authored by "
                        "this node",
                    )
        data = _task_data(op, p, status, self.org_id, link.swarm_project_id, self.node_name)
        await shared_tasks.upsert_from_node(
            self.conn, self.node_id, data, status_author=None if owner else Author.NODE
        )

    async def _attempt(self, op: OutboxOp, p: AttemptUpsert) -> None:
        if p.id != op.entity_id:
            raise _Skip(RejectCode.INVALID_PAYLOAD, "entity_id must equal the attempt id")
        task = await self._task_of(p.task_id, p.shared_task_id)
        await self._fence(op, task)
        if p.assignment_id is not None:
            assignment = await assignments.find_by_id(self.conn, p.assignment_id)
            if assignment is None or assignment.task_id != task.id:
                raise _Skip(
                    RejectCode.INVALID_PAYLOAD,
                    f"assignment {p.assignment_id} is not an assignment of task {task.id}",
                )
        await executions.upsert_attempt(
            self.conn,
            self.node_id,
            AttemptData(
                id=p.id,
                shared_task_id=task.id,
                executor=p.executor,
                branch=p.branch,
                target_branch=p.target_branch,
                assignment_id=p.assignment_id,
                executor_variant=p.executor_variant,
                worktree_deleted=p.worktree_deleted,
                setup_completed_at=p.setup_completed_at,
                created_at=p.created_at,
                updated_at=p.updated_at,
            ),
        )

    async def _attempt_task(self, attempt_id: uuid.UUID) -> tuple[uuid.UUID | None, SharedTask]:
        attempt = await executions.find_attempt(self.conn, attempt_id)
        if attempt is None:
            await self._missing_parent("attempt", attempt_id)
        assert attempt is not None
        if attempt.node_id != self.node_id:
            raise _Skip(RejectCode.FORBIDDEN, f"attempt {attempt_id} belongs to another node")
        return attempt.assignment_id, await self._shared_task(attempt.shared_task_id)

    async def _execution(self, op: OutboxOp, p: ExecutionUpsert) -> None:
        if p.id != op.entity_id:
            raise _Skip(RejectCode.INVALID_PAYLOAD, "entity_id must equal the execution id")
        _, task = await self._attempt_task(p.attempt_id)
        await self._fence(op, task)
        await executions.upsert_process(
            self.conn,
            self.node_id,
            ProcessData(
                id=p.id,
                attempt_id=p.attempt_id,
                run_reason=p.run_reason,
                status=p.status.value,
                started_at=p.started_at,
                executor_action=p.executor_action,
                before_head_commit=p.before_head_commit,
                after_head_commit=p.after_head_commit,
                exit_code=p.exit_code,
                dropped=p.dropped,
                pid=p.pid,
                completed_at=p.completed_at,
            ),
        )

    async def _logs(self, op: OutboxOp, p: LogsAppend) -> None:
        parents = self._log_parents.get(p.execution_id)
        if parents is None or parents.token not in (None, op.fencing_token):
            parents = await self._log_checks(op, p)
        lines = [
            NewOutputLog(
                output_type=e.output_type.value,
                content=e.content,
                local_log_id=e.id,
                timestamp=e.timestamp,
            )
            for e in p.entries
            if p.first_log_id <= e.id <= p.last_log_id
        ]
        await executions.insert_logs(self.conn, parents.assignment_id, p.execution_id, lines)
        # Consecutive logs of one execution (the common case: a chatty process) skip the parent
        # lookups and the fence read: the fence's row lock is held until this batch commits, so
        # a token that was current for this op stays current for the next ones of the run.
        self._log_parents[p.execution_id] = parents

    async def _log_checks(self, op: OutboxOp, p: LogsAppend) -> _LogParents:
        process = await executions.find_process(self.conn, p.execution_id)
        if process is None:
            await self._missing_parent("execution", p.execution_id)
        assert process is not None
        if process.node_id != self.node_id:
            raise _Skip(RejectCode.FORBIDDEN, f"execution {p.execution_id} belongs to another node")
        assignment_id, task = await self._attempt_task(process.attempt_id)
        active = await self._fence(op, task)
        return _LogParents(assignment_id, None if active is None else active.fencing_token)

    async def _assignment_status(self, op: OutboxOp, p: AssignmentStatus) -> None:
        assignment = await assignments.find_by_id(self.conn, p.assignment_id, lock=True)
        if assignment is None:
            raise _Skip(RejectCode.NOT_FOUND, f"assignment {p.assignment_id} does not exist")
        if assignment.node_id != self.node_id:
            raise _Skip(
                RejectCode.STALE_FENCING_TOKEN,
                f"assignment {p.assignment_id} is held by another node",
            )
        task = await self._shared_task(assignment.task_id)
        if assignment.completed_at is not None:
            raise _Skip(
                RejectCode.NO_ACTIVE_ASSIGNMENT,
                f"assignment {assignment.id} is closed ({assignment.execution_status})",
                LeaseRevoked(assignment_id=assignment.id, reason="the assignment is closed"),
            )
        if op.fencing_token != assignment.fencing_token:
            raise _Skip(
                RejectCode.STALE_FENCING_TOKEN,
                f"fencing token {op.fencing_token} is not the current token of assignment "
                f"{assignment.id}",
                LeaseRevoked(assignment_id=assignment.id, reason="stale fencing token"),
            )
        await assignments.update(
            self.conn,
            assignment.id,
            local_task_id=p.local_task_id,
            local_attempt_id=p.local_attempt_id,
            execution_status=p.status.value,
        )
        if p.status == ExecutionStatus.RUNNING and task.status == TaskStatus.TODO:
            await shared_tasks.set_status(self.conn, task.id, TaskStatus.IN_PROGRESS, Author.HIVE)
        if p.status in TERMINAL:
            await assignments.complete(self.conn, assignment.id, p.status.value)


async def apply_batch(db: Database, node: NodeIdentity, ops: list[OutboxOp]) -> BatchResult:
    """Apply ``ops`` (ascending seq) for ``node`` in one transaction; see the module doc."""
    started = time.perf_counter()
    async with db.transaction() as conn:
        cursor = await op_log.lock_node(conn, node.node_id)
        # The hive's lock order: project counters before task and assignment rows.
        linked = await project_links.list_by_node(conn, node.node_id)
        await activity.lock_projects(conn, [link.swarm_project_id for link in linked])
        batch = _Batch(conn, node, cursor)
        await batch.run(ops)
        await op_log.record_many(conn, node.node_id, list(batch.records.values()))
        through = batch.through
        if through > batch.cursor:
            through = await op_log.advance_applied_through(conn, node.node_id, through)
        result = batch.result
        result.applied_through = through
        result.revoked = list(batch.revoked.values())
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


class _Batch:
    """One batch's walk over its ops. New tasks of the node (the common case when a node creates
    work) and plain updates of tasks it owns (the common case when it edits them) are collected
    and written together by :meth:`_flush` — one statement each — before any other op is
    applied, so the order of effects per task stays the order of the ops."""

    def __init__(self, conn: asyncpg.Connection, node: NodeIdentity, cursor: int) -> None:
        self.conn = conn
        self.node = node
        self.applier = _Applier(conn, node)
        self.result = BatchResult(applied_through=cursor)
        self.records: dict[str, op_log.OpRecord] = {}
        self.revoked: dict[uuid.UUID, LeaseRevoked] = {}
        self.through = cursor
        self.cursor = cursor
        """The node's applied-through seq at the start (or at the rebase of a new epoch)."""
        self.seen: set[str] = set()
        self.known: set[uuid.UUID] = set()
        self.pending: list[tuple[OutboxOp, NodeTaskData]] = []
        self.existing: dict[uuid.UUID, SharedTask] = {}
        """The node's own live tasks named by the batch, by local id (for the update path)."""
        self.status_now: dict[uuid.UUID, TaskStatus] = {}
        """Status of a task after the batch's updates so far (shared id)."""
        self.updates: list[tuple[OutboxOp, tuple[uuid.UUID, NodeTaskData]]] = []
        self.updating: set[uuid.UUID] = set()

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
        self.seen = await op_log.recorded_keys(self.conn, self.node.node_id, keys)
        # A resent op that was skipped: the node may never have seen its op_rejected (the
        # connection dropped after the commit), so it is told again.
        skipped = await op_log.recorded_rejections(self.conn, self.node.node_id, keys)
        local_ids = [op.payload.id for op in ops if isinstance(op.payload, TaskUpsert)]
        if local_ids:
            self.existing = await shared_tasks.find_by_source_task_ids(
                self.conn, self.node.node_id, local_ids
            )
            self.known = set(self.existing)
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
                self.result.duplicates += 1
                self.result.outcomes[op.op_type.value, "duplicate"] += 1
                self.through = max(self.through, op.seq)
                continue
            fresh = await self._fresh_task(op)
            if fresh is not None:
                self.pending.append((op, fresh))
                self.known.add(fresh.source_task_id)
                self._done(op)
                continue
            update = await self._plain_update(op)
            if update is not None:
                self.updates.append((op, update))
                self.updating.add(update[0])
                self._done(op)
                continue
            await self._flush()
            self._forget(op)
            if not await self._one(op):
                break
        await self._flush()

    def _forget(self, op: OutboxOp) -> None:
        """An op on the per-op path may change a task the update path knows: forget it (a
        ``task.upsert``: that task; an ``assignment.status``: any, it may set a status)."""
        p = op.payload
        if isinstance(p, TaskUpsert):
            task = self.existing.pop(p.id, None)
            if task is not None:
                self.status_now.pop(task.id, None)
        elif isinstance(p, AssignmentStatus):
            self.existing.clear()
            self.status_now.clear()

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

    async def _fresh_task(self, op: OutboxOp) -> NodeTaskData | None:
        """The data of a plain new node task that can take the bulk path, else None."""
        p = op.payload
        if not isinstance(p, TaskUpsert) or p.shared_task_id is not None or p.id in self.known:
            return None
        if p.id != op.entity_id or not _plain_text(p):
            return None
        link = await self._link(p)
        if link is None:
            return None
        node = self.node
        return _task_data(
            op, p, to_hive(p.status), node.organization_id, link.swarm_project_id, node.name
        )

    async def _plain_update(self, op: OutboxOp) -> tuple[uuid.UUID, NodeTaskData] | None:
        """(shared id, data) of an update of a live task the node owns that can take the bulk
        path — text fits, project linked, a legal transition from the status the batch has made
        so far — else None (the per-op path applies or rejects it)."""
        p = op.payload
        if not isinstance(p, TaskUpsert):
            return None
        task = self.existing.get(p.id)
        if task is None or task.owner_node_id != self.node.node_id:
            return None
        if p.shared_task_id not in (None, task.id) or p.id != op.entity_id:
            return None
        if not _plain_text(p):
            return None
        status = to_hive(p.status)
        current = self.status_now.get(task.id, task.status)
        if status != current and not is_legal(current, status):
            return None
        link = await self._link(p)
        if link is None:
            return None
        if task.id in self.updating:
            await self._flush()  # one update per task and statement
        self.status_now[task.id] = status
        data = _task_data(
            op, p, status, self.node.organization_id, link.swarm_project_id, self.node.name
        )
        return task.id, data

    async def _link(self, p: TaskUpsert) -> ProjectNodeLink | None:
        """The op's project link, or None when it would park or be skipped (the per-op path
        then decides)."""
        try:
            return await self.applier._link_for(p.project_id)
        except (_Park, _Skip):
            return None

    async def _flush(self) -> None:
        if self.pending:
            creates, self.pending = self.pending, []
            await self._bulk(
                [op for op, _ in creates],
                lambda: shared_tasks.insert_many_from_node(
                    self.conn, self.node.node_id, [data for _, data in creates]
                ),
            )
        if self.updates:
            updates, self.updates = self.updates, []
            self.updating.clear()
            await self._bulk(
                [op for op, _ in updates],
                lambda: shared_tasks.update_many_from_node(
                    self.conn, self.node.node_id, [update for _, update in updates]
                ),
            )

    async def _bulk(self, ops: list[OutboxOp], write: Callable[[], Awaitable[object]]) -> None:
        """Run one bulk ``write`` for ``ops`` (already recorded as applied) in a savepoint; if
        it fails on something the checks did not foresee, apply the ops one by one instead."""
        try:
            async with self.conn.transaction():
                await write()
            self.result.applied += len(ops)
            for op in ops:
                self.result.outcomes[op.op_type.value, "applied"] += 1
        except (DomainError, asyncpg.DataError, asyncpg.IntegrityConstraintViolationError):
            for op in ops:
                self._forget(op)
                await self._one(op, recorded=True)

    async def _one(self, op: OutboxOp, *, recorded: bool = False) -> bool:
        """Apply one op in a savepoint; False when it parked (the batch stops there).
        ``recorded``: the op is in the batch's op log already (as applied); a rejection
        replaces that record."""
        rejected_before = len(self.result.rejected)
        try:
            async with self.conn.transaction():
                await self.applier.apply(op)
            self.result.applied += 1
            self.result.outcomes[op.op_type.value, "applied"] += 1
        except _Park:
            self.result.parked_seq = op.seq
            self.result.outcomes[op.op_type.value, "parked"] += 1
            return False
        except _Skip as skip:
            _reject(self.result, op, skip.code, skip.reason)
            if skip.revoke is not None:
                self.revoked.setdefault(skip.revoke.assignment_id, skip.revoke)
        except DomainError as exc:
            _reject(self.result, op, _store_error_code(exc), exc.detail)
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            _reject(self.result, op, RejectCode.INVALID_PAYLOAD, f"rejected by the database: {exc}")
        rejection = (
            self.result.rejected[-1] if len(self.result.rejected) > rejected_before else None
        )
        if not recorded or rejection is not None:
            self._done(op, rejection)
        return True


def _plain_text(p: TaskUpsert) -> bool:
    """Title and description fit the limit and hold no NUL (else the per-op path rejects)."""
    if "\x00" in p.title or "\x00" in (p.description or ""):
        return False
    return len(p.title.encode()) + len((p.description or "").encode()) <= MAX_TASK_TEXT_BYTES


def _task_data(
    op: OutboxOp,
    p: TaskUpsert,
    status: TaskStatus,
    organization_id: uuid.UUID,
    swarm_project_id: uuid.UUID,
    owner_name: str,
) -> NodeTaskData:
    """What a node's ``task.upsert`` asks the hive to write."""
    return NodeTaskData(
        organization_id=organization_id,
        swarm_project_id=swarm_project_id,
        source_task_id=p.id,
        title=p.title,
        description=p.description,
        status=status,
        shared_task_id=p.shared_task_id,
        owner_name=owner_name,
        archived_at=p.archived_at,
        origin_seq=op.seq,
    )


def _reject(result: BatchResult, op: OutboxOp, code: str, reason: str) -> None:
    result.outcomes[op.op_type.value, "skipped"] += 1
    log.info("op.rejected", seq=op.seq, op_type=op.op_type.value, code=code, reason=reason)
    result.rejected.append(
        OpRejected(seq=op.seq, idempotency_key=op.idempotency_key, code=code, reason=reason[:4096])
    )
