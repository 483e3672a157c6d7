"""``create_app(settings)``: the hive's Litestar application."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, ControllerRouterHandler, Receive, Scope, Send

from vk_hive import __version__
from vk_hive.api.deps import provide_ctx, provide_db, provide_principal
from vk_hive.api.health import health
from vk_hive.api.identity import IdentityController
from vk_hive.api.metrics import metrics
from vk_hive.api.oauth import OAuthController
from vk_hive.api.openapi import ExactDocument
from vk_hive.api.organizations import InvitationController, OrganizationController
from vk_hive.api.problems import plugin as problem_details
from vk_hive.api.ratelimit import STORE_NAME, AuthRateLimit
from vk_hive.auth.tokens import MIN_SECRET_BYTES, TokenSigner
from vk_hive.context import HiveContext
from vk_hive.lifespan import StartupHook, hive_lifespan
from vk_hive.settings import HiveSettings
from vk_hive.web import static_digest, template_config, web_routers
from vk_shared.allow import OptionsAllow
from vk_shared.jsoncheck import refuse_bad_request
from vk_shared.openapi import API_DESCRIPTION

__all__ = ["api_route_handlers", "create_app", "signer_for"]

log = structlog.get_logger("vk_hive.app")
access_log = structlog.get_logger("vk_hive.http")


def signer_for(settings: HiveSettings) -> TokenSigner:
    """The token signer; without ``VK_HIVE_JWT_SECRET`` a random per-process key is used (tokens
    then do not survive a restart) and a warning is logged."""
    secret = settings.jwt_secret.encode("utf-8")
    if not secret:
        log.warning("hive.jwt_secret_missing", effect="tokens are valid for this process only")
        secret = secrets.token_bytes(MIN_SECRET_BYTES)
    elif len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"VK_HIVE_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    return TokenSigner(
        secret,
        access_ttl_s=settings.access_token_ttl_s,
        refresh_ttl_s=settings.refresh_token_ttl_s,
        leeway_s=settings.token_leeway_s,
    )


def api_route_handlers() -> list[ControllerRouterHandler]:
    """Every REST handler mounted under ``/v1``."""
    from vk_hive.api.registry import domain_handlers

    return [
        health,
        IdentityController,
        OAuthController,
        OrganizationController,
        InvitationController,
        *domain_handlers(),
    ]


_QUIET_ROUTES = frozenset({"/metrics", "/v1/health"})
"""Scraped and probed every few seconds: their request lines are logged at debug level."""


_SECRET_IN_PATH = "{token"  # noqa: S105 - a route template fragment
"""A route whose template has a ``{token…}`` parameter (a login link, an invitation) carries a
secret in its path: its request line logs the template instead of the path."""


def _request_middleware(ctx: HiveContext) -> Callable[[ASGIApp], ASGIApp]:
    """Per HTTP request: bind a request id (the client's ``x-request-id`` or a new one) to every
    log line of the request and echo it in the response; count and time the request by route
    template and status; log one ``http.request`` line (without a token of the path)."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":  # type: ignore[comparison-overlap]
                await app(scope, receive, send)
                return
            incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
            request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
            status = 500

            async def send_with_id(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                    message["headers"] = headers
                await send(message)

            route = str(scope.get("path_template") or "unmatched")
            method = str(scope.get("method", "GET"))
            started = time.perf_counter()
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                try:
                    await app(scope, receive, send_with_id)
                finally:
                    elapsed = time.perf_counter() - started
                    ctx.metrics.http_request(method, route, status, elapsed)
                    quiet = route in _QUIET_ROUTES and status < 400
                    level = logging.DEBUG if quiet else logging.INFO
                    access_log.log(
                        level,
                        "http.request",
                        method=method,
                        route=route,
                        path=route if _SECRET_IN_PATH in route else scope["path"][:256],
                        status=status,
                        duration_ms=round(elapsed * 1000, 2),
                    )

        return middleware

    return factory


def create_app(
    settings: HiveSettings,
    *,
    extra_route_handlers: Sequence[ControllerRouterHandler] = (),
    on_startup: Sequence[StartupHook] = (),
) -> Litestar:
    """Build the hive application.

    The node gateway (``/v1/nodes/ws``, :mod:`vk_hive.gateway`), the user activity stream
    (``/v1/ws``, :mod:`vk_hive.api.userws`), the node snapshot routes
    (``/v1/sync``) and ``GET /metrics`` (:mod:`vk_hive.metrics`, on this app's own registry) are
    always mounted, and so are the browser pages outside ``/v1`` and their static files
    (:mod:`vk_hive.web`); the gateway's startup hook runs first. The auth endpoints are rate
    limited per client address (:mod:`vk_hive.api.ratelimit`). More handlers (mounted under
    ``/v1``) and startup hooks can be passed in.
    """
    from vk_hive.api.sync import SyncController
    from vk_hive.api.userws import user_socket
    from vk_hive.gateway import Gateway, node_socket

    ctx = HiveContext(settings=settings, signer=signer_for(settings))
    gateway = Gateway(ctx)
    ctx.gateway = gateway
    rate_limit = AuthRateLimit(settings)
    v1 = Router(
        path="/v1",
        route_handlers=[
            *api_route_handlers(),
            SyncController,
            node_socket,
            user_socket,
            *extra_route_handlers,
        ],
        before_request=refuse_bad_request,
    )
    static_prefix = f"/static/{static_digest()}"
    app = Litestar(
        route_handlers=[v1, metrics, *web_routers(static_prefix)],
        template_config=template_config(static_prefix),
        lifespan=[
            hive_lifespan(ctx, on_startup=[gateway.startup, rate_limit.startup, *on_startup])
        ],
        state=State({"hive": ctx}),
        stores={STORE_NAME: rate_limit.store},
        dependencies={
            "ctx": Provide(provide_ctx, sync_to_thread=False),
            "db": Provide(provide_db, sync_to_thread=False),
            "principal": Provide(provide_principal),
        },
        plugins=[problem_details()],
        middleware=[_request_middleware(ctx), *rate_limit.middleware],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="vk-swarm hive",
            version=__version__,
            description=API_DESCRIPTION,
            path="/schema",
            render_plugins=[ExactDocument()],
        ),
        logging_config=None,
        debug=False,
    )
    # Litestar's OPTIONS answers may name only some methods of a path (vk_shared.allow).
    app.asgi_handler = OptionsAllow.for_routes(app.asgi_handler, app.routes)
    return app
