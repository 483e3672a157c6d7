"""The node board: server-rendered pages at ``/`` with a little of our own JavaScript.

Templates (Jinja2, autoescaped) and static files live in this package, so they ship in the
wheel. Pages read through the same repositories and services as ``/api``
(:mod:`vk_node.web.views`); every action of the board is a ``fetch`` of the ``/api`` REST
endpoints. :mod:`vk_node.web.gate` says who may read a page and which headers it carries.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined
from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig

from vk_node.api.guard import AccessPolicy
from vk_node.web.gate import page_gate, page_headers, static_headers
from vk_node.web.pages import page_handlers
from vk_node.web.static import static_handler
from vk_shared.jsoncheck import refuse_bad_request

__all__ = ["board_routers", "template_config"]


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    environment = Environment(
        loader=PackageLoader("vk_node.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def board_routers(policy: AccessPolicy) -> list[Router]:
    """The page routes (``/``, ``/projects/{id}``, ``/tasks/{id}``) and ``/static``."""
    pages = Router(
        path="/",
        route_handlers=page_handlers(),
        before_request=page_gate(policy),
        response_headers=page_headers(),
        include_in_schema=False,
    )
    static = Router(
        path="/",
        route_handlers=[static_handler()],
        before_request=refuse_bad_request,
        response_headers=static_headers(),
        include_in_schema=False,
    )
    return [pages, static]
