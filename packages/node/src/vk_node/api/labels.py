"""``/api/labels`` (global or per project) and ``/api/tasks/{id}/labels``."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from vk_node.api.deps import Db
from vk_node.api.types import Color, Name
from vk_node.errors import NotFound
from vk_node.services import labels as service
from vk_node.store.models import Label
from vk_node.store.repositories import labels as labels_repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.openapi import answers

__all__ = ["LabelController", "TaskLabelController"]


class LabelCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    project_id: UUID | None = None
    """``null`` = a global label."""
    icon: Name = "tag"
    color: Color = "#6b7280"


class LabelUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    icon: Name | msgspec.UnsetType = msgspec.UNSET
    color: Color | msgspec.UnsetType = msgspec.UNSET


class TaskLabels(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    label_ids: Annotated[list[UUID], msgspec.Meta(max_length=256)]


class LabelController(Controller):
    path = "/labels"
    tags: list[str] | None = ["labels"]

    @get(
        "/",
        summary="Global labels, plus a project's own when project_id is given",
        opt=answers(404),
    )
    async def list_labels(
        self, store: Db, project_id: FromQuery[UUID | None] = None
    ) -> list[Label]:
        async with store.read() as conn:
            if project_id is None:
                return await labels_repo.find_global(conn)
            await projects_repo.get(conn, project_id)
            return await labels_repo.find_for_project(conn, project_id)

    @post("/", summary="Create a label", opt=answers(404, 409))
    async def create(self, store: Db, data: JSONBody[LabelCreate]) -> Label:
        async with store.transaction() as conn:
            if data.project_id is not None:
                await projects_repo.get(conn, data.project_id)
            return await labels_repo.create(
                conn,
                uuid4(),
                name=data.name,
                project_id=data.project_id,
                icon=data.icon,
                color=data.color,
            )

    @get("/{label_id:uuid}", summary="One label")
    async def get_label(self, store: Db, label_id: FromPath[UUID]) -> Label:
        return await service.get_label(store, label_id)

    @patch("/{label_id:uuid}", summary="Rename or restyle a label", opt=answers(409))
    async def update(
        self, store: Db, label_id: FromPath[UUID], data: JSONBody[LabelUpdate]
    ) -> Label:
        async with store.transaction() as conn:
            current = await labels_repo.find_by_id(conn, label_id)
            if current is None:
                raise NotFound(f"label {label_id} not found")
            return await labels_repo.update(
                conn,
                label_id,
                name=current.name if data.name is msgspec.UNSET else data.name,
                icon=current.icon if data.icon is msgspec.UNSET else data.icon,
                color=current.color if data.color is msgspec.UNSET else data.color,
            )

    @delete("/{label_id:uuid}", summary="Delete a label (detaches it from its tasks)")
    async def remove(self, store: Db, label_id: FromPath[UUID]) -> None:
        async with store.transaction() as conn:
            if not await labels_repo.delete(conn, label_id):
                raise NotFound(f"label {label_id} not found")


class TaskLabelController(Controller):
    path = "/tasks/{task_id:uuid}/labels"
    tags: list[str] | None = ["labels"]

    @get("/", summary="Labels of a task")
    async def list_task_labels(self, store: Db, task_id: FromPath[UUID]) -> list[Label]:
        async with store.read() as conn:
            await tasks_repo.get(conn, task_id)
            return await labels_repo.find_by_task_id(conn, task_id)

    @put("/", summary="Replace the labels of a task", opt=answers(422))
    async def set_labels(
        self, store: Db, task_id: FromPath[UUID], data: JSONBody[TaskLabels]
    ) -> list[Label]:
        """422 when a label does not exist or belongs to another project."""
        return await service.set_task_labels(store, task_id, data.label_ids)
