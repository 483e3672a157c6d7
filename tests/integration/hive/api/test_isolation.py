"""Organization isolation and role matrix over every REST route of the hive."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from litestar.routes import HTTPRoute

from support.postgres import PostgresServer
from vk_hive.app import create_app
from vk_hive.settings import load_settings

from .routes import ROUTES, Ep, normalise
from .world import World, world_on

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(pg_server: PostgresServer, hive_template: str) -> AsyncIterator[World]:
    async with world_on(pg_server, hive_template, "iso") as built:
        yield built


def _id(ep: Ep) -> str:
    return f"{ep.method} {ep.path}"


async def _call(world: World, ep: Ep, headers: dict[str, str]) -> tuple[int, object]:
    r = await world.hive.client.request(
        ep.method,
        ep.url(world.ids),
        params=ep.params(world.ids),
        json=ep.json(world.ids),
        headers=headers,
    )
    return r.status_code, (r.json() if r.content else None)


def _assert_error_shape(body: object, status: int) -> None:
    assert isinstance(body, dict)
    assert set(body) == {"type", "title", "status", "detail", "code"}
    assert body["status"] == status
    assert body["type"] == "urn:vk-swarm:problem:" + body["code"]


PROTECTED = [ep for ep in ROUTES if ep.role != "public"]
ORG_SCOPED = [ep for ep in ROUTES if ep.role in ("member", "admin")]
ADMIN_ONLY = [ep for ep in ROUTES if ep.role == "admin"]


@pytest.mark.parametrize("ep", PROTECTED, ids=_id)
async def test_no_token_is_401(world: World, ep: Ep) -> None:
    """Every non-public route answers 401 with the JSON error shape when no token is sent."""
    status, body = await _call(world, ep, {})
    assert status == 401
    _assert_error_shape(body, 401)


@pytest.mark.parametrize("ep", ORG_SCOPED, ids=_id)
async def test_member_of_another_org_is_refused(world: World, ep: Ep) -> None:
    """An admin of another organization gets 403/404 on every org-scoped route and sees none of
    the organization's data."""
    status, body = await _call(world, ep, world.outsider.headers)
    assert status in (403, 404), body
    _assert_error_shape(body, status)
    text = str(body)
    for key in ("project_id", "node_id", "key_id", "template_id", "label_id", "invitation_token"):
        assert world.ids[key] not in text


@pytest.mark.parametrize("ep", ADMIN_ONLY, ids=_id)
async def test_plain_member_is_403_on_admin_routes(world: World, ep: Ep) -> None:
    """A plain member gets 403 where the organization admin (or the task's assignee) is needed."""
    status, body = await _call(world, ep, world.member.headers)
    assert status == 403, body
    _assert_error_shape(body, 403)


async def test_every_app_route_is_in_the_matrix() -> None:
    """The matrix covers every HTTP route the application serves (except the OpenAPI docs)."""
    app = create_app(load_settings(env={}, overrides={"jwt_secret": "k" * 40}))
    listed = {normalise(ep.path) for ep in ROUTES}
    missing: list[str] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith("/schema"):
            continue
        pattern = re.compile(
            "^" + re.escape(normalise(route.path)).replace(r"\{\}", r"(\{\}|[^/]+)") + "$"
        )
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            wanted = [
                ep
                for ep in ROUTES
                if ep.method == method and pattern.match(ep.path.format_map(_Keep()))
            ]
            if not wanted:
                missing.append(f"{method} {route.path}")
    assert not missing, missing
    assert listed


class _Keep(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{}"
