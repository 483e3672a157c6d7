"""Swarm labels: ``/v1/swarm/labels`` (org-global when ``project_id`` is null)."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from vk_hive.api.access import member_of_entity, member_of_org
from vk_hive.api.deps import Auth, Ctx
from vk_hive.api.types import Name, Version, VersionQuery
from vk_hive.errors import InvalidInput, NotFound
from vk_hive.store.models import Label
from vk_hive.store.repositories import labels, swarm_projects
from vk_shared.openapi import answers

__all__ = ["LabelController"]

Icon = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]


class LabelIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    organization_id: uuid.UUID
    name: Name
    project_id: uuid.UUID | None = None
    icon: Icon = "tag"
    color: Color = "#6b7280"


class LabelPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: Version | None = None
    name: Name | None = None
    icon: Icon | None = None
    color: Color | None = None


class LabelMergeIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target_id: uuid.UUID


class PromoteIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    label_id: uuid.UUID


class LabelController(Controller):
    path = "/swarm/labels"
    tags = ["labels"]

    @get(
        "/",
        summary="Labels of an organization (or of one project: global + project)",
        opt=answers(404),
    )
    async def list_labels(
        self,
        ctx: Ctx,
        principal: Auth,
        organization_id: FromQuery[uuid.UUID],
        project_id: FromQuery[uuid.UUID | None] = None,
    ) -> list[Label]:
        async with ctx.database.acquire() as conn:
            await member_of_org(conn, organization_id, principal)
            if project_id is None:
                return await labels.find_by_organization(conn, organization_id)
            return await labels.find_for_project(conn, organization_id, project_id)

    @post("/", summary="Create a label", status_code=HTTP_201_CREATED, opt=answers(403, 404, 409))
    async def create(self, ctx: Ctx, principal: Auth, data: JSONBody[LabelIn]) -> Label:
        async with ctx.database.transaction() as conn:
            await member_of_org(conn, data.organization_id, principal)
            if data.project_id is not None:
                project_org = await swarm_projects.organization_id(conn, data.project_id)
                if project_org != data.organization_id:
                    raise InvalidInput("project_id is not a swarm project of this organization")
            created = await labels.create(
                conn,
                data.organization_id,
                data.name,
                project_id=data.project_id,
                icon=data.icon,
                color=data.color,
            )
        await ctx.notify_label(created)
        return created

    @get("/{label_id:uuid}", summary="One label")
    async def get_one(self, ctx: Ctx, principal: Auth, label_id: FromPath[uuid.UUID]) -> Label:
        async with ctx.database.acquire() as conn:
            await member_of_entity(conn, labels.organization_id, label_id, principal, "label")
            found = await labels.find_by_id(conn, label_id)
        if found is None:
            raise NotFound("label not found")
        return found

    @patch("/{label_id:uuid}", summary="Update (optimistic version)", opt=answers(409))
    async def update(
        self, ctx: Ctx, principal: Auth, label_id: FromPath[uuid.UUID], data: JSONBody[LabelPatch]
    ) -> Label:
        async with ctx.database.transaction() as conn:
            await member_of_entity(conn, labels.organization_id, label_id, principal, "label")
            updated = await labels.update(
                conn,
                label_id,
                name=data.name,
                icon=data.icon,
                color=data.color,
                expected_version=data.version,
            )
        await ctx.notify_label(updated)
        return updated

    @delete(
        "/{label_id:uuid}",
        summary="Soft delete (optimistic version)",
        status_code=HTTP_200_OK,
        opt=answers(409),
    )
    async def delete_one(
        self,
        ctx: Ctx,
        principal: Auth,
        label_id: FromPath[uuid.UUID],
        version: VersionQuery = None,
    ) -> Label:
        async with ctx.database.transaction() as conn:
            await member_of_entity(conn, labels.organization_id, label_id, principal, "label")
            deleted = await labels.delete(conn, label_id, expected_version=version)
        await ctx.notify_label(deleted)
        return deleted

    @post(
        "/{label_id:uuid}/merge",
        summary="Merge this label into target_id",
        status_code=HTTP_200_OK,
        opt=answers(409),
    )
    async def merge(
        self,
        ctx: Ctx,
        principal: Auth,
        label_id: FromPath[uuid.UUID],
        data: JSONBody[LabelMergeIn],
    ) -> Label:
        async with ctx.database.transaction() as conn:
            source = await member_of_entity(
                conn, labels.organization_id, label_id, principal, "label"
            )
            target = await member_of_entity(
                conn, labels.organization_id, data.target_id, principal, "target label"
            )
            if source.org_id != target.org_id:
                raise InvalidInput("labels belong to different organizations")
            before = await labels.find_by_id(conn, label_id)
            merged = await labels.merge_labels(conn, label_id, data.target_id)
        if before is not None:
            gone = msgspec.structs.replace(
                before, version=before.version + 1, deleted_at=merged.updated_at
            )
            await ctx.notify_label(gone, merged)
        return merged

    @post(
        "/promote",
        summary="Make a project label organization-global",
        status_code=HTTP_200_OK,
        opt=answers(403, 404, 409),
    )
    async def promote(self, ctx: Ctx, principal: Auth, data: JSONBody[PromoteIn]) -> Label:
        async with ctx.database.transaction() as conn:
            await member_of_entity(conn, labels.organization_id, data.label_id, principal, "label")
            promoted = await labels.promote_to_swarm(conn, data.label_id)
        await ctx.notify_label(promoted)
        return promoted
