"""The swarm board's pages: ``/``, ``/projects/{id}``, ``/tasks/{id}``, ``/nodes``.

Every page needs a signed-in browser session (else 303 to ``/login``, with no data in the
answer) and shows only the user's organizations: a project or task of another organization,
an unknown one and a malformed id all get the same 404 page. The pages are rendered on the
server; ``static/board.js`` keeps them live over ``/v1/ws`` and sends every change through the
REST API (``/v1``), which checks the session's CSRF token and the request's Origin.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
from litestar import Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from vk_hive.api.deps import Ctx
from vk_hive.auth.browser import BrowserSession
from vk_hive.context import HiveContext
from vk_hive.web import views
from vk_hive.web.signin import page, redirect, signed_in

__all__ = ["board_page", "home_page", "nodes_page", "task_page"]

Shown = tuple[str, dict[str, Any], Any]
"""What a page shows: its kind (and template name), the data its module reads, its view."""
Loader = Callable[[asyncpg.Connection, uuid.UUID], Awaitable[Shown]]


async def _show(
    request: Request[Any, Any, Any], ctx: HiveContext, what: str, load: Loader
) -> Template | Redirect:
    """Render what ``load`` reads for the signed-in user; 303 to ``/login`` when signed out;
    the 404 page when ``load`` finds the ``what`` hidden from the user."""
    session = await signed_in(request, ctx)
    if session is None:
        return redirect("/login")
    try:
        async with ctx.database.acquire() as conn:
            kind, data, view = await load(conn, session.user.id)
    except views.Hidden:
        return page("not_found.html", _context(session, "missing", {}, what=what), status=404)
    return page(f"{kind}.html", _context(session, kind, data, view=view))


def _context(
    session: BrowserSession, kind: str, data: dict[str, Any], **more: Any
) -> dict[str, Any]:
    user = session.user
    return {
        "page_kind": kind,
        "user_name": user.first_name or user.username or user.email,
        "csrf": session.csrf_token,
        "data": msgspec.to_builtins({"page": kind, **data}),
        "columns": views.COLUMNS,
        "titles": dict(views.COLUMNS),
        **more,
    }


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise views.Hidden("not an id") from None


@get("/", include_in_schema=False)
async def home_page(
    request: Request[Any, Any, Any], ctx: Ctx, org: FromQuery[str | None] = None
) -> Template | Redirect:
    async def load(conn: asyncpg.Connection, user_id: uuid.UUID) -> Shown:
        view = await views.home_view(conn, user_id, org)
        return "home", {"organization_id": view.organization.id}, view

    return await _show(request, ctx, "organization", load)


@get("/projects/{project_id:str}", include_in_schema=False)
async def board_page(
    request: Request[Any, Any, Any], ctx: Ctx, project_id: FromPath[str]
) -> Template | Redirect:
    async def load(conn: asyncpg.Connection, user_id: uuid.UUID) -> Shown:
        view = await views.board_view(conn, user_id, _uuid(project_id))
        data = {
            "organization_id": view.organization.id,
            "project_id": view.project.id,
            "after": view.latest_seq,
            "nodes": {str(n.id): n.name for n in view.nodes},
        }
        return "board", data, view

    return await _show(request, ctx, "project", load)


@get("/tasks/{task_id:str}", include_in_schema=False)
async def task_page(
    request: Request[Any, Any, Any], ctx: Ctx, task_id: FromPath[str]
) -> Template | Redirect:
    async def load(conn: asyncpg.Connection, user_id: uuid.UUID) -> Shown:
        view = await views.task_view(conn, user_id, _uuid(task_id))
        data = {
            "organization_id": view.organization.id,
            "project_id": view.task.project_id,
            "after": view.latest_seq,
            "task": view.task,
            "nodes": {str(n.id): n.name for n in view.nodes},
        }
        return "task", data, view

    return await _show(request, ctx, "task", load)


@get("/nodes", include_in_schema=False)
async def nodes_page(
    request: Request[Any, Any, Any], ctx: Ctx, org: FromQuery[str | None] = None
) -> Template | Redirect:
    async def load(conn: asyncpg.Connection, user_id: uuid.UUID) -> Shown:
        view = await views.nodes_view(conn, user_id, org)
        return "nodes", {"organization_id": view.organization.id}, view

    return await _show(request, ctx, "organization", load)
