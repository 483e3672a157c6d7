"""Shared tasks: ``/v1/tasks``."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from vk_hive.api.access import Membership, member_of_entity
from vk_hive.api.deps import Auth, Ctx
from vk_hive.api.dispatch import create_dispatched, dispatch_task, notify_assignment
from vk_hive.api.executions import AttemptRuns, ProgressPage, task_progress, task_runs
from vk_hive.api.types import Cursor, PageLimit, Version, VersionQuery
from vk_hive.auth.principal import Principal
from vk_hive.errors import Forbidden, NotFound
from vk_hive.store.models import (
    Assignment,
    Label,
    OutputLog,
    SharedTask,
    SharedTaskWithUser,
    UserData,
)
from vk_hive.store.repositories import (
    assignments,
    executions,
    labels,
    shared_tasks,
    swarm_projects,
)
from vk_hive.store.repositories.shared_tasks import KEEP, Keep, NewTask
from vk_shared.openapi import answers
from vk_shared.status import TaskStatus
from vk_shared.wire.common import Description, ExecutorName, Title

__all__ = ["TaskController"]


class TaskIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    project_id: uuid.UUID
    title: Title
    description: Description | None = None
    executor: ExecutorName = "CLAUDE_CODE"
    start_attempt: bool = False
    node_id: uuid.UUID | None = None


class TaskPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: Version | None = None
    title: Title | None = None
    description: Description | None = None
    status: TaskStatus | None = None
    archived: bool | None = None


class ArchiveIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    archived: bool = True
    version: Version | None = None


class AssignIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    node_id: uuid.UUID | None = None


class TaskCreated(msgspec.Struct, frozen=True):
    task: SharedTask
    user: UserData | None = None
    assignment: Assignment | None = None
    dispatch_error: str | None = None


class LogPage(msgspec.Struct, frozen=True):
    assignment_id: uuid.UUID | None
    logs: list[OutputLog]
    next_after: int


async def _task_access(
    conn: asyncpg.Connection, task_id: uuid.UUID, principal: Principal
) -> tuple[SharedTask, Membership]:
    membership = await member_of_entity(
        conn, shared_tasks.organization_id, task_id, principal, "task"
    )
    task = await shared_tasks.find_by_id(conn, task_id)
    if task is None:
        raise NotFound("task not found")
    return task, membership


def _may_modify(task: SharedTask, membership: Membership, principal: Principal) -> None:
    """Update/delete: the assignee or an org admin (an unassigned task: any member)."""
    if membership.is_admin or task.assignee_user_id in (None, principal.user_id):
        return
    raise Forbidden("only the assignee or an organization admin may change this task")


def _created(
    result: SharedTaskWithUser, assignment: Assignment | None, err: str | None
) -> TaskCreated:
    return TaskCreated(
        task=result.task, user=result.user, assignment=assignment, dispatch_error=err
    )


class TaskController(Controller):
    path = "/tasks"
    tags = ["tasks"]

    @post(
        "/",
        summary="Create a task (optionally dispatch it at once)",
        status_code=HTTP_201_CREATED,
        opt=answers(403, 404, 409, 422),
    )
    async def create(self, ctx: Ctx, principal: Auth, data: JSONBody[TaskIn]) -> TaskCreated:
        assignment: Assignment | None = None
        error: str | None = None
        async with ctx.database.transaction() as conn:
            membership = await member_of_entity(
                conn, swarm_projects.organization_id, data.project_id, principal, "swarm project"
            )
            new = NewTask(
                organization_id=membership.org_id,
                swarm_project_id=data.project_id,
                title=data.title,
                description=data.description,
                executor=data.executor,
                creator_user_id=principal.user_id,
                assignee_user_id=principal.user_id,
            )
            if data.start_attempt:
                created, assignment, error = await create_dispatched(
                    conn, ctx.settings, new, data.node_id
                )
            else:
                created = await shared_tasks.create(conn, new)
        if assignment is not None:
            await notify_assignment(ctx, assignment)
        return _created(created, assignment, error)

    @get("/", summary="Tasks of a swarm project, newest first", opt=answers(404))
    async def list_tasks(
        self, ctx: Ctx, principal: Auth, project_id: FromQuery[uuid.UUID]
    ) -> list[SharedTask]:
        async with ctx.database.acquire() as conn:
            await member_of_entity(
                conn, swarm_projects.organization_id, project_id, principal, "swarm project"
            )
            return [t.task for t in await shared_tasks.find_by_swarm_project_id(conn, project_id)]

    @get("/{task_id:uuid}", summary="One task")
    async def get_one(self, ctx: Ctx, principal: Auth, task_id: FromPath[uuid.UUID]) -> SharedTask:
        async with ctx.database.acquire() as conn:
            task, _ = await _task_access(conn, task_id, principal)
        return task

    @patch(
        "/{task_id:uuid}",
        summary="Update with optimistic version; status per the machine",
        opt=answers(409, 422),
    )
    async def update(
        self, ctx: Ctx, principal: Auth, task_id: FromPath[uuid.UUID], data: JSONBody[TaskPatch]
    ) -> SharedTask:
        archived: datetime | Keep | None = KEEP
        if data.archived is not None:
            archived = ctx.settings.wall_now() if data.archived else None
        closed: Assignment | None = None
        async with ctx.database.transaction() as conn:
            task, membership = await _task_access(conn, task_id, principal)
            _may_modify(task, membership, principal)
            result = await shared_tasks.update(
                conn,
                task_id,
                title=data.title,
                description=data.description,
                status=data.status,
                archived_at=archived,
                expected_version=data.version,
            )
            if (
                data.status in (TaskStatus.CANCELLED, TaskStatus.DONE)
                and data.status != task.status
            ):
                final = "cancelled" if data.status == TaskStatus.CANCELLED else "completed"
                closed = await assignments.complete_active_for_task(conn, task_id, final)
        if data.status == TaskStatus.CANCELLED:
            await ctx.notify_cancel(closed, "cancelled by an operator")
        return result.task

    @post(
        "/{task_id:uuid}/archive",
        summary="Archive or unarchive",
        status_code=HTTP_200_OK,
        opt=answers(409),
    )
    async def archive(
        self, ctx: Ctx, principal: Auth, task_id: FromPath[uuid.UUID], data: JSONBody[ArchiveIn]
    ) -> SharedTask:
        async with ctx.database.transaction() as conn:
            task, membership = await _task_access(conn, task_id, principal)
            _may_modify(task, membership, principal)
            result = await shared_tasks.update(
                conn,
                task_id,
                archived_at=ctx.settings.wall_now() if data.archived else None,
                expected_version=data.version,
            )
        return result.task

    @delete(
        "/{task_id:uuid}", summary="Soft delete", status_code=HTTP_204_NO_CONTENT, opt=answers(409)
    )
    async def delete_one(
        self,
        ctx: Ctx,
        principal: Auth,
        task_id: FromPath[uuid.UUID],
        version: VersionQuery = None,
    ) -> None:
        async with ctx.database.transaction() as conn:
            task, membership = await _task_access(conn, task_id, principal)
            _may_modify(task, membership, principal)
            await shared_tasks.delete_task(
                conn, task_id, principal.user_id, expected_version=version
            )
            closed = await assignments.complete_active_for_task(conn, task_id, "cancelled")
        await ctx.notify_cancel(closed, "the task was deleted")

    @post(
        "/{task_id:uuid}/assign",
        summary="Dispatch to a node (lease + fencing token)",
        status_code=HTTP_200_OK,
        opt=answers(409, 422),
    )
    async def assign(
        self, ctx: Ctx, principal: Auth, task_id: FromPath[uuid.UUID], data: JSONBody[AssignIn]
    ) -> Assignment:
        async with ctx.database.transaction() as conn:
            task, membership = await _task_access(conn, task_id, principal)
            _may_modify(task, membership, principal)
            assignment = await dispatch_task(conn, ctx.settings, task, data.node_id)
        await notify_assignment(ctx, assignment)
        return assignment

    @get("/{task_id:uuid}/assignments", summary="Assignments of the task, newest first")
    async def task_assignments(
        self, ctx: Ctx, principal: Auth, task_id: FromPath[uuid.UUID]
    ) -> list[Assignment]:
        async with ctx.database.acquire() as conn:
            await _task_access(conn, task_id, principal)
            return await assignments.list_by_task(conn, task_id)

    @get(
        "/{task_id:uuid}/executions",
        summary="Node attempts at the task and their execution processes, newest first",
    )
    async def executions(
        self, ctx: Ctx, principal: Auth, task_id: FromPath[uuid.UUID]
    ) -> list[AttemptRuns]:
        async with ctx.database.acquire() as conn:
            await _task_access(conn, task_id, principal)
            return await task_runs(conn, task_id)

    @get(
        "/{task_id:uuid}/progress",
        summary="Progress events of the task across nodes, oldest first (cursor paging)",
    )
    async def progress(
        self,
        ctx: Ctx,
        principal: Auth,
        task_id: FromPath[uuid.UUID],
        after: Cursor = 0,
        limit: PageLimit = 100,
    ) -> ProgressPage:
        async with ctx.database.acquire() as conn:
            await _task_access(conn, task_id, principal)
            return await task_progress(conn, task_id, after, limit)

    @get("/{task_id:uuid}/logs", summary="Output logs of an assignment (id-cursor paging)")
    async def logs(
        self,
        ctx: Ctx,
        principal: Auth,
        task_id: FromPath[uuid.UUID],
        assignment_id: FromQuery[uuid.UUID | None] = None,
        after: Cursor = 0,
        limit: PageLimit = 100,
    ) -> LogPage:
        async with ctx.database.acquire() as conn:
            await _task_access(conn, task_id, principal)
            if assignment_id is None:
                latest = await assignments.find_latest_by_task_id(conn, task_id)
            else:
                latest = await assignments.find_by_id(conn, assignment_id)
                if latest is None or latest.task_id != task_id:
                    raise NotFound("assignment not found")
            if latest is None:
                return LogPage(assignment_id=None, logs=[], next_after=after)
            rows = await executions.list_logs(
                conn, assignment_id=latest.id, after_id=after, limit=limit
            )
        return LogPage(
            assignment_id=latest.id, logs=rows, next_after=rows[-1].id if rows else after
        )

    @get("/{task_id:uuid}/labels", summary="Labels on the task")
    async def task_labels(
        self, ctx: Ctx, principal: Auth, task_id: FromPath[uuid.UUID]
    ) -> list[Label]:
        async with ctx.database.acquire() as conn:
            await _task_access(conn, task_id, principal)
            return await labels.find_by_task(conn, task_id)

    @post(
        "/{task_id:uuid}/labels/{label_id:uuid}",
        summary="Attach a label",
        status_code=HTTP_204_NO_CONTENT,
        opt=answers(409, 422),
    )
    async def attach_label(
        self,
        ctx: Ctx,
        principal: Auth,
        task_id: FromPath[uuid.UUID],
        label_id: FromPath[uuid.UUID],
    ) -> None:
        async with ctx.database.transaction() as conn:
            task, membership = await _task_access(conn, task_id, principal)
            label_org = await member_of_entity(
                conn, labels.organization_id, label_id, principal, "label"
            )
            if label_org.org_id != membership.org_id:
                raise NotFound("label not found")
            await labels.attach(conn, task.id, label_id)

    @delete(
        "/{task_id:uuid}/labels/{label_id:uuid}",
        summary="Detach a label",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def detach_label(
        self,
        ctx: Ctx,
        principal: Auth,
        task_id: FromPath[uuid.UUID],
        label_id: FromPath[uuid.UUID],
    ) -> None:
        async with ctx.database.transaction() as conn:
            task, _ = await _task_access(conn, task_id, principal)
            await labels.detach(conn, task.id, label_id)
