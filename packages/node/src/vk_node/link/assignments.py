"""Hive assignments and their leases on the node (DESIGN.md §5, docs/sync-protocol.md).

``task_assign`` → the assignment is recorded (``hive_assignments``). When this node cannot run
the task's executor the assignment fails at once (``assignment.status failed`` naming the
executor; no local task, attempt, worktree or setup script). Otherwise the local task is created
or reused by shared id, ``assignment.status starting`` is enqueued, the attempt starts on the
:class:`~vk_node.executor.service.ExecutorService` (its ``hive_assignment_id`` set), ``running``
is enqueued; when the run chain ends (the executor has moved the task to ``inreview``) the
terminal ``completed``/``failed`` is enqueued as the run's last op.

Leases (:mod:`vk_node.link.leases`): the deadline is receipt time + ttl on the monotonic clock;
``lease_renew`` goes out every ttl/3 while connected; ``lease_grant`` restarts the deadline.
``lease_revoked``, ``task_cancel`` and a passed deadline (the watchdog runs connected or not)
stop the attempt's processes and enqueue ``cancelled``. After a restart an unfinished assignment
holds only a provisional lease (``lease_restore_grace_s``) until the hive grants it again.

The current fencing token of each assignment is kept until its terminal op is acked, so every op
of the run — the terminal one included — is stamped with it at send time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

import aiosqlite
import structlog

from vk_node.executor.service import ExecutorService
from vk_node.link.clock import Clock
from vk_node.link.leases import LeaseTable
from vk_node.link.tasks import TaskGroupOwner
from vk_node.settings import NodeSettings
from vk_node.store import Store, outbox
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import hive_assignments as repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.protocol import MAX_ASSIGNMENT_IDS
from vk_shared.status import ExecutionStatus, NodeTaskStatus
from vk_shared.wire import LeaseGrant, LeaseRenew, NodeMessage, TaskAssign

__all__ = ["AssignmentError", "AssignmentManager"]

log = structlog.get_logger("vk_node.link")

_TERMINAL = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)
_CHAIN_POLL_S = 0.1
"""How often the end of a run chain is checked (the executor has no completion callback)."""

Send = Callable[[NodeMessage], Awaitable[None]]


class AssignmentError(Exception):
    """An assignment cannot run here (reported to the hive as ``failed``)."""


@dataclass
class _Assignment:
    id: UUID
    shared_task_id: UUID
    swarm_project_id: UUID
    local_project_id: UUID
    token: int
    local_task_id: UUID | None = None
    local_attempt_id: UUID | None = None
    status: ExecutionStatus = ExecutionStatus.PENDING
    terminal_seq: int | None = None
    run: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in _TERMINAL


class AssignmentManager:
    def __init__(
        self,
        store: Store,
        settings: NodeSettings,
        clock: Clock,
        executor: ExecutorService,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.executor = executor
        self.leases = LeaseTable()
        self._assignments: dict[UUID, _Assignment] = {}
        self._send: Send | None = None
        self._wake = asyncio.Event()
        self._owner = TaskGroupOwner()
        self._stopping: set[UUID] = set()
        self._renewing: asyncio.Task[None] | None = None
        self.fenced = 0
        """How many times the watchdog fenced an assignment (for tests and status)."""

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load unretired assignments, give unfinished ones a provisional lease, start the
        lease loop."""
        async with self.store.read() as conn:
            rows = await repo.list_live(conn)
        now = self.clock.monotonic()
        for row in rows:
            a = _Assignment(
                id=row.assignment_id,
                shared_task_id=row.shared_task_id,
                swarm_project_id=row.swarm_project_id,
                local_project_id=row.local_project_id,
                token=row.fencing_token,
                local_task_id=row.local_task_id,
                local_attempt_id=row.local_attempt_id,
                status=row.status,
                terminal_seq=row.terminal_seq,
            )
            self._assignments[a.id] = a
            if not a.finished:
                self.leases.provisional(a.id, a.token, self.settings.lease_restore_grace_s, now)
                a.run = self._owner.spawn(self._watch_restored(a))
                log.info("assignment.restored", assignment_id=str(a.id), status=a.status.value)
        self._owner.spawn(self._lease_loop())

    async def close(self) -> None:
        await self._owner.close()

    def attach(self, send: Send) -> None:
        """A session started: renew every held lease now."""
        self._send = send
        self.leases.renew_all_now(self.clock.monotonic())
        self._wake.set()

    def detach(self) -> None:
        self._send = None
        self._wake.set()

    # --- queries --------------------------------------------------------------------------

    def has_tokens(self) -> bool:
        return bool(self._assignments)

    def token_for_task(self, local_task_id: UUID) -> int | None:
        tokens = [a.token for a in self._assignments.values() if a.local_task_id == local_task_id]
        return max(tokens) if tokens else None

    def token_for_assignment(self, assignment_id: UUID) -> int | None:
        a = self._assignments.get(assignment_id)
        return None if a is None else a.token

    def held(self) -> list[UUID]:
        return self.leases.ids()

    def status_of(self, assignment_id: UUID) -> ExecutionStatus | None:
        a = self._assignments.get(assignment_id)
        return None if a is None else a.status

    def running(self) -> int:
        return self.executor.running_count()

    # --- hive messages --------------------------------------------------------------------

    async def on_task_assign(self, msg: TaskAssign) -> None:
        """Accept ``msg`` in a task of its own that a cancelled caller does not interrupt: the
        session's receive loop is cancelled when its link drops, and an assignment accepted
        halfway (known and holding a lease, but not recorded or started) would renew its lease
        without ever running, while every later ``task_assign`` of it would be taken for a
        duplicate."""
        await asyncio.shield(self._owner.spawn(self._accept(msg)))

    async def _accept(self, msg: TaskAssign) -> None:
        now = self.clock.monotonic()
        self.leases.grant(msg.assignment_id, msg.fencing_token, msg.lease_ttl_ms / 1000, now)
        self._wake.set()
        known = self._assignments.get(msg.assignment_id)
        if known is not None:
            await self._raise_token(known, msg.fencing_token)
            return
        a = _Assignment(
            id=msg.assignment_id,
            shared_task_id=msg.task_id,
            swarm_project_id=msg.project_id,
            local_project_id=msg.local_project_id,
            token=msg.fencing_token,
        )
        self._assignments[a.id] = a
        async with self.store.transaction() as conn:
            await repo.record(
                conn,
                assignment_id=a.id,
                shared_task_id=a.shared_task_id,
                swarm_project_id=a.swarm_project_id,
                local_project_id=a.local_project_id,
                fencing_token=a.token,
            )
        log.info(
            "assignment.received",
            assignment_id=str(a.id),
            task_id=str(a.shared_task_id),
            fencing_token=a.token,
            ttl_ms=msg.lease_ttl_ms,
        )
        a.run = self._owner.spawn(self._run(a, msg))

    async def on_lease_grant(self, msg: LeaseGrant) -> None:
        a = self._assignments.get(msg.assignment_id)
        if a is None or msg.assignment_id not in self.leases:
            log.info("lease.grant_ignored", assignment_id=str(msg.assignment_id))
            return
        self.leases.grant(
            msg.assignment_id, msg.fencing_token, msg.ttl_ms / 1000, self.clock.monotonic()
        )
        await self._raise_token(a, msg.fencing_token)
        self._wake.set()

    def on_lease_revoked(self, assignment_id: UUID, reason: str) -> None:
        self._stop_soon(assignment_id, f"lease revoked: {reason}", "lease.revoked")

    def on_task_cancel(self, assignment_id: UUID, reason: str | None) -> None:
        self._stop_soon(assignment_id, f"cancelled: {reason or 'by an operator'}", "task.cancelled")

    def _stop_soon(self, assignment_id: UUID, message: str, event: str) -> None:
        a = self._assignments.get(assignment_id)
        if a is None or a.finished:
            log.info(event, assignment_id=str(assignment_id), known=a is not None, acted=False)
            return
        log.info(event, assignment_id=str(assignment_id), reason=message)
        self.leases.release(assignment_id)
        self._owner.spawn(self._stop(a, message))

    async def retire(self, conn: aiosqlite.Connection, acked_through: int) -> list[UUID]:
        """In the ack's transaction: retire assignments whose terminal op is acked."""
        return await repo.retire_acked(conn, acked_through)

    def forget(self, ids: list[UUID]) -> None:
        for assignment_id in ids:
            self._assignments.pop(assignment_id, None)
            log.info("assignment.retired", assignment_id=str(assignment_id))

    async def _raise_token(self, a: _Assignment, token: int) -> None:
        if token > a.token:
            a.token = token
            async with self.store.transaction() as conn:
                await repo.update_token(conn, a.id, token)

    # --- running --------------------------------------------------------------------------

    async def _run(self, a: _Assignment, msg: TaskAssign) -> None:
        try:
            # Before anything is created or run: an executor this node cannot run fails the
            # assignment without a local task, attempt, worktree or setup script.
            self.executor.require_executor(msg.task.executor)
            await self._ensure_local_task(a, msg)
            await self._report(a, ExecutionStatus.STARTING)
            attempt = await self.executor.create_attempt(
                task_id=_required(a.local_task_id),
                executor=msg.task.executor,
                base_branch=msg.task.base_branch,
                variant=msg.task.executor_variant,
                start=False,
            )
            a.local_attempt_id = attempt.id
            async with self.store.transaction() as conn:
                await attempts_repo.set_hive_assignment_id(conn, attempt.id, a.id)
                await repo.set_local_ids(conn, a.id, local_attempt_id=attempt.id)
            if a.id not in self.leases:
                return  # stopped while the worktree was being created
            await self.executor.start_attempt(attempt.id, variant=msg.task.executor_variant)
            await self._report(a, ExecutionStatus.RUNNING)
            log.info("assignment.started", assignment_id=str(a.id), attempt_id=str(attempt.id))
            await self._await_chain(attempt.id)
            await self._finish(a)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("assignment.failed", assignment_id=str(a.id), error=str(exc))
            if self.leases.release(a.id) is not None and not a.finished:
                await self._report(a, ExecutionStatus.FAILED, message=str(exc)[:4000])

    async def _ensure_local_task(self, a: _Assignment, msg: TaskAssign) -> None:
        async with self.store.transaction() as conn:
            project = await projects_repo.find_by_id(conn, msg.local_project_id)
            if project is None or project.remote_project_id != msg.project_id:
                project = await projects_repo.find_by_remote_project_id(conn, msg.project_id)
            if project is None:
                raise AssignmentError(
                    f"no local project is linked to swarm project {msg.project_id}"
                )
            a.local_project_id = project.id
            task = await tasks_repo.find_by_shared_task_id(conn, msg.task_id)
            if task is None:
                task = await tasks_repo.upsert_remote_task(
                    conn,
                    project_id=project.id,
                    shared_task_id=msg.task_id,
                    title=msg.task.title,
                    description=msg.task.description,
                    status=NodeTaskStatus.INPROGRESS,
                    remote_version=0,
                )
            a.local_task_id = task.id
            await repo.set_local_ids(conn, a.id, local_task_id=task.id)

    async def _await_chain(self, attempt_id: UUID) -> None:
        while self.executor.has_running_chain(attempt_id):
            await self.clock.sleep(_CHAIN_POLL_S)

    async def _finish(self, a: _Assignment) -> None:
        """The run chain ended on its own: report its outcome as the run's last op."""
        if a.finished or self.leases.release(a.id) is None:
            return
        status = ExecutionStatus.FAILED
        if a.local_attempt_id is not None:
            async with self.store.read() as conn:
                agent = await processes_repo.find_latest_by_task_attempt_and_run_reason(
                    conn, a.local_attempt_id, "codingagent"
                )
            if agent is not None and agent.status == "completed":
                status = ExecutionStatus.COMPLETED
        await self._report(a, status)
        log.info("assignment.finished", assignment_id=str(a.id), status=status.value)

    async def _watch_restored(self, a: _Assignment) -> None:
        await self.executor.ready.wait()
        if a.local_attempt_id is not None:
            await self._await_chain(a.local_attempt_id)
        await self._finish(a)

    async def _stop(self, a: _Assignment, message: str) -> None:
        """Stop the run's processes (killed) and report ``cancelled``."""
        if a.finished or a.id in self._stopping:
            return
        self._stopping.add(a.id)
        try:
            run = a.run
            if run is not None and not run.done():
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
            attempt_id = a.local_attempt_id
            if attempt_id is None:
                async with self.store.read() as conn:
                    found = await attempts_repo.find_by_hive_assignment_id(conn, a.id)
                attempt_id = None if found is None else found.id
            if attempt_id is not None:
                await self.executor.stop_attempt(attempt_id)
            await self._report(a, ExecutionStatus.CANCELLED, message=message[:4000])
        finally:
            self._stopping.discard(a.id)

    async def _report(
        self, a: _Assignment, status: ExecutionStatus, *, message: str | None = None
    ) -> None:
        async with self.store.transaction() as conn:
            seq = await outbox.enqueue_assignment_status(
                conn,
                a.id,
                status,
                local_task_id=a.local_task_id,
                local_attempt_id=a.local_attempt_id,
                message=message,
                fencing_token=a.token,
            )
            terminal = status in _TERMINAL
            await repo.set_status(conn, a.id, status, terminal_seq=seq if terminal else None)
        a.status = status
        if status in _TERMINAL:
            a.terminal_seq = seq

    # --- the lease loop -------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock.monotonic()
            for assignment_id in self.leases.expired(now):
                self.leases.release(assignment_id)
                a = self._assignments.get(assignment_id)
                if a is None or a.finished:
                    continue
                self.fenced += 1
                log.warning("lease.self_fenced", assignment_id=str(assignment_id))
                self._owner.spawn(self._stop(a, "lease expired on the node: self-fenced"))
            send = self._send
            if send is not None:
                due = self.leases.due_for_renewal(now)
                # The watchdog never waits for the network: a send into a stalled connection can
                # block for as long as the socket takes to die, and deadlines must not slip.
                # While one renewal is still being written the next ones are skipped (the
                # connection is stuck; renewals are idempotent and the next round retries).
                if due and (self._renewing is None or self._renewing.done()):
                    self._renewing = self._owner.spawn(_renew_leases(send, due))
            wake = self.leases.next_wakeup(renewing=self._send is not None)
            timeout = None if wake is None else max(0.0, wake - self.clock.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


async def _renew_leases(send: Send, due: list[UUID]) -> None:
    for start in range(0, len(due), MAX_ASSIGNMENT_IDS):
        with contextlib.suppress(Exception):
            await send(LeaseRenew(assignment_ids=due[start : start + MAX_ASSIGNMENT_IDS]))


def _required(value: UUID | None) -> UUID:
    if value is None:
        raise AssignmentError("the assignment has no local task")
    return value
