"""Nodes and node API keys: ``/v1/nodes``."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from vk_hive.api.access import member_of_entity, member_of_org
from vk_hive.api.deps import Auth, Ctx
from vk_hive.api.types import Name
from vk_hive.auth.api_keys import CreatedApiKey, create_api_key, key_status
from vk_hive.errors import Conflict, InvalidInput
from vk_hive.store.models import Node, NodeApiKey, NodeLocalProject, ProjectNodeLink
from vk_hive.store.repositories import node_api_keys, node_local_projects, nodes, project_links
from vk_shared.openapi import answers

__all__ = ["ApiKeyController", "NodeController"]


class ApiKeyIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    organization_id: uuid.UUID
    name: Name


class ApiKeyOut(msgspec.Struct, frozen=True):
    """A key as listed: never its secret or hash."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    key_prefix: str
    status: str
    node_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    blocked_at: datetime | None
    blocked_reason: str | None


def key_out(key: NodeApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        organization_id=key.organization_id,
        name=key.name,
        key_prefix=key.key_prefix,
        status=key_status(key),
        node_id=key.node_id,
        created_by=key.created_by,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        blocked_at=key.blocked_at,
        blocked_reason=key.blocked_reason,
    )


async def _node_org(conn: asyncpg.Connection, node_id: uuid.UUID) -> uuid.UUID | None:
    node = await nodes.find_by_id(conn, node_id)
    return None if node is None else node.organization_id


async def _key_org(conn: asyncpg.Connection, key_id: uuid.UUID) -> uuid.UUID | None:
    key = await node_api_keys.find_by_id(conn, key_id)
    return None if key is None else key.organization_id


class NodeController(Controller):
    path = "/nodes"
    tags = ["nodes"]

    @get("/", summary="Nodes of an organization")
    async def list_nodes(
        self, ctx: Ctx, principal: Auth, organization_id: FromQuery[uuid.UUID]
    ) -> list[Node]:
        async with ctx.database.acquire() as conn:
            await member_of_org(conn, organization_id, principal)
            return await nodes.list_by_organization(conn, organization_id)

    @get("/{node_id:uuid}", summary="One node")
    async def get_one(self, ctx: Ctx, principal: Auth, node_id: FromPath[uuid.UUID]) -> Node:
        async with ctx.database.acquire() as conn:
            await member_of_entity(conn, _node_org, node_id, principal, "node")
            return await nodes.get(conn, node_id)

    @delete("/{node_id:uuid}", summary="Delete a node (admin)", status_code=HTTP_204_NO_CONTENT)
    async def delete_one(self, ctx: Ctx, principal: Auth, node_id: FromPath[uuid.UUID]) -> None:
        async with ctx.database.transaction() as conn:
            membership = await member_of_entity(conn, _node_org, node_id, principal, "node")
            membership.require_admin()
            await nodes.delete(conn, node_id)

    @get("/{node_id:uuid}/projects", summary="The node's local projects")
    async def local_projects(
        self, ctx: Ctx, principal: Auth, node_id: FromPath[uuid.UUID]
    ) -> list[NodeLocalProject]:
        async with ctx.database.acquire() as conn:
            await member_of_entity(conn, _node_org, node_id, principal, "node")
            return await node_local_projects.list_by_node(conn, node_id)

    @get("/{node_id:uuid}/projects/linked", summary="The node's links to swarm projects")
    async def linked_projects(
        self, ctx: Ctx, principal: Auth, node_id: FromPath[uuid.UUID]
    ) -> list[ProjectNodeLink]:
        async with ctx.database.acquire() as conn:
            await member_of_entity(conn, _node_org, node_id, principal, "node")
            return await project_links.list_by_node(conn, node_id)

    @post(
        "/{source_id:uuid}/merge-to/{target_id:uuid}",
        summary="Merge a node into another (admin)",
        status_code=HTTP_200_OK,
        opt=answers(409),
    )
    async def merge(
        self,
        ctx: Ctx,
        principal: Auth,
        source_id: FromPath[uuid.UUID],
        target_id: FromPath[uuid.UUID],
    ) -> Node:
        async with ctx.database.transaction() as conn:
            source = await member_of_entity(conn, _node_org, source_id, principal, "node")
            target = await member_of_entity(conn, _node_org, target_id, principal, "target node")
            source.require_admin()
            if source.org_id != target.org_id:
                raise InvalidInput("nodes belong to different organizations")
            return await nodes.merge_nodes(conn, source_id, target_id)


class ApiKeyController(Controller):
    path = "/nodes/api-keys"
    tags = ["nodes"]

    @post(
        "/",
        summary="Create a node API key; the secret is in this response only",
        status_code=HTTP_201_CREATED,
        opt=answers(403, 404),
    )
    async def create(self, ctx: Ctx, principal: Auth, data: JSONBody[ApiKeyIn]) -> CreatedApiKey:
        async with ctx.database.transaction() as conn:
            await member_of_org(conn, data.organization_id, principal)
            return await create_api_key(
                conn, data.organization_id, data.name, created_by=principal.user_id
            )

    @get("/", summary="API keys of an organization, newest first (never secrets)")
    async def list_keys(
        self, ctx: Ctx, principal: Auth, organization_id: FromQuery[uuid.UUID]
    ) -> list[ApiKeyOut]:
        async with ctx.database.acquire() as conn:
            await member_of_org(conn, organization_id, principal)
            return [
                key_out(k) for k in await node_api_keys.list_by_organization(conn, organization_id)
            ]

    @delete("/{key_id:uuid}", summary="Revoke a key", status_code=HTTP_204_NO_CONTENT)
    async def revoke(self, ctx: Ctx, principal: Auth, key_id: FromPath[uuid.UUID]) -> None:
        """The key stops working at once: a node connected with it is disconnected (and its
        reconnects are refused)."""
        async with ctx.database.transaction() as conn:
            membership = await member_of_entity(conn, _key_org, key_id, principal, "API key")
            key = await node_api_keys.revoke(conn, key_id, membership.org_id)
        if key.node_id is not None and ctx.gateway is not None:
            ctx.gateway.disconnect(key.node_id, "API key revoked")

    @post(
        "/{key_id:uuid}/unblock",
        summary="Unblock a blocked key (admin)",
        status_code=HTTP_200_OK,
        opt=answers(409),
    )
    async def unblock(self, ctx: Ctx, principal: Auth, key_id: FromPath[uuid.UUID]) -> ApiKeyOut:
        async with ctx.database.transaction() as conn:
            membership = await member_of_entity(conn, _key_org, key_id, principal, "API key")
            membership.require_admin()
            key = await node_api_keys.unblock_key(conn, key_id, membership.org_id)
            if key is None:
                raise Conflict("the key is not blocked, or it is revoked")
            return key_out(key)
