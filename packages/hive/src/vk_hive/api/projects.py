"""Swarm projects: ``/v1/swarm/projects``."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from vk_hive.api.access import member_of_entity, member_of_org
from vk_hive.api.deps import Auth, Ctx
from vk_hive.api.types import Description, Name
from vk_hive.errors import InvalidInput, NotFound
from vk_hive.store.models import ProjectNodeLink, SwarmProject, SwarmProjectWithCounts
from vk_hive.store.repositories import project_links, swarm_projects
from vk_shared.openapi import answers

__all__ = ["ProjectController"]


class ProjectIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    organization_id: uuid.UUID
    name: Name
    description: Description | None = None
    metadata: dict[str, Any] | None = None


class ProjectPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name | None = None
    description: Description | None = None
    metadata: dict[str, Any] | None = None


class MergeIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target_id: uuid.UUID


def _check_metadata(metadata: dict[str, Any] | None) -> None:
    if metadata is not None and len(msgspec.json.encode(metadata)) > 64 * 1024:
        raise InvalidInput("metadata is larger than 64 KiB")


class ProjectController(Controller):
    path = "/swarm/projects"
    tags = ["swarm projects"]

    @post(
        "/",
        summary="Create a swarm project",
        status_code=HTTP_201_CREATED,
        opt=answers(403, 404, 409),
    )
    async def create(self, ctx: Ctx, principal: Auth, data: JSONBody[ProjectIn]) -> SwarmProject:
        _check_metadata(data.metadata)
        async with ctx.database.transaction() as conn:
            await member_of_org(conn, data.organization_id, principal)
            return await swarm_projects.create(
                conn, data.organization_id, data.name, data.description, data.metadata
            )

    @get("/", summary="Swarm projects of an organization, with node and task counts")
    async def list_projects(
        self, ctx: Ctx, principal: Auth, organization_id: FromQuery[uuid.UUID]
    ) -> list[SwarmProjectWithCounts]:
        async with ctx.database.acquire() as conn:
            await member_of_org(conn, organization_id, principal)
            return await swarm_projects.list_with_nodes_count(conn, organization_id)

    @get("/{project_id:uuid}", summary="One swarm project")
    async def get_one(
        self, ctx: Ctx, principal: Auth, project_id: FromPath[uuid.UUID]
    ) -> SwarmProject:
        async with ctx.database.acquire() as conn:
            await member_of_entity(
                conn, swarm_projects.organization_id, project_id, principal, "swarm project"
            )
            return await swarm_projects.get(conn, project_id)

    @patch("/{project_id:uuid}", summary="Update name, description or metadata", opt=answers(409))
    async def update(
        self,
        ctx: Ctx,
        principal: Auth,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[ProjectPatch],
    ) -> SwarmProject:
        _check_metadata(data.metadata)
        async with ctx.database.transaction() as conn:
            await member_of_entity(
                conn, swarm_projects.organization_id, project_id, principal, "swarm project"
            )
            return await swarm_projects.update(
                conn,
                project_id,
                name=data.name,
                description=data.description,
                metadata=data.metadata,
            )

    @delete(
        "/{project_id:uuid}",
        summary="Delete (tasks keep their rows)",
        status_code=HTTP_204_NO_CONTENT,
        opt=answers(409),
    )
    async def delete_one(self, ctx: Ctx, principal: Auth, project_id: FromPath[uuid.UUID]) -> None:
        async with ctx.database.transaction() as conn:
            await member_of_entity(
                conn, swarm_projects.organization_id, project_id, principal, "swarm project"
            )
            await swarm_projects.delete(conn, project_id)

    @post(
        "/{project_id:uuid}/merge",
        summary="Merge this project into target_id",
        status_code=HTTP_200_OK,
        opt=answers(409),
    )
    async def merge(
        self,
        ctx: Ctx,
        principal: Auth,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[MergeIn],
    ) -> SwarmProject:
        async with ctx.database.transaction() as conn:
            source = await member_of_entity(
                conn, swarm_projects.organization_id, project_id, principal, "swarm project"
            )
            target = await member_of_entity(
                conn, swarm_projects.organization_id, data.target_id, principal, "target project"
            )
            if source.org_id != target.org_id:
                raise InvalidInput("projects belong to different organizations")
            await swarm_projects.merge(conn, project_id, data.target_id)
            return await swarm_projects.get(conn, data.target_id)

    @get("/{project_id:uuid}/nodes", summary="Nodes linked to the project")
    async def nodes(
        self, ctx: Ctx, principal: Auth, project_id: FromPath[uuid.UUID]
    ) -> list[ProjectNodeLink]:
        async with ctx.database.acquire() as conn:
            await member_of_entity(
                conn, swarm_projects.organization_id, project_id, principal, "swarm project"
            )
            return await project_links.list_nodes(conn, project_id)

    @delete(
        "/{project_id:uuid}/nodes/{node_id:uuid}",
        summary="Unlink a node",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def unlink(
        self,
        ctx: Ctx,
        principal: Auth,
        project_id: FromPath[uuid.UUID],
        node_id: FromPath[uuid.UUID],
    ) -> None:
        async with ctx.database.transaction() as conn:
            await member_of_entity(
                conn, swarm_projects.organization_id, project_id, principal, "swarm project"
            )
            if not await project_links.unlink_node(conn, project_id, node_id):
                raise NotFound("link not found")
