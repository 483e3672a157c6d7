"""``create_app(settings)``: the node's Litestar application (local REST API under ``/api``, the
board's pages at ``/``)."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from vk_node import __version__
from vk_node.api.deps import provide_ctx, provide_store
from vk_node.api.guard import AccessPolicy, RequestGuard, require_token_when_exposed
from vk_node.api.openapi import ExactDocument
from vk_node.api.problems import plugin as problem_details
from vk_node.context import NodeContext
from vk_node.lifespan import node_lifespan
from vk_node.settings import NodeSettings
from vk_node.web import board_routers, template_config
from vk_shared.allow import OptionsAllow
from vk_shared.jsoncheck import refuse_bad_request
from vk_shared.openapi import API_DESCRIPTION

__all__ = ["api_route_handlers", "create_app"]


def api_route_handlers() -> list[ControllerRouterHandler]:
    """Every REST handler mounted under ``/api``."""
    from vk_node.api.activity import ActivityController
    from vk_node.api.attempt_git import AttemptGitController
    from vk_node.api.attempts import AttemptController, ExecutionProcessController
    from vk_node.api.drafts import DraftController
    from vk_node.api.health import health
    from vk_node.api.images import ImageController, TaskImageController
    from vk_node.api.labels import LabelController, TaskLabelController
    from vk_node.api.logs_ws import logs_ws
    from vk_node.api.metrics import metrics
    from vk_node.api.projects import ProjectController
    from vk_node.api.tasks import TaskController
    from vk_node.api.templates import TemplateController
    from vk_node.api.variables import TaskVariableController
    from vk_node.api.webhooks import WebhookController
    from vk_node.link.api import link_status

    return [
        health,
        metrics,
        ProjectController,
        TaskController,
        AttemptController,
        AttemptGitController,
        ExecutionProcessController,
        logs_ws,
        LabelController,
        TaskLabelController,
        TemplateController,
        TaskVariableController,
        DraftController,
        ActivityController,
        ImageController,
        TaskImageController,
        link_status,
        WebhookController,
    ]


def create_app(settings: NodeSettings) -> Litestar:
    """Build one node's application; the store opens in its lifespan.

    Raises :class:`~vk_node.settings.SettingsError` for a non-loopback ``host`` without an API
    token. Every request and WebSocket handshake passes :mod:`vk_node.api.guard` first."""
    require_token_when_exposed(settings)
    ctx = NodeContext(settings=settings)
    policy = AccessPolicy.from_settings(settings)
    api = Router(
        path="/api", route_handlers=api_route_handlers(), before_request=refuse_bad_request
    )
    app = Litestar(
        route_handlers=[api, *board_routers(policy)],
        template_config=template_config(),
        lifespan=[node_lifespan(ctx)],
        state=State({"node": ctx}),
        dependencies={
            "ctx": Provide(provide_ctx, sync_to_thread=False),
            "store": Provide(provide_store, sync_to_thread=False),
        },
        plugins=[problem_details()],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="vk-swarm node",
            version=__version__,
            description=API_DESCRIPTION,
            path="/schema",
            render_plugins=[ExactDocument()],
        ),
        logging_config=None,
        debug=False,
    )
    # Outside Litestar's routing, so unknown paths and WebSocket handshakes are guarded too.
    routed = OptionsAllow.for_routes(app.asgi_handler, app.routes)
    app.asgi_handler = RequestGuard(routed, policy)
    return app
