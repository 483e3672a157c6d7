"""``/api/task-attempts`` and ``/api/execution-processes``: attempts, their processes and logs."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from vk_node.api.deps import Ctx, Db
from vk_node.api.types import BranchName, ExecutorName, ShortText, Text, Title
from vk_node.executor.diff import AttemptDiff
from vk_node.executor.service import FollowUpResult
from vk_node.services import attempts as service
from vk_node.store.models import ExecutionProcess, LogPage, Merge, TaskAttempt
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import log_entries as logs_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.openapi import answers
from vk_shared.wire.common import INT64_MAX

__all__ = ["AttemptController", "ExecutionProcessController"]


class AttemptCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    task_id: UUID
    executor: ExecutorName
    """Executor profile, e.g. ``SCRIPT`` or ``CLAUDE_CODE``."""
    base_branch: BranchName
    """Existing branch of the project's repository the attempt starts from."""
    variant: ShortText | None = None
    """Profile variant (model or mode) passed to the coding agent."""
    use_parent_worktree: bool = False
    """Reuse the parent task's latest attempt branch and worktree."""


class FollowUp(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    prompt: Annotated[Text, msgspec.Meta(min_length=1)]
    variant: ShortText | None = None


class Retry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    process_id: UUID
    """Run again from this process (it and every later process are dropped)."""
    prompt: Text | None = None
    """Replaces the prompt of that process's agent run."""
    force_when_dirty: bool = False
    """Discard uncommitted changes of the worktree when resetting it."""
    perform_git_reset: bool = True


class DevServer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    action: Literal["start", "stop"] = "start"


class PullRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None
    body: Text | None = None


class AttemptController(Controller):
    path = "/task-attempts"
    tags: list[str] | None = ["attempts"]

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        summary="Start a new attempt of a task",
        opt=answers(404, 409, 422),
    )
    async def create(self, ctx: Ctx, data: JSONBody[AttemptCreate]) -> TaskAttempt:
        """Records the attempt (branch, worktree) and starts its run (setup → agent → cleanup) in
        the background: 202 with the attempt. 422 for an unknown executor, one this node cannot
        run (not enabled, CLI not on PATH: nothing is recorded or run), or a missing base
        branch. Runs beyond ``VK_NODE_MAX_CONCURRENT`` wait for a free slot."""
        return await service.create_attempt(
            ctx.executor,
            task_id=data.task_id,
            executor_name=data.executor,
            base_branch=data.base_branch,
            variant=data.variant,
            use_parent_worktree=data.use_parent_worktree,
        )

    @get("/", summary="Attempts of a task, newest first", opt=answers(404))
    async def list_attempts(self, store: Db, task_id: FromQuery[UUID]) -> list[TaskAttempt]:
        async with store.read() as conn:
            await tasks_repo.get(conn, task_id)
            return await attempts_repo.fetch_all_attempts(conn, task_id)

    @get("/{attempt_id:uuid}", summary="One attempt")
    async def get_attempt(self, store: Db, attempt_id: FromPath[UUID]) -> TaskAttempt:
        async with store.read() as conn:
            return await attempts_repo.get(conn, attempt_id)

    @get("/{attempt_id:uuid}/processes", summary="Execution processes of an attempt")
    async def processes(
        self, store: Db, attempt_id: FromPath[UUID], include_dropped: FromQuery[bool] = False
    ) -> list[ExecutionProcess]:
        async with store.read() as conn:
            await attempts_repo.get(conn, attempt_id)
            return await processes_repo.find_by_task_attempt_id(
                conn, attempt_id, include_dropped=include_dropped
            )

    @get(
        "/{attempt_id:uuid}/diff",
        summary="The attempt's changes against its base branch",
        opt=answers(409, 422),
    )
    async def diff(self, ctx: Ctx, attempt_id: FromPath[UUID]) -> AttemptDiff:
        """A unified diff of everything the attempt changed — commits, uncommitted edits and
        new untracked files — against the merge base with its base branch, cut at a line
        boundary past ``limit_bytes`` (1 MiB; ``truncated`` is then true, ``diff_bytes`` gives
        the whole size and ``files`` still lists every file). 409 ``worktree_gone`` when the
        worktree or the base branch is not there any more; 422 when git fails."""
        return await service.diff(ctx.executor, attempt_id)

    @post(
        "/{attempt_id:uuid}/stop",
        status_code=HTTP_200_OK,
        summary="Stop a running attempt",
        opt=answers(409),
    )
    async def stop(self, ctx: Ctx, attempt_id: FromPath[UUID]) -> TaskAttempt:
        """Kills the attempt's running processes (SIGTERM to each process group, SIGKILL after
        the grace period); the task goes to review. A no-op when nothing runs."""
        return await service.stop_attempt(ctx.executor, attempt_id)

    @post(
        "/{attempt_id:uuid}/merge",
        status_code=HTTP_200_OK,
        summary="Merge an attempt",
        opt=answers(409, 422),
    )
    async def merge(self, ctx: Ctx, attempt_id: FromPath[UUID]) -> Merge:
        """Squash-merges the attempt branch into its target branch; the task becomes done.
        409 while it runs, on a conflict or when the target has commits the branch lacks."""
        return await service.merge(ctx.executor, attempt_id)

    @post(
        "/{attempt_id:uuid}/pr",
        status_code=HTTP_200_OK,
        summary="Open a pull request",
        opt=answers(409, 422),
    )
    async def pull_request(
        self, ctx: Ctx, attempt_id: FromPath[UUID], data: JSONBody[PullRequest]
    ) -> Merge:
        """Pushes the branch and opens a PR with the GitHub CLI; 400 when ``gh`` is missing or
        not authenticated."""
        return await service.open_pr(ctx.executor, attempt_id, data.title, data.body)

    @post(
        "/{attempt_id:uuid}/follow-up",
        status_code=HTTP_202_ACCEPTED,
        summary="Follow up",
        opt=answers(409, 422),
    )
    async def follow_up(
        self, ctx: Ctx, attempt_id: FromPath[UUID], data: JSONBody[FollowUp]
    ) -> FollowUpResult:
        """Starts a follow-up run (resuming the agent's session when it keeps context); while
        the attempt runs, the message is queued (``queued: true``) and runs afterwards."""
        return await service.follow_up(ctx.executor, attempt_id, data.prompt, data.variant)

    @post(
        "/{attempt_id:uuid}/retry",
        status_code=HTTP_202_ACCEPTED,
        summary="Retry from a run",
        opt=answers(409, 422),
    )
    async def retry(
        self, ctx: Ctx, attempt_id: FromPath[UUID], data: JSONBody[Retry]
    ) -> TaskAttempt:
        """Resets the worktree to where that process started, drops it and later processes and
        runs its action again. 409 when the worktree is dirty (unless ``force_when_dirty``)."""
        return await service.retry(
            ctx.executor,
            attempt_id,
            data.process_id,
            prompt=data.prompt,
            force_when_dirty=data.force_when_dirty,
            perform_git_reset=data.perform_git_reset,
        )

    @post(
        "/{attempt_id:uuid}/dev-server",
        status_code=HTTP_202_ACCEPTED,
        summary="Dev server",
        opt=answers(409, 422),
    )
    async def dev_server(
        self, ctx: Ctx, attempt_id: FromPath[UUID], data: JSONBody[DevServer]
    ) -> TaskAttempt:
        """``start`` (default) stops the project's other dev servers and starts this attempt's
        ``dev_script``; ``stop`` stops it."""
        if data.action == "stop":
            await service.stop_dev_server(ctx.executor, attempt_id)
        else:
            await service.start_dev_server(ctx.executor, attempt_id)
        async with ctx.store.read() as conn:
            return await attempts_repo.get(conn, attempt_id)


class ExecutionProcessController(Controller):
    path = "/execution-processes"
    tags: list[str] | None = ["attempts"]

    @get("/{process_id:uuid}", summary="One execution process")
    async def get_process(self, store: Db, process_id: FromPath[UUID]) -> ExecutionProcess:
        async with store.read() as conn:
            return await processes_repo.get(conn, process_id)

    @get("/{process_id:uuid}/logs", summary="Log entries of a process, oldest first")
    async def logs(
        self,
        store: Db,
        process_id: FromPath[UUID],
        after: Annotated[int, QueryParameter(ge=0, le=INT64_MAX)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> LogPage:
        """Entries with ``id > after``; continue with ``after=next_cursor`` while ``has_more``."""
        async with store.read() as conn:
            await processes_repo.get(conn, process_id)
            return await logs_repo.find_paginated(
                conn, process_id, cursor=after or None, limit=limit
            )
