"""``/api/projects``: local git repositories and their link to a swarm project."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from vk_node.api.deps import Ctx, Db
from vk_node.api.types import Name, NameQuery, Path, Script, given_fields
from vk_node.services import projects as service
from vk_node.store.models import Project, ProjectWithStats
from vk_node.store.repositories import projects as projects_repo
from vk_shared.openapi import answers

__all__ = ["ProjectController"]


class ProjectCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    git_repo_path: Path
    """Absolute path of the root of an existing git repository on this machine."""
    setup_script: Script = ""
    dev_script: Script = ""
    cleanup_script: Script | None = None
    copy_files: Script | None = None
    parallel_setup_script: bool = False


class ProjectUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    git_repo_path: Path | msgspec.UnsetType = msgspec.UNSET
    setup_script: Script | msgspec.UnsetType | None = msgspec.UNSET
    dev_script: Script | msgspec.UnsetType | None = msgspec.UNSET
    cleanup_script: Script | msgspec.UnsetType | None = msgspec.UNSET
    copy_files: Script | msgspec.UnsetType | None = msgspec.UNSET
    parallel_setup_script: bool | msgspec.UnsetType = msgspec.UNSET


class ProjectLink(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    swarm_project_id: UUID


def _changes(body: ProjectCreate | ProjectUpdate) -> service.ProjectChanges:
    return service.ProjectChanges(**given_fields(body))


class ProjectController(Controller):
    path = "/projects"
    tags: list[str] | None = ["projects"]

    @post(
        "/", summary="Create a project for an existing local git repository", opt=answers(409, 422)
    )
    async def create(self, store: Db, data: JSONBody[ProjectCreate]) -> Project:
        """422 when ``git_repo_path`` is not the root of a git repository; 409 when another
        project already uses it."""
        return await service.create_project(store, _changes(data))

    @get("/", summary="List local projects with task counts")
    async def list_projects(self, store: Db, name: NameQuery = None) -> list[ProjectWithStats]:
        async with store.read() as conn:
            found = await projects_repo.find_local_projects_with_stats(conn)
        return [p for p in found if name is None or p.name == name]

    @get("/{project_id:uuid}", summary="One project")
    async def get_project(self, store: Db, project_id: FromPath[UUID]) -> Project:
        async with store.read() as conn:
            return await projects_repo.get(conn, project_id)

    @patch(
        "/{project_id:uuid}",
        summary="Change a project's name, path or scripts",
        opt=answers(409, 422),
    )
    async def update(
        self, store: Db, project_id: FromPath[UUID], data: JSONBody[ProjectUpdate]
    ) -> Project:
        return await service.update_project(store, project_id, _changes(data))

    @delete("/{project_id:uuid}", summary="Delete a project with its tasks, attempts and logs")
    async def remove(self, store: Db, project_id: FromPath[UUID]) -> None:
        async with store.transaction() as conn:
            await projects_repo.get(conn, project_id)
            await projects_repo.delete(conn, project_id)

    @post(
        "/{project_id:uuid}/link",
        status_code=HTTP_200_OK,
        summary="Link to a swarm project",
        opt=answers(409),
    )
    async def link(
        self, ctx: Ctx, store: Db, project_id: FromPath[UUID], data: JSONBody[ProjectLink]
    ) -> Project:
        """Records the link locally (works offline); from then on the project's task writes are
        queued in the outbox for the hive; a connected hive link also sends ``link_project``.
        409 when another project links that swarm project."""
        project = await service.link_project(store, project_id, data.swarm_project_id)
        if ctx.link is not None:
            await ctx.link.project_linked(project)
        return project

    @post("/{project_id:uuid}/unlink", status_code=HTTP_200_OK, summary="Unlink from the swarm")
    async def unlink(self, ctx: Ctx, store: Db, project_id: FromPath[UUID]) -> Project:
        """Unlinks locally; a connected hive link also sends ``unlink_project``."""
        async with store.read() as conn:
            before = await projects_repo.get(conn, project_id)
        project = await service.unlink_project(store, project_id)
        if ctx.link is not None and before.remote_project_id is not None:
            await ctx.link.project_unlinked(before.remote_project_id)
        return project
