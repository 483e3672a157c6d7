"""Browser sign-in over real HTTP to a real hive: single-use login links, the session cookie, the
CSRF rule for cookie-authenticated writes, sign-out and the placeholder home page."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest

from vk_hive.auth.browser import COOKIE_NAME, issue_login_link

from .conftest import Actor, Hive

pytestmark = pytest.mark.asyncio


async def _link(hive: Hive, actor: Actor) -> str:
    async with hive.db.transaction() as conn:
        issued = await issue_login_link(conn, actor.user_id)
    return f"/login/{issued.token}"


def _browser(hive: Hive, cookie: str | None = None) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=hive.url, timeout=10.0)
    if cookie is not None:
        client.cookies.set(COOKIE_NAME, cookie)
    return client


async def _sign_in(hive: Hive, actor: Actor) -> tuple[str, str]:
    """Opens a fresh link; the session cookie's value and the page's CSRF token."""
    async with _browser(hive) as browser:
        r = await browser.get(await _link(hive, actor))
        assert r.status_code == 303, r.text
        cookie = browser.cookies[COOKIE_NAME]
        page = await browser.get("/")
        assert page.status_code == 200, page.text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert match is not None
    return cookie, match.group(1)


async def _project_count(hive: Hive, org_id: uuid.UUID) -> int:
    async with hive.db.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM swarm_projects WHERE organization_id = $1", org_id
        )
    return count


async def test_a_login_link_signs_in_once_and_home_lists_the_users_projects(hive: Hive) -> None:
    """The link sets an HttpOnly, SameSite=Lax session cookie (not Secure over http) and
    redirects to ``/``, which greets the user and lists their projects, not another user's;
    the same link then no longer works."""
    alice, bob = await hive.user(), await hive.user()
    for actor, name in ((alice, "alpha-project"), (bob, "bobs-secret-project")):
        r = await hive.client.post(
            "/v1/swarm/projects",
            json={"organization_id": str(actor.personal_org_id), "name": name},
            headers=actor.headers,
        )
        assert r.status_code == 201, r.text
    link = await _link(hive, alice)
    async with _browser(hive) as browser:
        r = await browser.get(link)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/"
        set_cookie = r.headers["set-cookie"]
        assert set_cookie.startswith(f"{COOKIE_NAME}=")
        attributes = {a.strip().lower() for a in set_cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", "path=/"} <= attributes
        assert "secure" not in attributes
        page = await browser.get("/")
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "alpha-project" in page.text
        assert "bobs-secret-project" not in page.text
        assert alice.email.split("@")[0] in page.text
        assert '<meta name="csrf-token" content="' in page.text
        me = await browser.get("/v1/me")
        assert me.status_code == 200, me.text
        assert me.json()["user"]["id"] == str(alice.user_id)
    async with _browser(hive) as again:
        r = await again.get(link)
        assert r.status_code == 400
        assert COOKIE_NAME not in again.cookies
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "invalid_login_link"
        page = await again.get(link, headers={"Accept": "text/html,*/*;q=0.8"})
        assert page.status_code == 400
        assert page.headers["content-type"].startswith("text/html")
        assert "not valid" in page.text


async def test_unknown_expired_and_concurrently_used_links_are_refused_alike(hive: Hive) -> None:
    """An unknown token, an expired link and the loser of two concurrent uses of one link all get
    the same 400 page, which names no user; nothing signs in."""
    alice = await hive.user()
    expired = await _link(hive, alice)
    async with hive.db.acquire() as conn:
        await conn.execute(
            "UPDATE login_links SET expires_at = now() - interval '1 minute' WHERE user_id = $1",
            alice.user_id,
        )
    unknown = "/login/" + "x" * 43
    for accept in ("*/*", "text/html"):
        refused = [
            await hive.client.get(path, headers={"Accept": accept}) for path in (expired, unknown)
        ]
        for r in refused:
            assert r.status_code == 400, r.text
            assert "set-cookie" not in r.headers
            assert alice.email not in r.text
        assert refused[0].text == refused[1].text

    link = await _link(hive, alice)
    answers = await asyncio.gather(*(hive.client.get(link) for _ in range(5)))
    assert sorted(r.status_code for r in answers) == [303, 400, 400, 400, 400]


async def test_the_cookie_is_secure_when_the_request_came_over_tls(hive: Hive) -> None:
    """Behind the trusted proxy (127.0.0.1) saying ``X-Forwarded-Proto: https`` the cookie is
    Secure."""
    alice = await hive.user()
    r = await hive.client.get(await _link(hive, alice), headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 303, r.text
    attributes = {a.strip().lower() for a in r.headers["set-cookie"].split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= attributes


async def test_cookie_writes_need_the_csrf_token_and_the_hives_own_origin(hive: Hive) -> None:
    """A cookie-authenticated POST without X-CSRF-Token, with another session's token or with a
    foreign Origin is refused (403, problem body) and writes nothing; with the session's token
    (and no Origin, or the hive's own) it succeeds. A Bearer POST needs no CSRF token."""
    alice, mallory = await hive.user(), await hive.user()
    cookie, csrf = await _sign_in(hive, alice)
    _, foreign_csrf = await _sign_in(hive, mallory)
    org = alice.personal_org_id

    def body(name: str) -> dict[str, str]:
        return {"organization_id": str(org), "name": name}

    async with _browser(hive, cookie) as browser:
        for headers in (
            {},
            {"X-CSRF-Token": ""},
            {"X-CSRF-Token": foreign_csrf},
            {"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
            {"X-CSRF-Token": csrf, "Origin": "null"},
        ):
            r = await browser.post("/v1/swarm/projects", json=body("refused"), headers=headers)
            assert r.status_code == 403, (headers, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "csrf"
        assert await _project_count(hive, org) == 0

        r = await browser.post(
            "/v1/swarm/projects", json=body("one"), headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 201, r.text
        r = await browser.post(
            "/v1/swarm/projects",
            json=body("two"),
            headers={"X-CSRF-Token": csrf, "Origin": hive.url},
        )
        assert r.status_code == 201, r.text
        # A safe method needs no token.
        assert (await browser.get(f"/v1/swarm/projects?organization_id={org}")).status_code == 200

    r = await hive.client.post("/v1/swarm/projects", json=body("three"), headers=alice.headers)
    assert r.status_code == 201, r.text
    assert await _project_count(hive, org) == 3


async def test_logout_needs_csrf_and_invalidates_the_cookie(hive: Hive) -> None:
    """POST /logout without the token is refused; with it the session is gone and the cookie
    cleared: the old cookie then gets 401 on the API and a redirect on ``/``."""
    alice = await hive.user()
    cookie, csrf = await _sign_in(hive, alice)
    async with _browser(hive, cookie) as browser:
        r = await browser.post("/logout")
        assert r.status_code == 403, r.text
        assert (await browser.get("/v1/me")).status_code == 200

        r = await browser.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/login"
        assert f'{COOKIE_NAME}=""' in r.headers["set-cookie"]
    async with _browser(hive, cookie) as old:
        me = await old.get("/v1/me")
        assert me.status_code == 401, me.text
        assert me.headers["content-type"] == "application/problem+json"
        home = await old.get("/")
        assert home.status_code == 303
        assert home.headers["location"] == "/login"
    async with hive.db.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM auth_sessions WHERE user_id = $1", alice.user_id
            )
            == 0
        )


async def test_signed_out_visitors_get_no_data(hive: Hive) -> None:
    """``/`` without a (valid) cookie redirects to ``/login``, a page without data; the API
    without credentials is 401."""
    alice = await hive.user()
    await hive.client.post(
        "/v1/swarm/projects",
        json={"organization_id": str(alice.personal_org_id), "name": "private-name"},
        headers=alice.headers,
    )
    for cookie in (None, "forged-cookie-value"):
        async with _browser(hive, cookie) as browser:
            r = await browser.get("/")
            assert r.status_code == 303
            assert r.headers["location"] == "/login"
            assert "private-name" not in r.text
            assert (await browser.get("/v1/me")).status_code == 401
            page = await browser.get("/login")
            assert page.status_code == 200
            assert "private-name" not in page.text
            assert alice.email not in page.text
            assert "login link" in page.text.lower() or "sign-in link" in page.text.lower()
