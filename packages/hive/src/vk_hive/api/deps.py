"""Dependencies and request guards shared by every controller."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency

from vk_hive.auth.browser import COOKIE_NAME, CSRF_HEADER
from vk_hive.auth.principal import Principal, authenticate, authenticate_cookie
from vk_hive.context import HiveContext
from vk_hive.errors import Forbidden
from vk_hive.store.db import Database
from vk_hive.tenancy import repository as tenancy_repo

__all__ = [
    "Auth",
    "Ctx",
    "own_origins",
    "provide_ctx",
    "provide_db",
    "provide_principal",
    "require_admin",
    "require_member",
]

Ctx = NamedDependency[HiveContext]
"""The shared :class:`HiveContext` (settings, database, signer), injected as ``ctx``."""
Auth = NamedDependency[Principal]
"""The authenticated caller, injected as ``principal``; declaring it makes a route need a token."""


def provide_ctx(state: State) -> HiveContext:
    ctx: HiveContext = state.hive
    return ctx


def provide_db(state: State) -> Database:
    ctx: HiveContext = state.hive
    return ctx.database


_PAGE_SCHEME = {"ws": "http", "wss": "https"}
"""A WebSocket handshake reached ``ws(s)://``; the page that opened it has ``http(s)://``."""


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    scheme = _PAGE_SCHEME.get(scheme.lower(), scheme)
    return f"{scheme}://{rest.split('/', 1)[0]}".lower()


def own_origins(connection: ASGIConnection[Any, Any, Any, Any], ctx: HiveContext) -> frozenset[str]:
    """The hive's own origins: of its public URL, and the one the request (or WebSocket
    handshake) itself reached (its scheme as uvicorn saw it behind a trusted proxy, and its
    ``Host``)."""
    return frozenset({_origin(ctx.settings.base_url), _origin(str(connection.url))})


async def provide_principal(request: Request[Any, Any, Any], state: State) -> Principal:
    """The caller: a Bearer token when an ``Authorization`` header is sent, else the browser
    session cookie (CSRF-checked for state-changing methods), else 401."""
    ctx: HiveContext = state.hive
    header = request.headers.get("authorization")
    cookie = request.cookies.get(COOKIE_NAME)
    if header is None and cookie:
        return await authenticate_cookie(
            ctx.database,
            cookie,
            method=request.method,
            origin=request.headers.get("origin"),
            own_origins=own_origins(request, ctx),
            csrf_token=request.headers.get(CSRF_HEADER),
            inactivity_s=ctx.settings.session_inactivity_s,
        )
    return await authenticate(
        ctx.database,
        ctx.signer,
        request.headers.get("authorization"),
        inactivity_s=ctx.settings.session_inactivity_s,
    )


async def require_member(conn: Any, org_id: uuid.UUID, principal: Principal) -> str:
    """The caller's role in the organization; 403 when not a member."""
    role = await tenancy_repo.get_role(conn, org_id, principal.user_id)
    if role is None:
        raise Forbidden("not a member of this organization")
    return role


async def require_admin(conn: Any, org_id: uuid.UUID, principal: Principal) -> None:
    if await require_member(conn, org_id, principal) != "admin":
        raise Forbidden("admin role required")
