"""``GET /v1/ws``: the user activity stream's route and handshake (the session is
:mod:`vk_hive.userstream.session`; the messages are :mod:`vk_shared.wire.user`).

The handshake is checked before it is accepted, and refused with an HTTP error and a problem
details body (:func:`~vk_hive.gateway.denial.deny_handshake`), like a REST call:

- credentials: ``Authorization: Bearer`` (an access JWT or a personal access token, validated as
  for REST) or else the browser session cookie. Browsers attach cookies to cross-site WebSocket
  handshakes and the same-origin policy does not apply to WebSockets, so a cookie is taken only
  with an ``Origin`` that is one of the hive's own (cross-site WebSocket hijacking): a missing or
  foreign one is 403 (``cross_origin``). No credentials, or invalid ones: 401.
- organization: ``?organization_id=`` (400 when malformed, 404 when unknown, 403 when the user is
  not a member); it may be left out when the user belongs to exactly one organization (else 400).
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from litestar import WebSocket, websocket
from litestar.handlers import WebsocketRouteHandler

from vk_hive.api.access import member_of_org
from vk_hive.api.deps import own_origins
from vk_hive.api.problems import STATUS
from vk_hive.auth.browser import COOKIE_NAME
from vk_hive.auth.principal import Principal, authenticate, authenticate_cookie
from vk_hive.context import HiveContext
from vk_hive.errors import DomainError, Forbidden, InvalidInput, Unauthorized, Unavailable
from vk_hive.gateway import Gateway
from vk_hive.gateway.denial import deny_handshake
from vk_hive.tenancy import repository as tenancy_repo
from vk_hive.userstream.session import UserSession

__all__ = ["user_socket"]

log = structlog.get_logger("vk_hive.userstream")


async def _principal(socket: WebSocket[Any, Any, Any], ctx: HiveContext) -> Principal:
    inactivity_s = ctx.settings.session_inactivity_s
    header = socket.headers.get("authorization")
    if header is not None:
        return await authenticate(ctx.database, ctx.signer, header, inactivity_s=inactivity_s)
    cookie = socket.cookies.get(COOKIE_NAME)
    if not cookie:
        raise Unauthorized(
            "missing_token: send 'Authorization: Bearer <token>' or the browser session cookie"
        )
    origin = socket.headers.get("origin")
    own = own_origins(socket, ctx)
    if origin is None or origin.rstrip("/").lower() not in own:
        raise Forbidden(
            "cross_origin: a handshake authenticated by the session cookie must come from a "
            "page of this hive (its Origin)",
            code="cross_origin",
        )
    return await authenticate_cookie(
        ctx.database,
        cookie,
        method="GET",
        origin=origin,
        own_origins=own,
        csrf_token=None,
        inactivity_s=inactivity_s,
    )


async def _organization(
    socket: WebSocket[Any, Any, Any], ctx: HiveContext, principal: Principal
) -> uuid.UUID:
    raw = socket.query_params.get("organization_id")
    async with ctx.database.acquire() as conn:
        if raw is None:
            orgs = await tenancy_repo.list_user_organizations(conn, principal.user_id)
            if len(orgs) != 1:
                raise InvalidInput(
                    f"organization_id is required: the user belongs to {len(orgs)} organizations",
                    code="organization_required",
                )
            return orgs[0].id
        try:
            org_id = uuid.UUID(raw)
        except ValueError:
            raise InvalidInput("organization_id is not a UUID") from None
        membership = await member_of_org(conn, org_id, principal)
    return membership.org_id


async def _serve(socket: WebSocket[Any, Any, Any]) -> None:
    ctx: HiveContext = socket.app.state.hive
    gateway = ctx.gateway
    try:
        if not isinstance(gateway, Gateway) or not gateway.running:
            raise Unavailable("the hive is not serving streams")
        principal = await _principal(socket, ctx)
        org_id = await _organization(socket, ctx, principal)
    except DomainError as exc:
        status = next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 400)
        log.info("user_ws.refused", status=status, code=exc.code)
        await deny_handshake(socket, status, exc.code, exc.detail)
        return
    session = UserSession(
        gateway.deps,
        gateway.watchers,
        socket,
        organization_id=org_id,
        user_id=principal.user_id,
    )
    await session.run()


user_socket: WebsocketRouteHandler = websocket("/ws", name="user_socket")(_serve)
"""The ``/v1/ws`` route (mounted under ``/v1``)."""
