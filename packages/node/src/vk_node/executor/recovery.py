"""Crash recovery at startup (spec §7, DESIGN.md §7): rows left ``running`` by an earlier node
process are fenced, resumed or failed — each exactly once.

A recorded pid is only trusted together with its recorded start time: a live pid whose start time
differs belongs to someone else now (pid reuse) and is never signalled.
"""

from __future__ import annotations

import asyncio
import enum
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

from vk_node.executor import procfs
from vk_node.executor.actions import AgentFollowUp, AgentInitial, decode_action
from vk_node.executor.profiles import UnknownExecutor, get_profile
from vk_node.store.models import ExecutionProcess
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.status import NodeTaskStatus

if TYPE_CHECKING:
    from uuid import UUID

    import aiosqlite

    from vk_node.executor.actions import ExecutorProfileId
    from vk_node.executor.git import GitRunner
    from vk_node.settings import NodeSettings
    from vk_node.store import Store

__all__ = ["Fence", "Recoverable", "fence", "recover"]

log = structlog.get_logger("vk_node.executor.recovery")

_POLL_S = 0.05
_KILL_WAIT_S = 2.0
_WARN_FENCE_ATTEMPTS = 5


class Recoverable(Protocol):
    """What recovery needs of the executor (:class:`vk_node.executor.service.ExecutorService`),
    named by its shape so the executor can import recovery without a cycle."""

    store: Store
    settings: NodeSettings
    instance_id: str
    git: GitRunner

    async def resume(
        self, attempt_id: UUID, session_id: str, profile: ExecutorProfileId
    ) -> None: ...

    async def fire_executor_finish(self, conn: aiosqlite.Connection, process_id: UUID) -> int: ...

    def webhooks_written(self, count: int) -> None: ...


class Fence(enum.Enum):
    ALREADY_GONE = "already_gone"
    FENCED = "fenced"
    NOT_OUR_PROCESS = "not_our_process"
    COULD_NOT_KILL = "could_not_kill"


async def _wait_dead(pid: int, start_ticks: int, within_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        stat = procfs.read_stat(pid)
        if stat is None or stat.state in ("Z", "X") or stat.start_ticks != start_ticks:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)


async def fence(pid: int | None, start_ticks: int | None, grace_s: float) -> Fence:
    """Make sure the recorded process is dead, killing it (and its group) only when pid AND
    start time match."""
    if pid is None:
        return Fence.ALREADY_GONE
    stat = procfs.read_stat(pid)
    if stat is None or stat.state in ("Z", "X"):
        return Fence.ALREADY_GONE
    if start_ticks is None or stat.start_ticks != start_ticks:
        return Fence.NOT_OUR_PROCESS
    group = stat.pgid == pid  # our runs are session (and group) leaders
    tree = procfs.descendants(pid)
    if group:
        procfs.signal_group(pid, signal.SIGTERM)
    procfs.signal_pids([stat, *tree], signal.SIGTERM)
    if not await _wait_dead(pid, start_ticks, grace_s):
        tree += procfs.descendants(pid)
        if group:
            procfs.signal_group(pid, signal.SIGKILL)
        procfs.signal_pids([stat, *tree], signal.SIGKILL)
        if not await _wait_dead(pid, start_ticks, _KILL_WAIT_S):
            return Fence.COULD_NOT_KILL
    procfs.signal_pids(tree, signal.SIGKILL)  # children that outlived the leader
    return Fence.FENCED


async def recover(service: Recoverable) -> dict[str, int]:
    """Handle every ``running`` row of other node instances; returns counts per outcome."""
    store = service.store
    counts: dict[str, int] = {}
    async with store.read() as conn:
        rows = [
            r
            for r in await processes_repo.find_running(conn)
            if r.server_instance_id != service.instance_id
        ]
    for row in rows:
        outcome = await _recover_one(service, row)
        counts[outcome] = counts.get(outcome, 0) + 1
    async with store.transaction() as conn:
        orphaned = await processes_repo.mark_orphaned_as_failed(conn, service.instance_id)
    if orphaned:
        counts["orphaned"] = orphaned
    if counts:
        log.info("recovery.done", **counts)
    return counts


async def _recover_one(service: Recoverable, row: ExecutionProcess) -> str:
    result = await fence(row.pid, row.pid_start_ticks, service.settings.stop_grace_s)
    if result is Fence.COULD_NOT_KILL:
        async with service.store.transaction() as conn:
            await processes_repo.set_resume_state(conn, row.id, "pending")
            count = await processes_repo.increment_fence_attempt_count(conn, row.id)
        level = log.warning if count >= _WARN_FENCE_ATTEMPTS else log.info
        level("recovery.could_not_kill", process_id=str(row.id), pid=row.pid, attempts=count)
        return "could_not_kill"
    if result is Fence.NOT_OUR_PROCESS:
        log.warning("recovery.pid_reused", process_id=str(row.id), pid=row.pid)
        await _mark_failed(service, row, "its pid now belongs to another process; left alone")
        return "pid_reused"
    action = decode_action(row.executor_action) if row.run_reason == "codingagent" else None
    if action is not None and isinstance(action.typ, AgentInitial | AgentFollowUp):
        async with service.store.read() as conn:
            session = await processes_repo.find_latest_session_id_by_task_attempt(
                conn, row.task_attempt_id
            )
        try:
            keeps = get_profile(action.typ.executor_profile_id.executor).keeps_context
        except UnknownExecutor:
            keeps = False
        if session and keeps:
            await _mark_failed(
                service, row, "interrupted by a node restart; resumed in a new run", resumed=True
            )
            try:
                await service.resume(row.task_attempt_id, session, action.typ.executor_profile_id)
            except Exception:
                log.exception("recovery.resume_failed", process_id=str(row.id))
                await _finalize_task(service, row)
                return "abandoned"
            log.info("recovery.resumed", process_id=str(row.id), session_id=session)
            return "resumed"
    await _mark_failed(service, row, "interrupted by a node restart")
    log.info("recovery.failed", process_id=str(row.id), fence=result.value)
    return str(result.value)


async def _mark_failed(
    service: Recoverable, row: ExecutionProcess, message: str, *, resumed: bool = False
) -> None:
    head: str | None = None
    async with service.store.read() as conn:
        attempt = await attempts_repo.get(conn, row.task_attempt_id)
    worktree = Path(attempt.container_ref) if attempt.container_ref else None
    if worktree is not None and await asyncio.to_thread(worktree.is_dir):
        head = await service.git.head(worktree)
    async with service.store.transaction() as conn:
        await processes_repo.set_resume_state(conn, row.id, "resumed" if resumed else "abandoned")
        await processes_repo.update_completion(
            conn, row.id, status="failed", completion_reason="eof", completion_message=message
        )
        if head is not None:
            await processes_repo.update_after_head_commit(conn, row.id, head)
        if not resumed and row.run_reason != "devserver":
            task = await tasks_repo.get(conn, attempt.task_id)
            if task.status == NodeTaskStatus.INPROGRESS:
                await tasks_repo.update_status(conn, task.id, NodeTaskStatus.INREVIEW)
        # A resumed run fires when its continuation ends; an abandoned one ends here.
        fired = 0 if resumed else await service.fire_executor_finish(conn, row.id)
    service.webhooks_written(fired)


async def _finalize_task(service: Recoverable, row: ExecutionProcess) -> None:
    async with service.store.transaction() as conn:
        attempt = await attempts_repo.get(conn, row.task_attempt_id)
        task = await tasks_repo.get(conn, attempt.task_id)
        if task.status == NodeTaskStatus.INPROGRESS:
            await tasks_repo.update_status(conn, task.id, NodeTaskStatus.INREVIEW)
