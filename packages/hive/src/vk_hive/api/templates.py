"""Swarm templates: ``/v1/swarm/templates``."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from vk_hive.api.access import member_of_entity, member_of_org
from vk_hive.api.deps import Auth, Ctx
from vk_hive.api.types import Description, Name, Text, Version, VersionQuery
from vk_hive.errors import InvalidInput, NotFound
from vk_hive.store.models import SwarmTemplate
from vk_hive.store.repositories import templates
from vk_shared.openapi import answers

__all__ = ["TemplateController"]


class TemplateIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    organization_id: uuid.UUID
    name: Name
    content: Text = ""
    description: Description | None = None
    metadata: dict[str, Any] | None = None


class TemplatePatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: Version | None = None
    name: Name | None = None
    content: Text | None = None
    description: Description | None = None
    metadata: dict[str, Any] | None = None


class TemplateMergeIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target_id: uuid.UUID


def _check_metadata(metadata: dict[str, Any] | None) -> None:
    if metadata is not None and len(msgspec.json.encode(metadata)) > 64 * 1024:
        raise InvalidInput("metadata is larger than 64 KiB")


class TemplateController(Controller):
    path = "/swarm/templates"
    tags = ["templates"]

    @get("/", summary="Templates of an organization")
    async def list_templates(
        self, ctx: Ctx, principal: Auth, organization_id: FromQuery[uuid.UUID]
    ) -> list[SwarmTemplate]:
        async with ctx.database.acquire() as conn:
            await member_of_org(conn, organization_id, principal)
            return await templates.list_by_organization(conn, organization_id)

    @post(
        "/", summary="Create a template", status_code=HTTP_201_CREATED, opt=answers(403, 404, 409)
    )
    async def create(self, ctx: Ctx, principal: Auth, data: JSONBody[TemplateIn]) -> SwarmTemplate:
        _check_metadata(data.metadata)
        async with ctx.database.transaction() as conn:
            await member_of_org(conn, data.organization_id, principal)
            return await templates.create(
                conn,
                data.organization_id,
                data.name,
                content=data.content,
                description=data.description,
                metadata=data.metadata,
            )

    @get("/{template_id:uuid}", summary="One template")
    async def get_one(
        self, ctx: Ctx, principal: Auth, template_id: FromPath[uuid.UUID]
    ) -> SwarmTemplate:
        async with ctx.database.acquire() as conn:
            await member_of_entity(
                conn, templates.organization_id, template_id, principal, "template"
            )
            found = await templates.find_by_id(conn, template_id)
        if found is None:
            raise NotFound("template not found")
        return found

    @patch("/{template_id:uuid}", summary="Update (optimistic version)", opt=answers(409))
    async def update(
        self,
        ctx: Ctx,
        principal: Auth,
        template_id: FromPath[uuid.UUID],
        data: JSONBody[TemplatePatch],
    ) -> SwarmTemplate:
        _check_metadata(data.metadata)
        async with ctx.database.transaction() as conn:
            await member_of_entity(
                conn, templates.organization_id, template_id, principal, "template"
            )
            return await templates.update(
                conn,
                template_id,
                name=data.name,
                content=data.content,
                description=data.description,
                metadata=data.metadata,
                expected_version=data.version,
            )

    @delete(
        "/{template_id:uuid}",
        summary="Soft delete (optimistic version)",
        status_code=HTTP_200_OK,
        opt=answers(409),
    )
    async def delete_one(
        self,
        ctx: Ctx,
        principal: Auth,
        template_id: FromPath[uuid.UUID],
        version: VersionQuery = None,
    ) -> SwarmTemplate:
        async with ctx.database.transaction() as conn:
            await member_of_entity(
                conn, templates.organization_id, template_id, principal, "template"
            )
            return await templates.delete(conn, template_id, expected_version=version)

    @post(
        "/{template_id:uuid}/merge",
        summary="Merge this template into target_id",
        status_code=HTTP_200_OK,
        opt=answers(409),
    )
    async def merge(
        self,
        ctx: Ctx,
        principal: Auth,
        template_id: FromPath[uuid.UUID],
        data: JSONBody[TemplateMergeIn],
    ) -> SwarmTemplate:
        async with ctx.database.transaction() as conn:
            source = await member_of_entity(
                conn, templates.organization_id, template_id, principal, "template"
            )
            target = await member_of_entity(
                conn, templates.organization_id, data.target_id, principal, "target template"
            )
            if source.org_id != target.org_id:
                raise InvalidInput("templates belong to different organizations")
            return await templates.merge(conn, template_id, data.target_id)
