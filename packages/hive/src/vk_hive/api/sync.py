"""Snapshots for nodes: ``/v1/sync`` with the node's API key as the Bearer token.

Tasks are the JSON of ``SharedTask``, the same shape as ``activity.payload.task``, so a node has
one decoder for both.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, get
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery

from vk_hive.api.deps import Ctx
from vk_hive.api.openapi import NODE_KEY_AUTH
from vk_hive.auth.api_keys import verify_api_key
from vk_hive.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from vk_hive.store.models import SharedTask
from vk_hive.store.repositories import project_links, shared_tasks
from vk_shared.openapi import answers, parameters

__all__ = ["MAX_IDS", "SyncController"]

MAX_IDS = 1000


class ProjectSnapshot(msgspec.Struct, frozen=True):
    project_id: uuid.UUID
    latest_seq: int
    tasks: list[SharedTask]
    deleted_task_ids: list[uuid.UUID]


class TaskSet(msgspec.Struct, frozen=True):
    tasks: list[SharedTask]
    deleted_task_ids: list[uuid.UUID]


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization") or ""
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthorized("missing Bearer API key")
    return raw.strip()


def _bearer_given(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: a request without a bearer token is a 401 before its parameters are read (an
    ``OPTIONS`` request only asks which methods there are)."""
    if connection.scope.get("method") != "OPTIONS":
        _bearer(connection)


async def _node_of(conn: asyncpg.Connection, request: Request[Any, Any, Any]) -> uuid.UUID:
    key = await verify_api_key(conn, _bearer(request))
    if key.node_id is None:
        raise Forbidden("the API key is not bound to a node yet (connect the node first)")
    return key.node_id


_TASK_IDS = {
    "description": "Task ids, comma-separated (ids=a,b,c)",
    "style": "form",
    "explode": False,
    "schema": {
        "type": "array",
        "items": {"type": "string", "format": "uuid"},
        "maxItems": MAX_IDS,
        "default": [],
    },
}


class SyncController(Controller):
    path = "/sync"
    tags = ["sync"]
    opt = NODE_KEY_AUTH
    guards = [_bearer_given]

    @get(
        "/projects/{project_id:uuid}/snapshot",
        summary="All live tasks of a linked project",
        opt=answers(401, 403),
    )
    async def snapshot(
        self, ctx: Ctx, request: Request[Any, Any, Any], project_id: FromPath[uuid.UUID]
    ) -> ProjectSnapshot:
        async with ctx.database.acquire() as conn:
            node_id = await _node_of(conn, request)
            if await project_links.find_node_link(conn, project_id, node_id) is None:
                raise NotFound("this node does not link that swarm project")
            snap = await shared_tasks.bulk_fetch(conn, project_id)
        return ProjectSnapshot(
            project_id=project_id,
            latest_seq=snap.latest_seq,
            tasks=[t.task for t in snap.tasks],
            deleted_task_ids=snap.deleted_task_ids,
        )

    @get(
        "/tasks",
        summary="Named tasks of the projects this node links",
        opt={**answers(401, 403), **parameters(ids=_TASK_IDS)},
    )
    async def tasks(
        self, ctx: Ctx, request: Request[Any, Any, Any], ids: FromQuery[str] = ""
    ) -> TaskSet:
        wanted: list[uuid.UUID] = []
        for part in ids.split(","):
            if part.strip():
                try:
                    wanted.append(uuid.UUID(part.strip()))
                except ValueError:
                    raise InvalidInput(f"not a task id: {part.strip()[:64]!r}") from None
        if len(wanted) > MAX_IDS:
            raise InvalidInput(f"at most {MAX_IDS} ids per request")
        async with ctx.database.acquire() as conn:
            node_id = await _node_of(conn, request)
            linked = [
                link.swarm_project_id for link in await project_links.list_by_node(conn, node_id)
            ]
            found = await shared_tasks.find_many(conn, wanted, linked) if wanted else []
        return TaskSet(
            tasks=[t for t in found if t.deleted_at is None],
            deleted_task_ids=[t.id for t in found if t.deleted_at is not None],
        )
