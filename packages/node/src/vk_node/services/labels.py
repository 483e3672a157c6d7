"""Label rules: a label is global or belongs to one project; a task may only carry global labels
and labels of its own project."""

from __future__ import annotations

from uuid import UUID

from vk_node.errors import NotFound, Unprocessable
from vk_node.store import Store
from vk_node.store.models import Label
from vk_node.store.repositories import labels as labels_repo
from vk_node.store.repositories import tasks as tasks_repo

__all__ = ["set_task_labels"]


async def set_task_labels(store: Store, task_id: UUID, label_ids: list[UUID]) -> list[Label]:
    """Replace the task's labels; 422 naming the first label that does not fit."""
    async with store.transaction() as conn:
        task = await tasks_repo.get(conn, task_id)
        for label_id in label_ids:
            label = await labels_repo.find_by_id(conn, label_id)
            if label is None:
                raise Unprocessable(f"label {label_id} not found")
            if label.project_id not in (None, task.project_id):
                raise Unprocessable(f"label {label_id} belongs to another project")
        return await labels_repo.set_task_labels(conn, task_id, label_ids)


async def get_label(store: Store, label_id: UUID) -> Label:
    async with store.read() as conn:
        label = await labels_repo.find_by_id(conn, label_id)
    if label is None:
        raise NotFound(f"label {label_id} not found")
    return label
