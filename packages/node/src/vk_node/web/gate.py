"""Who may read the board's pages, and the headers every board answer carries.

Pages are plain ``GET`` s that change nothing; every change goes through ``/api`` with ``fetch``
(JSON bodies, so the guard's cross-site and content-type checks apply to the board as to any
client). The guard's token check covers ``/api`` only, so when ``VK_NODE_API_TOKEN`` is set the
pages need it too — they show task titles, logs and diffs. A browser cannot put a header on a
navigation, so a page is also served to a request carrying the token in the ``vk_node_token``
cookie (the token in unpadded base64url, set by the board's script after the user typed it,
``SameSite=Strict``: no other site's page makes the browser send it). The cookie opens pages
only: ``/api`` still needs ``Authorization: Bearer`` (the board's script sends it from
``sessionStorage``). Without the token a page answers 401 with the token form and no data.

Headers: a Content-Security-Policy that allows only this node's own scripts, styles and
connections (no inline script or style, no framing), ``X-Frame-Options: DENY``, ``nosniff``,
``Referrer-Policy: same-origin`` and ``Cache-Control: no-store`` on pages.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.datastructures import ResponseHeader
from litestar.response import Template

from vk_node.api.guard import TOKEN_PROTOCOL_PREFIX, AccessPolicy, token_subprotocol
from vk_shared.jsoncheck import refuse_bad_request

__all__ = ["COOKIE", "CSP", "page_gate", "page_headers", "static_headers"]

COOKIE = "vk_node_token"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

_COMMON = (
    ResponseHeader(name="Content-Security-Policy", value=CSP),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
)


def page_headers() -> list[ResponseHeader]:
    return [*_COMMON, ResponseHeader(name="Cache-Control", value="no-store")]


def static_headers() -> list[ResponseHeader]:
    return list(_COMMON)


def _has_token(policy: AccessPolicy, request: Request[Any, Any, Any]) -> bool:
    scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and policy.token_matches(given.strip()):
        return True
    cookie = request.cookies.get(COOKIE, "")
    expected = token_subprotocol(policy.token).removeprefix(TOKEN_PROTOCOL_PREFIX)
    return bool(cookie) and hmac.compare_digest(
        cookie.encode("utf-8", "surrogateescape"), expected.encode()
    )


def page_gate(
    policy: AccessPolicy,
) -> Callable[[Request[Any, Any, Any]], Awaitable[Template | None]]:
    """``before_request`` of the page routes: bad URLs are refused like ``/api`` ones; with a
    token set, a request without it gets the token form (401) instead of the page."""

    async def gate(request: Request[Any, Any, Any]) -> Template | None:
        await refuse_bad_request(request)
        if not policy.token or _has_token(policy, request):
            return None
        return Template(
            "token.html",
            context={"title": "Token needed", "token_required": True},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="vk-node"'},
        )

    return gate
