"""``/api/tasks/{id}/variables``: a task's own variables and the resolved view (system variables,
then those inherited from ancestors, then its own; the nearest definition wins)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from vk_node.api.deps import Db
from vk_node.api.types import Text, VariableName
from vk_node.errors import NotFound
from vk_node.store.models import TaskVariable
from vk_node.store.repositories import task_variables as variables_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.openapi import answers

__all__ = ["TaskVariableController"]


class VariableCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: VariableName
    """``[A-Z][A-Z0-9_]*``; used as ``$NAME`` / ``${NAME}`` in prompts and scripts."""
    value: Text


class VariableUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: VariableName | msgspec.UnsetType = msgspec.UNSET
    value: Text | msgspec.UnsetType = msgspec.UNSET


class ResolvedVariable(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    value: str
    source: Literal["system", "inherited", "task"]


class TaskVariableController(Controller):
    path = "/tasks/{task_id:uuid}/variables"
    tags: list[str] | None = ["variables"]

    @get("/", summary="Variables defined on the task itself")
    async def list_variables(self, store: Db, task_id: FromPath[UUID]) -> list[TaskVariable]:
        async with store.read() as conn:
            await tasks_repo.get(conn, task_id)
            return await variables_repo.find_by_task_id(conn, task_id)

    @get("/resolved", summary="Every variable visible to the task, with where it comes from")
    async def resolved(self, store: Db, task_id: FromPath[UUID]) -> list[ResolvedVariable]:
        async with store.read() as conn:
            await tasks_repo.get(conn, task_id)
            system = await variables_repo.system_variables(conn, task_id)
            inherited = await variables_repo.find_inherited(conn, task_id)
            own = {v.name for v in await variables_repo.find_by_task_id(conn, task_id)}
        merged = {**system, **inherited}
        return [
            ResolvedVariable(
                name=name,
                value=value,
                source="task" if name in own else "inherited" if name in inherited else "system",
            )
            for name, value in sorted(merged.items())
        ]

    @post("/", summary="Define a variable on the task", opt=answers(409))
    async def create(
        self, store: Db, task_id: FromPath[UUID], data: JSONBody[VariableCreate]
    ) -> TaskVariable:
        """409 when the task already defines that name."""
        async with store.transaction() as conn:
            await tasks_repo.get(conn, task_id)
            return await variables_repo.create(conn, task_id, data.name, data.value)

    @patch("/{variable_id:uuid}", summary="Rename or change a variable", opt=answers(409))
    async def update(
        self,
        store: Db,
        task_id: FromPath[UUID],
        variable_id: FromPath[UUID],
        data: JSONBody[VariableUpdate],
    ) -> TaskVariable:
        async with store.transaction() as conn:
            current = await variables_repo.find_by_id(conn, variable_id)
            if current is None or current.task_id != task_id:
                raise NotFound(f"variable {variable_id} not found on task {task_id}")
            return await variables_repo.update(
                conn,
                variable_id,
                name=current.name if data.name is msgspec.UNSET else data.name,
                value=current.value if data.value is msgspec.UNSET else data.value,
            )

    @delete("/{variable_id:uuid}", summary="Delete a variable")
    async def remove(self, store: Db, task_id: FromPath[UUID], variable_id: FromPath[UUID]) -> None:
        async with store.transaction() as conn:
            current = await variables_repo.find_by_id(conn, variable_id)
            if current is None or current.task_id != task_id:
                raise NotFound(f"variable {variable_id} not found on task {task_id}")
            await variables_repo.delete(conn, variable_id)
