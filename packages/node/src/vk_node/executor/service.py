"""``ExecutorService``: runs attempts (spec/executor.md §3, §5, §6, §8).

One service per node, owned by the app lifespan (:meth:`ExecutorService.start` /
:meth:`ExecutorService.close`). Every background task it creates is kept in a set and cancelled
and awaited on close.

A *chain* is the sequence of runs one request starts (setup → agent → cleanup, or a follow-up →
cleanup). A chain holds one of ``max_concurrent`` slots from its first run to its finalization;
chains beyond the limit wait in FIFO order. Dev servers hold no slot and never finalize.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiosqlite
import msgspec
import structlog

from vk_node.errors import Conflict, ExecutorUnavailable, Unprocessable
from vk_node.executor import environment
from vk_node.executor.actions import (
    Action,
    AgentFollowUp,
    AgentInitial,
    ExecutorProfileId,
    ScriptRequest,
    decode_action,
    encode_action,
    run_reason_of,
)
from vk_node.executor.git import GitRunner
from vk_node.executor.process import ProcessRun, SpawnError
from vk_node.executor.profiles import available_executors, get_profile
from vk_node.executor.profiles.base import CommandSpec, OutputParser
from vk_node.executor.profiles.script import ScriptParser
from vk_node.executor.recovery import recover
from vk_node.executor.worktree import WorktreeManager
from vk_node.services import images
from vk_node.settings import NodeSettings
from vk_node.store import Store
from vk_node.store.models import Project, Task, TaskAttempt
from vk_node.store.repositories import drafts as drafts_repo
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import executor_sessions as sessions_repo
from vk_node.store.repositories import images as images_repo
from vk_node.store.repositories import log_entries as logs_repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import queued_messages as queue_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import task_variables as variables_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_node.webhooks import events as webhook_events
from vk_shared.status import NodeTaskStatus

__all__ = ["ExecutorService", "FollowUpResult", "RunResult"]

log = structlog.get_logger("vk_node.executor")

CONTINUATION_PROMPT = (
    "Your previous run was interrupted because the machine running it restarted. "
    "Continue the task from where you left off."
)
_STOP_TIMEOUT_S = 15.0


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    process_id: UUID
    status: str
    exit_code: int | None


class FollowUpResult(msgspec.Struct, frozen=True, kw_only=True):
    queued: bool
    """``True``: the attempt was busy, the message waits in its queue."""
    attempt: TaskAttempt


class _Live(msgspec.Struct, kw_only=True):
    run: ProcessRun
    attempt_id: UUID
    run_reason: str


class _Chain:
    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.holding_slot = False
        self.stopping = False


class _Ctx(msgspec.Struct, frozen=True, kw_only=True):
    attempt: TaskAttempt
    task: Task
    project: Project


class ExecutorService:
    def __init__(
        self,
        store: Store,
        settings: NodeSettings,
        *,
        instance_id: str | None = None,
        on_webhooks: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._on_webhooks = on_webhooks
        """Called after a commit that wrote webhook deliveries (wakes the delivery worker)."""
        self.instance_id = instance_id or uuid4().hex
        """This node process's ``server_instance_id`` (recorded on every process row)."""
        self.git = GitRunner(settings.git_timeout_s)
        self.worktrees = WorktreeManager(store, settings, self.git)
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._live: dict[UUID, _Live] = {}
        self._chains: dict[UUID, _Chain] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._log_waiters: dict[UUID, asyncio.Event] = {}
        self._closing = False
        self._lines_of_ended_runs = 0
        self._sweeper_task: asyncio.Task[Any] | None = None
        self.ready = asyncio.Event()
        """Set once startup recovery has finished."""

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start crash recovery, the boot drain and the worktree sweeper in the background."""
        self._spawn(self._startup())
        self._sweeper_task = self._spawn(self._sweeper())

    async def _startup(self) -> None:
        try:
            if self.settings.worktree_orphan_cleanup:
                await self.worktrees.sweep_orphans()
            await recover(self)
            await self._boot_drain()
        except Exception:
            log.exception("executor.startup_failed")
        finally:
            self.ready.set()

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.settings.worktree_sweep_interval_s)
            try:
                await self.worktrees.sweep()
            except Exception:
                log.exception("worktree.sweep_failed")

    async def close(self) -> None:
        """Kill this instance's running processes (rows → ``killed``), then cancel and await
        every background task."""
        self._closing = True
        for chain in self._chains.values():
            chain.stopping = True
        await asyncio.gather(
            *(self._stop_process(pid, "the node shut down") for pid in list(self._live)),
            return_exceptions=True,
        )
        # Let runs and startup finish their bookkeeping (cancelling a task in the middle of a
        # store transaction would leave a statement running while the store closes).
        if self._sweeper_task is not None:
            self._sweeper_task.cancel()
        pending = [t for t in self._tasks if t is not self._sweeper_task]
        if pending:
            await asyncio.wait(pending, timeout=_STOP_TIMEOUT_S)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- queries ---------------------------------------------------------------------------

    def is_live(self, process_id: UUID) -> bool:
        """Whether this service is running that process right now."""
        return process_id in self._live

    def running_count(self) -> int:
        return sum(1 for live in self._live.values() if live.run_reason != "devserver")

    def log_lines_captured(self) -> int:
        """Output lines captured from runs since this service started (ended and live runs)."""
        live = sum(live.run.lines_captured for live in self._live.values())
        return self._lines_of_ended_runs + live

    async def wait_for_logs(self, process_id: UUID, within_s: float) -> None:
        """Return when new log rows of the process were committed (or after ``within_s``)."""
        event = self._log_waiters.setdefault(process_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), within_s)

    def _logs_flushed(self, process_id: UUID) -> None:
        event = self._log_waiters.pop(process_id, None)
        if event is not None:
            event.set()

    async def _context(self, attempt_id: UUID) -> _Ctx:
        async with self.store.read() as conn:
            attempt = await attempts_repo.get(conn, attempt_id)
            task = await tasks_repo.get(conn, attempt.task_id)
            project = await projects_repo.get(conn, task.project_id)
        return _Ctx(attempt=attempt, task=task, project=project)

    # --- creating and starting attempts ----------------------------------------------------

    async def create_attempt(
        self,
        *,
        task_id: UUID,
        executor: str,
        base_branch: str,
        variant: str | None = None,
        use_parent_worktree: bool = False,
        start: bool = True,
    ) -> TaskAttempt:
        """Record an attempt, create its worktree and (``start``) start its run chain.

        The executor is checked first: when this node cannot run it, nothing is recorded,
        created or run (:class:`ExecutorUnavailable`)."""
        from vk_node.executor.worktree import branch_name

        self.require_executor(executor)
        async with self.store.transaction() as conn:
            await tasks_repo.unarchive_if_archived(conn, task_id)
            task = await tasks_repo.get(conn, task_id)
            project = await projects_repo.get(conn, task.project_id)
        parent: TaskAttempt | None = None
        if use_parent_worktree:
            parent = await self._parent_attempt(task)
        elif await self.git.rev(project.git_repo_path, f"refs/heads/{base_branch}") is None:
            raise Unprocessable(
                f"base branch {base_branch!r} does not exist in {project.git_repo_path}"
            )
        attempt_id = uuid4()
        async with self.store.transaction() as conn:
            attempt = await attempts_repo.create(
                conn,
                attempt_id,
                task_id=task_id,
                executor=executor,
                base_branch=parent.target_branch if parent else base_branch,
                branch=(
                    parent.branch
                    if parent
                    else branch_name(self.settings.branch_prefix, attempt_id, task.title)
                ),
            )
            if parent is not None and parent.container_ref is not None:
                attempt = await attempts_repo.update_container_ref(
                    conn, attempt_id, parent.container_ref
                )
        if parent is None:
            await self.worktrees.create(attempt, task.title, project)
        if start:
            await self.start_attempt(attempt_id, variant=variant)
        async with self.store.read() as conn:
            return await attempts_repo.get(conn, attempt_id)

    def available(self) -> list[str]:
        """The executors this node can run now: built-in profiles enabled by
        ``VK_NODE_EXECUTORS`` and coding agents whose CLI is on the node's PATH (what it
        advertises to the hive)."""
        return available_executors(self.settings.executors, os.environ.get("PATH"))

    def require_executor(self, executor: str) -> None:
        """Raise unless ``executor`` is a known profile this node can run now.

        Called before anything of an attempt is recorded or run: an attempt naming an executor
        this node cannot run must not run its project's setup script either."""
        get_profile(executor)  # an unknown name is its own 422
        available = self.available()
        if executor not in available:
            raise ExecutorUnavailable(
                f"executor {executor} is not available on this node "
                f"(available: {', '.join(available) or 'none'}); built-in executors are enabled "
                "with VK_NODE_EXECUTORS, coding agents need their CLI on the node's PATH"
            )

    async def _parent_attempt(self, task: Task) -> TaskAttempt:
        if task.parent_task_id is None:
            raise Unprocessable("use_parent_worktree needs a task with a parent task")
        async with self.store.read() as conn:
            attempts = await attempts_repo.fetch_all_attempts(conn, task.parent_task_id)
        live = [a for a in attempts if a.container_ref and not a.worktree_deleted]
        if not live:
            raise Unprocessable("the parent task has no attempt with a worktree to reuse")
        return live[0]

    async def start_attempt(self, attempt_id: UUID, *, variant: str | None = None) -> None:
        """Build the setup → agent → cleanup chain for the attempt and start it (spec §3);
        nothing runs when this node cannot run the attempt's executor."""
        ctx = await self._context(attempt_id)
        executor = ctx.attempt.executor or "SCRIPT"
        self.require_executor(executor)
        agent = Action(
            typ=AgentInitial(
                prompt=await self._prompt(ctx.task, executor, ctx.attempt.container_ref),
                executor_profile_id=ExecutorProfileId(executor=executor, variant=variant),
            ),
            next_action=self._cleanup_action(ctx.project),
        )
        setup = (ctx.project.setup_script or "").strip()
        if not setup:
            self._launch(attempt_id, agent)
        elif ctx.project.parallel_setup_script:
            self._launch(attempt_id, agent, parallel=Action(typ=_script(setup, "SetupScript")))
        else:
            self._launch(attempt_id, Action(typ=_script(setup, "SetupScript"), next_action=agent))

    async def _prompt(self, task: Task, executor: str, worktree: str | None) -> str:
        if executor == "SCRIPT":
            # A script reads its variables from the environment ($NAME), so it is not expanded;
            # it runs in the worktree, where .vibe-images/ holds the task's images.
            return environment.script_of(task)
        async with self.store.read() as conn:
            variables = await variables_repo.resolve(conn, task.id)
            attached = await images_repo.find_by_task_id(conn, task.id)
        prompt = images.prompt_with_images(environment.task_prompt(task), worktree, attached)
        return variables_repo.expand(prompt, variables)

    @staticmethod
    def _cleanup_action(project: Project) -> Action | None:
        script = (project.cleanup_script or "").strip()
        return Action(typ=_script(script, "CleanupScript")) if script else None

    # --- chains ----------------------------------------------------------------------------

    def _launch(self, attempt_id: UUID, action: Action, *, parallel: Action | None = None) -> None:
        chain = self._chains.get(attempt_id)
        if chain is not None:
            raise Conflict("the attempt is already running; stop it or send a follow-up")
        if self._closing:
            raise Conflict("the node is shutting down")
        chain = _Chain()
        self._chains[attempt_id] = chain
        chain.task = self._spawn(self._chain(attempt_id, chain, action, parallel))

    async def _chain(
        self, attempt_id: UUID, chain: _Chain, action: Action | None, parallel: Action | None
    ) -> None:
        try:
            async with self._slots:
                chain.holding_slot = True
                if parallel is not None and not chain.stopping:
                    self._spawn(self._execute_logged(attempt_id, parallel))
                while action is not None and not chain.stopping:
                    next_action: Action | None = action
                    while next_action is not None and not chain.stopping:
                        result = await self._execute(attempt_id, next_action)
                        if result is None or result.status != "completed":
                            break
                        next_action = next_action.next_action
                    await self._finalize(attempt_id)
                    action = None if chain.stopping else await self._next_queued(attempt_id)
        except Exception:
            log.exception("chain.failed", attempt_id=str(attempt_id))
            with contextlib.suppress(Exception):
                await self._finalize(attempt_id)
        finally:
            if self._chains.get(attempt_id) is chain:
                del self._chains[attempt_id]

    async def _execute_logged(self, attempt_id: UUID, action: Action) -> None:
        try:
            result = await self._execute(attempt_id, action)
            if result is not None and result.status != "completed":
                log.warning("setup.failed", attempt_id=str(attempt_id), status=result.status)
        except Exception:
            log.exception("run.failed", attempt_id=str(attempt_id))

    async def _finalize(self, attempt_id: UUID) -> None:
        """Task → ``inreview`` (when it is ``inprogress``)."""
        async with self.store.transaction() as conn:
            attempt = await attempts_repo.get(conn, attempt_id)
            task = await tasks_repo.get(conn, attempt.task_id)
            if task.status == NodeTaskStatus.INPROGRESS:
                await tasks_repo.update_status(conn, task.id, NodeTaskStatus.INREVIEW)
        log.info("attempt.finalized", attempt_id=str(attempt_id))

    async def _next_queued(self, attempt_id: UUID) -> Action | None:
        if self._closing:
            return None
        async with self.store.transaction() as conn:
            message = await queue_repo.pop_next(conn, attempt_id)
        if message is None:
            return None
        return await self._follow_up_action(attempt_id, message.content, message.variant)

    async def _follow_up_action(
        self,
        attempt_id: UUID,
        prompt: str,
        variant: str | None,
        *,
        session_id: str | None = None,
        use_latest_session: bool = True,
    ) -> Action:
        ctx = await self._context(attempt_id)
        executor = ctx.attempt.executor or "SCRIPT"
        profile = get_profile(executor)
        async with self.store.read() as conn:
            if session_id is None and use_latest_session:
                session_id = await processes_repo.find_latest_session_id_by_task_attempt(
                    conn, attempt_id
                )
            previous = await processes_repo.latest_executor_profile_for_attempt(conn, attempt_id)
            variables = await variables_repo.resolve(conn, ctx.task.id)
        if variant is None and previous is not None:
            variant = previous.get("variant")
        if executor != "SCRIPT":
            prompt = variables_repo.expand(prompt, variables)
        profile_id = ExecutorProfileId(executor=executor, variant=variant)
        same_variant = previous is None or previous.get("variant") == variant
        typ: AgentInitial | AgentFollowUp
        if session_id and profile.keeps_context and same_variant:
            typ = AgentFollowUp(
                prompt=prompt, session_id=session_id, executor_profile_id=profile_id
            )
        else:
            typ = AgentInitial(prompt=prompt, executor_profile_id=profile_id)
        return Action(typ=typ, next_action=self._cleanup_action(ctx.project))

    # --- one run ---------------------------------------------------------------------------

    async def _execute(self, attempt_id: UUID, action: Action) -> RunResult | None:
        """Run one action to its end (spec §3 ``start_execution`` + §5 exit handling)."""
        if self._closing:
            return None
        ctx = await self._context(attempt_id)
        run_reason = run_reason_of(action)
        typ = action.typ
        process_id = uuid4()
        worktree = await self.worktrees.ensure(ctx.attempt, ctx.project)
        before = await self.git.head(worktree)
        prompt = None if isinstance(typ, ScriptRequest) else typ.prompt
        async with self.store.transaction() as conn:
            task = await tasks_repo.get(conn, ctx.task.id)
            if run_reason != "devserver" and task.status != NodeTaskStatus.INPROGRESS:
                await tasks_repo.update_status(conn, task.id, NodeTaskStatus.INPROGRESS)
            await processes_repo.create(
                conn,
                process_id,
                task_attempt_id=attempt_id,
                run_reason=run_reason,
                executor_action=encode_action(action),
                before_head_commit=before,
                server_instance_id=self.instance_id,
            )
            if prompt is not None:
                await sessions_repo.create(conn, attempt_id, process_id, prompt)
        try:
            spec, parser = self._command(typ)
            async with self.store.read() as conn:
                variables = await variables_repo.resolve(conn, ctx.task.id)
            env = environment.run_environment(self.settings, variables, spec.env)
        except Exception as exc:
            return await self._spawn_failed(process_id, str(getattr(exc, "detail", exc)), False)
        run = ProcessRun(
            store=self.store,
            settings=self.settings,
            execution_id=process_id,
            spec=spec,
            cwd=worktree,
            env=env,
            parser=parser,
            on_flush=self._logs_flushed,
            record_session=prompt is not None,
        )
        self._live[process_id] = _Live(run=run, attempt_id=attempt_id, run_reason=run_reason)
        try:
            try:
                pid = await run.start()
            except SpawnError as exc:
                return await self._spawn_failed(process_id, str(exc), exc.missing_executable)
            async with self.store.transaction() as conn:
                await processes_repo.update_pid_and_start(conn, process_id, pid, run.start_ticks)
            if self._closing:  # shutdown began while this run was being spawned
                await self._stop_process(process_id, "the node shut down")
            log.info("run.started", process_id=str(process_id), pid=pid, run_reason=run_reason)
            outcome = await run.wait()
            return await self._complete(ctx, process_id, run_reason, worktree, outcome)
        finally:
            self._live.pop(process_id, None)
            self._lines_of_ended_runs += run.lines_captured
            self._logs_flushed(process_id)

    def _command(
        self, typ: ScriptRequest | AgentInitial | AgentFollowUp
    ) -> tuple[CommandSpec, OutputParser]:
        if isinstance(typ, ScriptRequest):
            return CommandSpec(argv=["bash", "-c", typ.script]), ScriptParser()
        profile_id = typ.executor_profile_id
        profile = get_profile(profile_id.executor)
        if isinstance(typ, AgentFollowUp):
            spec = profile.follow_up_command(typ.prompt, typ.session_id, variant=profile_id.variant)
        else:
            spec = profile.initial_command(typ.prompt, variant=profile_id.variant)
        return spec, profile.new_parser()

    async def _spawn_failed(self, process_id: UUID, message: str, missing: bool) -> RunResult:
        lines = [("stderr", message)]
        if missing:
            entry = {
                "entry_type": "error_message",
                "content": message,
                "metadata": {"class": "setup_required"},
            }
            lines.append(("json_patch", msgspec.json.encode(entry).decode()))
        async with self.store.transaction() as conn:
            await logs_repo.append_many(conn, process_id, lines)
            await processes_repo.update_completion(
                conn,
                process_id,
                status="failed",
                completion_reason="error",
                completion_message=message[:2000],
            )
            fired = await self.fire_executor_finish(conn, process_id)
        self.webhooks_written(fired)
        log.warning("run.spawn_failed", process_id=str(process_id), error=message)
        return RunResult(process_id=process_id, status="failed", exit_code=None)

    async def _complete(
        self, ctx: _Ctx, process_id: UUID, run_reason: str, worktree: Path, outcome: Any
    ) -> RunResult:
        code: int | None = outcome.exit_code
        success = code == 0 and not outcome.stopped
        is_script = run_reason != "codingagent" or ctx.attempt.executor == "SCRIPT"
        if outcome.result is not None:
            reason = "result_success" if outcome.result == "success" else "result_error"
        elif is_script:
            reason = "result_success" if code == 0 else "result_error"
        else:
            reason = "eof"
        commit = (success and run_reason == "codingagent") or (
            run_reason == "cleanupscript" and not outcome.stopped
        )
        if commit:
            message = outcome.summary or (
                f"{ctx.task.title}\n\nChanges of attempt {ctx.attempt.id} (vk-node)"
            )
            try:
                await self.git.commit_all(worktree, message)
            except Exception as exc:
                log.warning("run.commit_failed", process_id=str(process_id), error=str(exc))
        after = await self.git.head(worktree)
        async with self.store.transaction() as conn:
            row = await processes_repo.get(conn, process_id)
            status = row.status
            if row.status == "running":
                status = "completed" if code == 0 else "failed"
                row = await processes_repo.update_completion(
                    conn,
                    process_id,
                    status=status,
                    exit_code=code,
                    completion_reason=reason,
                )
            if after is not None:
                await processes_repo.update_after_head_commit(conn, process_id, after)
            if outcome.summary and run_reason == "codingagent":
                await sessions_repo.update_summary(conn, process_id, outcome.summary)
            if (
                status == "failed"
                and outcome.session_id
                and await logs_repo.contains_session_invalid_error(conn, process_id)
            ):
                await sessions_repo.mark_session_invalid(conn, outcome.session_id)
            if status == "completed" and run_reason == "setupscript":
                await attempts_repo.mark_setup_completed(conn, ctx.attempt.id)
            fired = await self.fire_executor_finish(conn, process_id)
        self.webhooks_written(fired)
        log.info("run.finished", process_id=str(process_id), status=status, exit_code=code)
        return RunResult(process_id=process_id, status=status, exit_code=code)

    async def fire_executor_finish(self, conn: aiosqlite.Connection, process_id: UUID) -> int:
        """Write the ``executor_finish`` webhook deliveries in the completion's transaction; a
        failure here is logged and never fails the run's bookkeeping."""
        try:
            return await webhook_events.executor_finish(
                conn, process_id, node_name=self.settings.name
            )
        except Exception:
            log.exception("webhook.fire_failed", process_id=str(process_id))
            return 0

    def webhooks_written(self, count: int) -> None:
        """After the commit of :meth:`fire_executor_finish`'s transaction: wake the worker."""
        if count and self._on_webhooks is not None:
            self._on_webhooks()

    # --- stop ------------------------------------------------------------------------------

    async def _stop_process(self, process_id: UUID, message: str = "stopped by the user") -> None:
        """Write ``killed`` first (unless the row already ended), then kill the process group."""
        live = self._live.get(process_id)
        async with self.store.transaction() as conn:
            row = await processes_repo.find_by_id(conn, process_id)
            if row is not None and row.status == "running":
                await processes_repo.update_completion(
                    conn,
                    process_id,
                    status="killed",
                    completion_reason="killed",
                    completion_message=message,
                )
        if live is not None:
            await live.run.stop()

    async def stop_attempt(
        self, attempt_id: UUID, *, include_dev_servers: bool = False
    ) -> TaskAttempt:
        """Stop every running (non dev server) process of the attempt and its chain; the task goes
        to ``inreview``. Nothing running: a no-op."""
        chain = self._chains.get(attempt_id)
        if chain is not None:
            chain.stopping = True
            if not chain.holding_slot and chain.task is not None:
                chain.task.cancel()
        targets = [
            pid
            for pid, live in self._live.items()
            if live.attempt_id == attempt_id
            and (include_dev_servers or live.run_reason != "devserver")
        ]
        await asyncio.gather(*(self._stop_process(pid) for pid in targets))
        if chain is not None and chain.task is not None:
            await asyncio.wait([chain.task], timeout=_STOP_TIMEOUT_S)
        await self._fail_foreign_running(attempt_id, include_dev_servers)
        async with self.store.read() as conn:
            return await attempts_repo.get(conn, attempt_id)

    async def _fail_foreign_running(self, attempt_id: UUID, include_dev: bool) -> None:
        """Rows still ``running`` that this service does not run (a crashed instance's): killed."""
        async with self.store.read() as conn:
            rows = await processes_repo.find_running_by_task_attempt(conn, attempt_id)
        for row in rows:
            if row.id not in self._live and (include_dev or row.run_reason != "devserver"):
                await self._stop_process(row.id)

    def has_running_chain(self, attempt_id: UUID) -> bool:
        return attempt_id in self._chains

    # --- follow-ups and retry --------------------------------------------------------------

    async def follow_up(
        self, attempt_id: UUID, prompt: str, *, variant: str | None = None
    ) -> FollowUpResult:
        """Start a follow-up run (resuming the agent's session when the profile keeps context);
        while the attempt is busy the message is queued and runs after the current chain."""
        ctx = await self._context(attempt_id)
        self.require_executor(ctx.attempt.executor or "SCRIPT")
        async with self.store.transaction() as conn:
            await tasks_repo.unarchive_if_archived(conn, ctx.task.id)
            if attempt_id in self._chains:
                await queue_repo.add(conn, attempt_id, prompt, variant)
                queued = True
            else:
                queued = False
        if not queued:
            action = await self._follow_up_action(attempt_id, prompt, variant)
            self._launch(attempt_id, action)
        async with self.store.read() as conn:
            attempt = await attempts_repo.get(conn, attempt_id)
        return FollowUpResult(queued=queued, attempt=attempt)

    async def retry(
        self,
        attempt_id: UUID,
        process_id: UUID,
        *,
        prompt: str | None = None,
        force_when_dirty: bool = False,
        perform_git_reset: bool = True,
    ) -> TaskAttempt:
        """Restart from a process: reset the worktree to where that process began, drop it and
        every later process, and run its action again (with ``prompt`` instead, if given)."""
        ctx = await self._context(attempt_id)
        self.require_executor(ctx.attempt.executor or "SCRIPT")
        async with self.store.read() as conn:
            process = await processes_repo.get(conn, process_id)
            if process.task_attempt_id != attempt_id:
                raise Unprocessable(f"process {process_id} is not part of attempt {attempt_id}")
            if process.dropped:
                raise Conflict("that process was already dropped by an earlier retry")
            target = process.before_head_commit or await processes_repo.find_prev_after_head_commit(
                conn, attempt_id, process_id
            )
            session = await processes_repo.find_session_id_before_process(
                conn, attempt_id, process_id
            )
        original = decode_action(process.executor_action)
        if original is None:
            raise Unprocessable("the process's action cannot be run again")
        await self.stop_attempt(attempt_id)
        worktree = await self.worktrees.ensure(ctx.attempt, ctx.project)
        if perform_git_reset and target is not None:
            await self.git.reset_hard(worktree, target, force_when_dirty=force_when_dirty)
        async with self.store.transaction() as conn:
            await processes_repo.drop_at_and_after(conn, attempt_id, process_id)
            await drafts_repo.delete(conn, attempt_id, "retry")
        if isinstance(original.typ, ScriptRequest):
            action = original
        else:
            action = await self._follow_up_action(
                attempt_id,
                prompt if prompt is not None else original.typ.prompt,
                original.typ.executor_profile_id.variant,
                session_id=session,
                use_latest_session=False,
            )
        self._launch(attempt_id, action)
        async with self.store.read() as conn:
            return await attempts_repo.get(conn, attempt_id)

    async def resume(self, attempt_id: UUID, session_id: str, profile: ExecutorProfileId) -> None:
        """Crash recovery: continue an interrupted agent run in a new run of the same session."""
        ctx = await self._context(attempt_id)
        action = Action(
            typ=AgentFollowUp(
                prompt=CONTINUATION_PROMPT, session_id=session_id, executor_profile_id=profile
            ),
            next_action=self._cleanup_action(ctx.project),
        )
        self._launch(attempt_id, action)

    async def _boot_drain(self) -> None:
        """Attempts with queued messages whose latest process completed: start the next one."""
        async with self.store.read() as conn:
            waiting = await queue_repo.attempts_with_messages(conn)
        for attempt_id in waiting:
            async with self.store.read() as conn:
                latest = await processes_repo.find_latest_for_attempt(conn, attempt_id)
                running = await processes_repo.find_running_by_task_attempt(conn, attempt_id)
            if running or latest is None or latest.status != "completed" or latest.resume_state:
                continue
            if attempt_id in self._chains:
                continue
            action = await self._next_queued(attempt_id)
            if action is not None:
                self._launch(attempt_id, action)

    # --- dev server ------------------------------------------------------------------------

    async def start_dev_server(self, attempt_id: UUID) -> None:
        """Stop the project's running dev servers, then start this attempt's (no slot, no
        finalization)."""
        ctx = await self._context(attempt_id)
        script = (ctx.project.dev_script or "").strip()
        if not script:
            raise Unprocessable("the project has no dev server script (dev_script)")
        async with self.store.read() as conn:
            running = await processes_repo.find_running_dev_servers_by_project(conn, ctx.project.id)
        await asyncio.gather(*(self._stop_process(row.id) for row in running))
        self._spawn(self._execute_logged(attempt_id, Action(typ=_script(script, "DevServer"))))

    async def stop_dev_servers(self, attempt_id: UUID) -> None:
        async with self.store.read() as conn:
            running = await processes_repo.find_running_dev_servers_by_task_attempt(
                conn, attempt_id
            )
        await asyncio.gather(*(self._stop_process(row.id) for row in running))

    # --- archive ---------------------------------------------------------------------------

    async def remove_task_worktrees(self, task_id: UUID) -> int:
        """Remove the worktrees of a task's attempts that run nothing (archiving a task)."""
        removed = 0
        async with self.store.read() as conn:
            attempts = await attempts_repo.fetch_all_attempts(conn, task_id)
            task = await tasks_repo.get(conn, task_id)
            project = await projects_repo.get(conn, task.project_id)
        for attempt in attempts:
            if attempt.worktree_deleted or attempt.container_ref is None:
                continue
            async with self.store.read() as conn:
                if await processes_repo.find_running_by_task_attempt(conn, attempt.id):
                    continue
            await self.worktrees.remove(attempt, project.git_repo_path)
            removed += 1
        return removed


def _script(script: str, context: str) -> ScriptRequest:
    return msgspec.convert({"script": script, "context": context}, ScriptRequest)
