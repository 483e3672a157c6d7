"""The board's pages: ``/`` (projects), ``/projects/{id}`` (kanban), ``/tasks/{id}`` (a task), and
``/images/{id}`` (a task's image, behind the same gate as the pages, for their ``<img>`` tags:
a browser cannot put the API's Bearer token on an image request).

Each is a ``GET`` that renders one template from :mod:`vk_node.web.views`. An unknown id answers
404 with an HTML page to a browser (``Accept: text/html``) and with the API's problem details to
any other client.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get
from litestar.params import FromPath
from litestar.response import File, Template

from vk_node import __version__
from vk_node.api.deps import Ctx
from vk_node.api.images import image_response
from vk_node.context import NodeContext
from vk_node.errors import NotFound
from vk_node.web import views

__all__ = ["page_handlers"]


def _common(ctx: NodeContext) -> dict[str, Any]:
    settings = ctx.settings
    return {
        "node_name": settings.name,
        "version": __version__,
        "hive_url": settings.hive_url,
    }


def _render(ctx: NodeContext, name: str, title: str, status: int = 200, **values: Any) -> Template:
    """Template ``name`` with what every page shows (the node's name, version, hive link)."""
    context = {
        "node_name": ctx.settings.name,
        "version": __version__,
        "hive_url": ctx.settings.hive_url,
        "title": title,
        **values,
    }
    return Template(name, context=context, status_code=status)


def _not_found(request: Request[Any, Any, Any], ctx: NodeContext, exc: NotFound) -> Template:
    if "text/html" not in request.headers.get("accept", ""):
        raise exc
    return _render(ctx, "not_found.html", "Not found", 404, detail=exc.detail)


@get("/", name="board:projects", include_in_schema=False)
async def projects_page(ctx: Ctx) -> Template:
    return _render(ctx, "projects.html", "Projects", projects=await views.projects(ctx))


@get("/projects/{project_id:uuid}", name="board:project", include_in_schema=False)
async def project_page(
    request: Request[Any, Any, Any], ctx: Ctx, project_id: FromPath[UUID]
) -> Template:
    try:
        board = await views.project_board(ctx, project_id)
    except NotFound as exc:
        return _not_found(request, ctx, exc)
    return _render(
        ctx, "project.html", board.project.name, board=board, attempt_state=views.attempt_state
    )


@get("/tasks/{task_id:uuid}", name="board:task", include_in_schema=False)
async def task_page(request: Request[Any, Any, Any], ctx: Ctx, task_id: FromPath[UUID]) -> Template:
    try:
        page = await views.task_page(ctx, task_id)
    except NotFound as exc:
        return _not_found(request, ctx, exc)
    return _render(ctx, "task.html", page.task.title, page=page, status_labels=views.STATUS_LABELS)


@get("/images/{image_id:uuid}", name="board:image", include_in_schema=False)
async def image(ctx: Ctx, image_id: FromPath[UUID]) -> File:
    return await image_response(ctx, image_id)


def page_handlers() -> list[Any]:
    return [projects_page, project_page, task_page, image]
