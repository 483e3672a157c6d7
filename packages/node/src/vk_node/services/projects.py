"""Project rules: the repository path must be a real git root; linking records the swarm project.

Linking a project makes every one of its tasks something the hive must learn, so the link and one
``task.upsert`` op per existing task commit together. Unlinking clears the link and the tasks'
shared ids in one transaction (history is kept; DESIGN.md §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID, uuid4

import msgspec

from vk_node.services.git import validate_repo_path
from vk_node.store import Store
from vk_node.store.models import Project, Task
from vk_node.store.repositories import projects as projects_repo

__all__ = ["ProjectChanges", "create_project", "link_project", "unlink_project", "update_project"]


class ProjectChanges(msgspec.Struct, frozen=True, kw_only=True):
    """Fields of a project a user may set (``UNSET`` = keep)."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    git_repo_path: str | msgspec.UnsetType = msgspec.UNSET
    setup_script: str | msgspec.UnsetType | None = msgspec.UNSET
    dev_script: str | msgspec.UnsetType | None = msgspec.UNSET
    cleanup_script: str | msgspec.UnsetType | None = msgspec.UNSET
    copy_files: str | msgspec.UnsetType | None = msgspec.UNSET
    parallel_setup_script: bool | msgspec.UnsetType = msgspec.UNSET


async def create_project(store: Store, changes: ProjectChanges) -> Project:
    if not isinstance(changes.git_repo_path, str):
        raise TypeError("git_repo_path is required")
    path = await validate_repo_path(changes.git_repo_path)
    values = msgspec.structs.asdict(changes)
    fields = {k: v for k, v in values.items() if v is not msgspec.UNSET}
    fields["git_repo_path"] = path
    async with store.transaction() as conn:
        return await projects_repo.create(conn, uuid4(), **fields)


async def update_project(store: Store, project_id: UUID, changes: ProjectChanges) -> Project:
    path = None
    if isinstance(changes.git_repo_path, str):
        path = await validate_repo_path(changes.git_repo_path)
    async with store.transaction() as conn:
        current = await projects_repo.get(conn, project_id)
        merged = {
            name: getattr(current, name) if value is msgspec.UNSET else value
            for name, value in msgspec.structs.asdict(changes).items()
        }
        if path is not None:
            merged["git_repo_path"] = path
        return await projects_repo.update(conn, project_id, **merged)


def _parents_first(tasks: Sequence[Task]) -> list[UUID]:
    """Task ids ordered so that a parent comes before its children (input order otherwise)."""
    ids = {t.id for t in tasks}
    emitted: list[UUID] = []
    done: set[UUID] = set()
    pending = list(tasks)
    while pending:
        ready = [
            t
            for t in pending
            if t.parent_task_id is None or t.parent_task_id not in ids or t.parent_task_id in done
        ] or pending  # a cycle cannot happen, but never loop forever
        for t in ready:
            emitted.append(t.id)
            done.add(t.id)
        pending = [t for t in pending if t.id not in done]
    return emitted


async def link_project(store: Store, project_id: UUID, swarm_project_id: UUID) -> Project:
    """Link to a swarm project; idempotent for the same swarm project."""
    from vk_node.store import outbox
    from vk_node.store.repositories import tasks as tasks_repo

    async with store.transaction() as conn:
        current = await projects_repo.get(conn, project_id)
        if current.remote_project_id == swarm_project_id:
            return current
        project = await projects_repo.set_remote_project_id(conn, project_id, swarm_project_id)
        tasks = await tasks_repo.find_by_project_id_with_attempt_status(
            conn, project_id, include_archived=True
        )
        for task_id in _parents_first(list(reversed(tasks))):
            await outbox.enqueue_task_upsert(conn, task_id)
        return project


async def unlink_project(store: Store, project_id: UUID) -> Project:
    """Remove the link; local tasks stay and forget their hive ids."""
    from vk_node.store.repositories import tasks as tasks_repo

    async with store.transaction() as conn:
        current = await projects_repo.get(conn, project_id)
        if current.remote_project_id is None:
            return current
        await tasks_repo.clear_all_shared_task_ids_for_project(conn, project_id)
        return await projects_repo.set_remote_project_id(conn, project_id, None)
