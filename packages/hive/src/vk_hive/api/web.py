"""The browser pages (outside ``/v1``, not in the OpenAPI document): sign-in by login link,
sign-out, and a placeholder home page listing the user's projects.

- ``GET /login/{token}``: a valid, unused, unexpired link (:mod:`vk_hive.auth.browser`) starts a
  browser session, sets its cookie (``HttpOnly``, ``SameSite=Lax``, ``Path=/``, ``Secure`` when
  the request came over TLS) and redirects 303 to ``/``; any other link gets one 400 answer
  that does not say why nor whose (an HTML page when the client accepts ``text/html``, else the
  problem details body of every error). Rate limited like the other auth endpoints.
- ``GET /login``: a sign-in page without data. ``GET /``: the signed-in user's page (with the
  CSRF token in ``<meta name="csrf-token">``), else 303 to ``/login``.
- ``POST /logout``: CSRF-checked (the ``X-CSRF-Token`` header or a ``csrf_token`` form field);
  deletes the session, clears the cookie and redirects 303 to ``/login``.
"""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Request, Router, get, post
from litestar.datastructures import Cookie
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import FromPath
from litestar.response import Redirect, Response

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
from vk_hive.store.repositories import swarm_projects
from vk_hive.tenancy import repository as tenancy_repo
from vk_shared.jsoncheck import refuse_bad_request

__all__ = ["web_router"]

_NO_STORE = {
    "Cache-Control": "no-store",
    # `same-origin`, not `no-referrer`: with no-referrer a browser sends `Origin: null` on the
    # page's own form posts, which the CSRF check must refuse.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
}


_INVALID_LINK = "This sign-in link is not valid: it is unknown, already used or expired"


def _page(title: str, body: str, *, status: int = 200, head: str = "") -> Response[str]:
    html = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>{head}</head>\n<body>\n{body}\n</body></html>\n"
    )
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=_NO_STORE)


def _redirect(path: str) -> Redirect:
    return Redirect(path, status_code=303, headers={"Cache-Control": "no-store"})


async def _session(request: Request[Any, Any, Any], ctx: HiveContext) -> BrowserSession | None:
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
        return _page(
            "Sign-in link not valid",
            f"<h1>Sign-in link not valid</h1>\n<p>{_INVALID_LINK}. Ask an administrator for a "
            'new one.</p>\n<p><a href="/login">Sign in</a></p>',
            status=400,
        )
    response = _redirect("/")
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
async def login_page() -> Response[str]:
    return _page(
        "Sign in",
        "<h1>Sign in to the hive</h1>\n<p>Open a sign-in link (an administrator makes one with "
        "<code>vk-hive admin login-link --email you@example.com</code>) or sign in with OAuth "
        "from the vk-swarm app.</p>",
    )


@get("/", include_in_schema=False)
async def home(request: Request[Any, Any, Any], ctx: Ctx) -> Response[Any]:
    session = await _session(request, ctx)
    if session is None:
        return _redirect("/login")
    sections: list[str] = []
    async with ctx.database.acquire() as conn:
        for org in await tenancy_repo.list_user_organizations(conn, session.user.id):
            projects = await swarm_projects.list_by_organization(conn, org.id)
            items = "".join(f"<li>{escape(p.name)}</li>" for p in projects) or "<li>none</li>"
            sections.append(f"<h2>{escape(org.name)}</h2>\n<ul>{items}</ul>")
    user = session.user
    name = user.first_name or user.username or user.email
    return _page(
        "vk-swarm hive",
        f"<h1>Hello, {escape(name)}</h1>\n" + "\n".join(sections) + "\n"
        '<form method="post" action="/logout">'
        f'<input type="hidden" name="csrf_token" value="{escape(session.csrf_token)}">'
        '<button type="submit">Sign out</button></form>',
        head=f'<meta name="csrf-token" content="{escape(session.csrf_token)}">',
    )


@post("/logout", include_in_schema=False, status_code=303)
async def logout(request: Request[Any, Any, Any], ctx: Ctx) -> Response[Any]:
    session = await _session(request, ctx)
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
    response = _redirect("/login")
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


def web_router() -> Router:
    """The browser pages, mounted at the root; bad requests (a body nested too deeply, …) are
    refused like on ``/v1``."""
    return Router(
        path="/",
        route_handlers=[use_login_link, login_page, home, logout],
        before_request=refuse_bad_request,
    )
