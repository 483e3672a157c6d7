"""``/api/task-attempts`` and ``/api/execution-processes``: attempts, their processes and logs."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from vk_node.api.deps import Ctx, Db
from vk_node.api.types import BranchName, ExecutorName
from vk_node.errors import NotImplementedYet
from vk_node.services import attempts as service
from vk_node.store.models import ExecutionProcess, LogPage, TaskAttempt
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import log_entries as logs_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.wire.common import INT64_MAX

__all__ = ["AttemptController", "ExecutionProcessController"]


class AttemptCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    task_id: UUID
    executor: ExecutorName
    """Executor profile, e.g. ``SCRIPT`` or ``CLAUDE_CODE``."""
    base_branch: BranchName
    """Existing branch of the project's repository the attempt starts from."""


class AttemptController(Controller):
    path = "/task-attempts"
    tags: list[str] | None = ["attempts"]

    @post("/", status_code=HTTP_202_ACCEPTED, summary="Record a new attempt of a task")
    async def create(self, ctx: Ctx, store: Db, data: JSONBody[AttemptCreate]) -> TaskAttempt:
        """Records the attempt (branch name chosen, outbox op queued for a linked project) and
        answers 202: the run itself is started by the executor, which this version does not
        include yet. 422 for an unknown/disabled executor or a missing base branch."""
        return await service.create_attempt(
            store,
            ctx.settings,
            task_id=data.task_id,
            executor=data.executor,
            base_branch=data.base_branch,
        )

    @get("/", summary="Attempts of a task, newest first")
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

    @post("/{attempt_id:uuid}/stop", status_code=HTTP_200_OK, summary="Stop a running attempt")
    async def stop(self, store: Db, attempt_id: FromPath[UUID]) -> TaskAttempt:
        """A no-op for an attempt with nothing running; 501 while one of its processes runs
        (process control is not in this version)."""
        return await service.stop_attempt(store, attempt_id)

    @post("/{attempt_id:uuid}/merge", status_code=HTTP_200_OK, summary="Merge an attempt")
    async def merge(self, store: Db, attempt_id: FromPath[UUID]) -> TaskAttempt:
        """501: merging an attempt's branch is not in this version (404 for an unknown id)."""
        async with store.read() as conn:
            await attempts_repo.get(conn, attempt_id)
        raise NotImplementedYet("merging an attempt is not available in this version")


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
