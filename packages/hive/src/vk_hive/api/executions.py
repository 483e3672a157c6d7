"""Runs mirrored from nodes: ``GET /v1/tasks/{task_id}/executions`` (a task's attempts and their
execution processes, runs a node started by itself included), ``GET /v1/tasks/{task_id}/progress``
(the milestones nodes reported, oldest first, cursor paging) and
``GET /v1/execution-processes/{id}/logs`` (a process's output, id-cursor paging)."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import msgspec
from litestar import Controller, get
from litestar.params import FromPath

from vk_hive.api.deps import Auth, Ctx
from vk_hive.api.types import Cursor, PageLimit
from vk_hive.auth.principal import Principal
from vk_hive.errors import NotFound
from vk_hive.store.db import Database
from vk_hive.store.models import ExecutionProcess, OutputLog, TaskAttempt, TaskProgressEvent
from vk_hive.store.repositories import executions, progress
from vk_hive.tenancy import repository as tenancy_repo
from vk_shared.openapi import answers

__all__ = [
    "AttemptRuns",
    "ExecutionProcessController",
    "ProcessLogPage",
    "ProgressPage",
    "task_progress",
    "task_runs",
]


class ProcessRun(msgspec.Struct, frozen=True):
    """One execution process of an attempt (a run of the executor, a setup script, ...)."""

    id: uuid.UUID
    attempt_id: uuid.UUID
    node_id: uuid.UUID
    run_reason: str
    status: str
    exit_code: int | None
    dropped: bool
    before_head_commit: str | None
    after_head_commit: str | None
    started_at: dt.datetime
    completed_at: dt.datetime | None
    created_at: dt.datetime


class AttemptRuns(msgspec.Struct, frozen=True):
    """A node's attempt at the task (with or without a hive assignment) and its processes."""

    id: uuid.UUID
    assignment_id: uuid.UUID | None
    node_id: uuid.UUID
    executor: str
    executor_variant: str | None
    branch: str
    target_branch: str
    worktree_deleted: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    processes: list[ProcessRun]


class ProcessLogPage(msgspec.Struct, frozen=True):
    execution_process_id: uuid.UUID
    logs: list[OutputLog]
    next_after_id: int


class ProgressPage(msgspec.Struct, frozen=True):
    """Progress events of a task across nodes, oldest first; ``next_after``: pass it as
    ``after`` for the next page (null: this page was the last)."""

    events: list[TaskProgressEvent]
    next_after: int | None


async def task_progress(
    conn: asyncpg.Connection, task_id: uuid.UUID, after: int, limit: int
) -> ProgressPage:
    """One page of the task's progress events (``after``: 0 = from the start; the handler's
    parameter types bound both)."""
    rows = await progress.list_task_progress(conn, task_id, after=after or None, limit=limit + 1)
    more = len(rows) > limit
    events = rows[:limit]
    return ProgressPage(events=events, next_after=events[-1].id if more else None)


def _process(p: ExecutionProcess) -> ProcessRun:
    return ProcessRun(
        id=p.id,
        attempt_id=p.attempt_id,
        node_id=p.node_id,
        run_reason=p.run_reason,
        status=p.status,
        exit_code=p.exit_code,
        dropped=p.dropped,
        before_head_commit=p.before_head_commit,
        after_head_commit=p.after_head_commit,
        started_at=p.started_at,
        completed_at=p.completed_at,
        created_at=p.created_at,
    )


def _attempt(a: TaskAttempt, processes: list[ProcessRun]) -> AttemptRuns:
    return AttemptRuns(
        id=a.id,
        assignment_id=a.assignment_id,
        node_id=a.node_id,
        executor=a.executor,
        executor_variant=a.executor_variant,
        branch=a.branch,
        target_branch=a.target_branch,
        worktree_deleted=a.worktree_deleted,
        created_at=a.created_at,
        updated_at=a.updated_at,
        processes=processes,
    )


async def task_runs(conn: asyncpg.Connection, task_id: uuid.UUID) -> list[AttemptRuns]:
    """The task's attempts, newest first, each with its processes in start order."""
    attempts = await executions.find_attempts_by_shared_task_id(conn, task_id)
    processes = await executions.find_processes_by_attempt_ids(conn, [a.id for a in attempts])
    by_attempt: dict[uuid.UUID, list[ProcessRun]] = {a.id: [] for a in attempts}
    for p in processes:
        by_attempt[p.attempt_id].append(_process(p))
    return [_attempt(a, by_attempt[a.id]) for a in attempts]


async def _process_of_member(db: Database, process_id: uuid.UUID, principal: Principal) -> None:
    """404 unless the process exists and its node's organization has the caller as a member
    (the same answer either way: no oracle of other organizations' ids)."""
    async with db.acquire() as conn:
        org = await executions.organization_of_process(conn, process_id)
        role = None if org is None else await tenancy_repo.get_role(conn, org, principal.user_id)
    if role is None:
        raise NotFound("execution process not found")


class ExecutionProcessController(Controller):
    path = "/execution-processes"
    tags = ["tasks"]

    @get(
        "/{execution_process_id:uuid}/logs",
        summary="Output logs of an execution process (id-cursor paging)",
        opt=answers(404),
    )
    async def logs(
        self,
        ctx: Ctx,
        principal: Auth,
        execution_process_id: FromPath[uuid.UUID],
        after_id: Cursor = 0,
        limit: PageLimit = 100,
    ) -> ProcessLogPage:
        await _process_of_member(ctx.database, execution_process_id, principal)
        async with ctx.database.acquire() as conn:
            rows = await executions.list_logs(
                conn, execution_process_id=execution_process_id, after_id=after_id, limit=limit
            )
        return ProcessLogPage(
            execution_process_id=execution_process_id,
            logs=rows,
            next_after_id=rows[-1].id if rows else after_id,
        )
