"""Bad input on every route is a 4xx JSON error, never a 500."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from support.postgres import DatabaseFactory, PostgresServer

from .conftest import running_hive
from .routes import ROUTES, Ep
from .world import World, build_world

pytestmark = pytest.mark.asyncio(loop_scope="module")

HUGE = "x" * 300_000  # under the 1 MiB body limit: must be refused by field limits
WRONG_VALUES: list[Any] = [12345, None, True, [], {"a": 1}, "a\u0000b", "not-a-uuid", HUGE, -1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(pg_server: PostgresServer, hive_template: str) -> AsyncIterator[World]:
    factory = DatabaseFactory(pg_server, prefix="vk_hive")
    dsn = await factory.create("bad", template=hive_template)
    try:
        async with running_hive(dsn) as hive:
            yield await build_world(hive)
    finally:
        await factory.drop_all()


def _id(ep: Ep) -> str:
    return f"{ep.method} {ep.path}"


async def _send(world: World, ep: Ep, *, url: str | None = None, **kwargs: Any) -> None:
    r = await world.hive.client.request(
        ep.method,
        url or ep.url(world.ids),
        headers={**world.admin.headers, **kwargs.pop("headers", {})},
        **kwargs,
    )
    assert r.status_code < 500, (ep.method, url, kwargs.get("content"), r.text)
    if r.status_code >= 400:
        body = r.json()
        assert set(body) == {"status_code", "detail"}, body
        assert body["status_code"] == r.status_code


WITH_BODY = [ep for ep in ROUTES if ep.body is not None]
WITH_PATH_PARAMS = [ep for ep in ROUTES if "{" in ep.path]
WITH_QUERY = [ep for ep in ROUTES if ep.query]


@pytest.mark.parametrize("ep", WITH_BODY, ids=_id)
async def test_malformed_bodies_are_4xx(world: World, ep: Ep) -> None:
    """Non-JSON, non-object, NUL-carrying and oversized bodies give a 4xx JSON error."""
    params = ep.params(world.ids)
    for raw in (b"{not json", b"[]", b"42", b'"s"', b"", b'{"a": "\\u0000"}', b"\x00\x01"):
        await _send(
            world, ep, content=raw, params=params, headers={"content-type": "application/json"}
        )
    r = await world.hive.client.request(
        ep.method,
        ep.url(world.ids),
        content=b'{"name": "' + b"y" * 2_000_000 + b'"}',
        headers={**world.admin.headers, "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["status_code"] == 413


@pytest.mark.parametrize("ep", WITH_BODY, ids=_id)
async def test_wrong_field_values_are_4xx(world: World, ep: Ep) -> None:
    """Every field of a valid body replaced by wrong types, NUL bytes, invalid UUIDs, unknown
    enum values or huge strings never produces a 500."""
    valid = ep.json(world.ids)
    params = ep.params(world.ids)
    for key in valid:
        for value in WRONG_VALUES:
            await _send(world, ep, json={**valid, key: value}, params=params)
    await _send(world, ep, json={**valid, "unknown_field": 1}, params=params)


@pytest.mark.parametrize("ep", WITH_PATH_PARAMS, ids=_id)
async def test_invalid_path_parameters_are_4xx(world: World, ep: Ep) -> None:
    """A path parameter that is not a UUID (or holds NUL bytes or is huge) is a 4xx."""
    for bad in ("not-a-uuid", "%00", "a%00b", "0" * 5000, "00000000-0000-0000-0000-000000000000"):
        url = re.sub(r"\{[^}]+\}", bad, ep.path)
        await _send(world, ep, url=url, json=ep.json(world.ids), params=ep.params(world.ids))


@pytest.mark.parametrize("ep", WITH_QUERY, ids=_id)
async def test_invalid_query_parameters_are_4xx(world: World, ep: Ep) -> None:
    """Query parameters with invalid UUIDs, NUL bytes or negative numbers are a 4xx."""
    for key in ep.query:
        for bad in ("not-a-uuid", "\x00", "", "-5", "x" * 5000):
            params = {**ep.params(world.ids), key: bad}
            await _send(world, ep, params=params, json=ep.json(world.ids))
    if ep.path in ("/v1/activity", "/v1/tasks/{task_id}/logs"):
        for extra in ({"after": "-1"}, {"limit": "0"}, {"limit": "100000"}, {"after": "abc"}):
            await _send(world, ep, params={**ep.params(world.ids), **extra})
