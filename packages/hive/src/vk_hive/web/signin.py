"""Sign-in by login link, the sign-in page and sign-out, and what every page shares: the
session lookup, the security headers, the redirect to ``/login``.

- ``GET /login/{token}``: a valid, unused, unexpired link (:mod:`vk_hive.auth.browser`) starts a
  browser session, sets its cookie (``HttpOnly``, ``SameSite=Lax``, ``Path=/``, ``Secure`` when
  the request came over TLS) and redirects 303 to ``/``; any other link gets one 400 answer
  that does not say why nor whose (an HTML page when the client accepts ``text/html``, else the
  problem details body of every error). Rate limited like the other auth endpoints.
- ``GET /login``: a sign-in page without data.
- ``POST /logout``: CSRF-checked (the ``X-CSRF-Token`` header or a ``csrf_token`` form field);
  deletes the session, clears the cookie and redirects 303 to ``/login``.

Every page answers with :data:`PAGE_HEADERS`: ``Cache-Control: no-store`` and a
Content-Security-Policy that lets the page load scripts, styles and connections from the hive
itself only (no inline script or style: page data travels in ``data-`` attributes and a
``<script type="application/json">`` block).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from vk_hive.api.deps import Ctx, own_origins
from vk_hive.api.ratelimit import AUTH_LIMITED
from vk_hive.auth.browser import (
    COOKIE_NAME,
    CSRF_HEADER,
    BrowserSession,
    end_browser_session,
    find_browser_session,
    redeem_login_link,
    start_browser_session,
)
from vk_hive.auth.principal import check_csrf
from vk_hive.context import HiveContext
from vk_hive.errors import InvalidInput

__all__ = [
    "CSP",
    "PAGE_HEADERS",
    "login_page",
    "logout",
    "page",
    "redirect",
    "signed_in",
    "use_login_link",
]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Scripts, styles, images and connections (``fetch``, the ``/v1/ws`` WebSocket) from the hive's
own origin only; no inline script or style attribute; never framed."""

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    # `same-origin`, not `no-referrer`: with no-referrer a browser sends `Origin: null` on the
    # page's own form posts, which the CSRF check must refuse.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
}

_INVALID_LINK = "This sign-in link is not valid: it is unknown, already used or expired"


def page(template: str, context: dict[str, Any], *, status: int = 200) -> Template:
    """A rendered page with :data:`PAGE_HEADERS`."""
    return Template(template, context=context, status_code=status, headers=PAGE_HEADERS)


def redirect(path: str) -> Redirect:
    return Redirect(path, status_code=303, headers={"Cache-Control": "no-store"})


async def signed_in(request: Request[Any, Any, Any], ctx: HiveContext) -> BrowserSession | None:
    """The live browser session of the request's cookie, or ``None``."""
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return None
    async with ctx.database.acquire() as conn:
        return await find_browser_session(
            conn, cookie, inactivity_s=ctx.settings.session_inactivity_s
        )


@get("/login/{token:str}", include_in_schema=False, opt=AUTH_LIMITED)
async def use_login_link(
    request: Request[Any, Any, Any], ctx: Ctx, token: FromPath[str]
) -> Response[Any]:
    async with ctx.database.transaction() as conn:
        user_id = await redeem_login_link(conn, token)
        cookie = None if user_id is None else await start_browser_session(conn, user_id)
    if cookie is None:
        if "text/html" not in request.headers.get("accept", ""):
            raise InvalidInput(_INVALID_LINK, code="invalid_login_link")
        return page("link_invalid.html", {"message": _INVALID_LINK}, status=400)
    response = redirect("/")
    response.set_cookie(
        Cookie(
            key=COOKIE_NAME,
            value=cookie,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    )
    return response


@get("/login", include_in_schema=False)
async def login_page() -> Template:
    return page("login.html", {})


@post("/logout", include_in_schema=False, status_code=303)
async def logout(request: Request[Any, Any, Any], ctx: Ctx) -> Response[Any]:
    session = await signed_in(request, ctx)
    if session is not None:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.content_type[0] == RequestEncodingType.URL_ENCODED:
            field = (await request.form()).get("csrf_token")
            presented = field if isinstance(field, str) else None
        check_csrf(
            session.csrf_token,
            origin=request.headers.get("origin"),
            own_origins=own_origins(request, ctx),
            presented=presented,
        )
        async with ctx.database.acquire() as conn:
            await end_browser_session(conn, session.session_id)
    response = redirect("/login")
    response.delete_cookie(COOKIE_NAME, path="/")
    return response
