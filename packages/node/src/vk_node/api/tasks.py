"""``/api/tasks``: task CRUD, status changes, archive, subtasks."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK

from vk_node.api.deps import Ctx, Db
from vk_node.api.types import Description, Title, given_fields
from vk_node.services import images
from vk_node.services import tasks as service
from vk_node.store.models import Task, TaskWithAttemptStatus
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.openapi import answers
from vk_shared.status import NodeTaskStatus

__all__ = ["TaskController"]


class TaskCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    project_id: UUID
    title: Title
    description: Description | None = None
    parent_task_id: UUID | None = None
    image_ids: Annotated[list[UUID], msgspec.Meta(max_length=64)] = []
    """Uploaded images (``POST /api/images``) to attach to the new task."""


class TaskUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    status: NodeTaskStatus | msgspec.UnsetType = msgspec.UNSET
    """Node spelling: ``todo``, ``inprogress``, ``inreview``, ``done``, ``cancelled``."""
    parent_task_id: UUID | msgspec.UnsetType | None = msgspec.UNSET


class TaskController(Controller):
    path = "/tasks"
    tags: list[str] | None = ["tasks"]

    @post("/", summary="Create a task (optionally a subtask)", opt=answers(404, 422))
    async def create(self, store: Db, data: JSONBody[TaskCreate]) -> Task:
        """404 when the project does not exist; 422 when the parent is unknown or in another
        project, or an image is unknown (then nothing is created). For a linked project the
        write and its outbox op commit together."""
        await images.require_existing(store, data.image_ids)
        task = await service.create_task(
            store,
            project_id=data.project_id,
            title=data.title,
            description=data.description,
            parent_task_id=data.parent_task_id,
        )
        if data.image_ids:
            await images.attach(store, task.id, data.image_ids)
        return task

    @get("/", summary="Tasks of a project, most recent activity first", opt=answers(404))
    async def list_tasks(
        self, store: Db, project_id: FromQuery[UUID], include_archived: FromQuery[bool] = False
    ) -> list[TaskWithAttemptStatus]:
        async with store.read() as conn:
            await projects_repo.get(conn, project_id)
            return await tasks_repo.find_by_project_id_with_attempt_status(
                conn, project_id, include_archived=include_archived
            )

    @get("/{task_id:uuid}", summary="One task")
    async def get_task(self, store: Db, task_id: FromPath[UUID]) -> Task:
        async with store.read() as conn:
            return await tasks_repo.get(conn, task_id)

    @patch("/{task_id:uuid}", summary="Edit a task or change its status", opt=answers(409, 422))
    async def update(self, store: Db, task_id: FromPath[UUID], data: JSONBody[TaskUpdate]) -> Task:
        """409 for a status change the local user may not make (see DESIGN.md §5)."""
        changes = service.TaskChanges(**given_fields(data))
        return await service.update_task(store, task_id, changes)

    @delete(
        "/{task_id:uuid}", summary="Delete a task; its subtasks become top-level", opt=answers(409)
    )
    async def remove(self, ctx: Ctx, task_id: FromPath[UUID]) -> None:
        """409 while the task has a running attempt; its worktrees are removed first, its images
        after it when no other task uses them."""
        await service.check_not_running(ctx.store, task_id, "deleting")
        await ctx.executor.remove_task_worktrees(task_id)
        attached = await images.task_images(ctx.store, task_id)
        await service.delete_task(ctx.store, task_id)
        await images.delete_unused(ctx.store, ctx.settings.images_dir, [i.id for i in attached])

    @post(
        "/{task_id:uuid}/archive",
        status_code=HTTP_200_OK,
        summary="Archive with subtasks",
        opt=answers(409),
    )
    async def archive(self, ctx: Ctx, task_id: FromPath[UUID]) -> Task:
        """409 while a task of the subtree runs; the archived tasks' worktrees are removed."""
        task, archived = await service.archive_task(ctx.store, task_id)
        for archived_id in archived:
            await ctx.executor.remove_task_worktrees(archived_id)
        return task

    @post(
        "/{task_id:uuid}/unarchive",
        status_code=HTTP_200_OK,
        summary="Unarchive a task",
        opt=answers(409),
    )
    async def unarchive(self, store: Db, task_id: FromPath[UUID]) -> Task:
        return await service.unarchive_task(store, task_id)

    @get("/{task_id:uuid}/children", summary="Subtasks of a task, newest first")
    async def children(self, store: Db, task_id: FromPath[UUID]) -> list[Task]:
        async with store.read() as conn:
            await tasks_repo.get(conn, task_id)
            return await tasks_repo.find_children_by_parent_id(conn, task_id)
