"""The hive holds its input to what it declares, on a real hive and real PostgreSQL.

- ``GET /v1/tasks/{id}/progress`` answers like every other ``/v1/tasks/{id}/...`` route: 200 for
  a member, 403 for another organization's user, 404 for an id that names nothing.
- Every bounded query (and path) parameter refuses a negative, out-of-range, non-numeric or huge
  value with 400 naming it; in-range values still work.
- JSON bodies are typed strictly: ``0``/``1`` or ``"true"`` for a boolean, ``"5"`` or ``1.5``
  for an integer and a number for a string are 400 naming the field; UUIDs and enums as JSON
  strings, defaults and nulls of optional fields, and ``1.0`` for an integer (JSON Schema's
  ``integer``, as the OpenAPI document says) still work.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from support.postgres import PostgresServer
from vk_hive.app import create_app
from vk_hive.settings import load_settings
from vk_shared.wire.common import INT64_MAX

from .world import World, world_on

pytestmark = pytest.mark.asyncio(loop_scope="module")

HUGE = "99999999999999999999999"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(pg_server: PostgresServer, hive_template: str) -> AsyncIterator[World]:
    async with world_on(pg_server, hive_template, "strict") as built:
        yield built


def _assert_refused(r: httpx.Response, name: str) -> None:
    assert r.status_code == 400, (name, r.status_code, r.text)
    body = r.json()
    assert body["code"] == "validation_failed", body
    assert repr(name) in body["detail"] or name in body["detail"], (name, body["detail"])


# --- progress answers like the other task routes ------------------------------------------------


async def test_progress_answers_like_the_other_task_routes(world: World) -> None:
    """A member reads the task's progress (200); another organization's admin gets the 403 that
    /executions and /assignments give; an unknown task id is 404."""
    c, task = world.hive.client, world.ids["task_id"]
    r = await c.get(f"/v1/tasks/{task}/progress", headers=world.member.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"events": [], "next_after": None}
    for route in ("progress", "executions", "assignments", "logs"):
        r = await c.get(f"/v1/tasks/{task}/{route}", headers=world.outsider.headers)
        assert r.status_code == 403, (route, r.text)
        assert r.json()["code"] == "forbidden"
        assert task not in r.text
    r = await c.get(f"/v1/tasks/{uuid.uuid4()}/progress", headers=world.member.headers)
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "not_found"


# --- bounded parameters --------------------------------------------------------------------------


_PAGES = [
    ("/v1/activity", "after", 0, INT64_MAX),
    ("/v1/activity", "limit", 1, 500),
    ("/v1/tasks/{task_id}/logs", "after", 0, INT64_MAX),
    ("/v1/tasks/{task_id}/logs", "limit", 1, 500),
    ("/v1/tasks/{task_id}/progress", "after", 0, INT64_MAX),
    ("/v1/tasks/{task_id}/progress", "limit", 1, 500),
    ("/v1/execution-processes/{process_id}/logs", "after_id", 0, INT64_MAX),
    ("/v1/execution-processes/{process_id}/logs", "limit", 1, 500),
    ("/v1/organizations/{org_id}/webhooks/{webhook_id}/deliveries", "limit", 1, 200),
]
_VERSIONS = [
    "/v1/tasks/{task_id}",
    "/v1/swarm/labels/{label_id}",
    "/v1/swarm/templates/{template_id}",
]


def _bad_integers(low: int, high: int) -> list[str]:
    return [str(low - 1), "-1", str(high + 1), HUGE, "abc", "1.5", ""]


def _page(world: World, template: str, name: str, value: str) -> Any:
    """The request of one page of ``template`` with ``name=value``."""
    params = {name: value}
    if template == "/v1/activity":
        params["project_id"] = world.ids["project_id"]
    url = template.format_map(world.ids)
    return world.hive.client.get(url, params=params, headers=world.admin.headers)


@pytest.mark.parametrize(("template", "name", "low", "high"), _PAGES)
async def test_paging_parameters_refuse_values_out_of_their_bounds(
    world: World, template: str, name: str, low: int, high: int
) -> None:
    """Each cursor and page limit refuses a value below or above its bounds, a huge number, a
    non-number and an empty value with 400 naming it, and takes its bounds themselves."""
    for value in _bad_integers(low, high):
        _assert_refused(await _page(world, template, name, value), name)
    for value in (low, high):
        r = await _page(world, template, name, str(value))
        assert r.status_code == 200, (name, value, r.text)


@pytest.mark.parametrize("template", _VERSIONS)
async def test_an_expected_version_must_be_a_positive_int64(world: World, template: str) -> None:
    """DELETE with ``version`` of 0, negative, beyond int64, huge or not a number is 400 naming
    ``version`` (and deletes nothing)."""
    c, h = world.hive.client, world.admin.headers
    url = template.format_map(world.ids)
    for value in _bad_integers(1, INT64_MAX):
        _assert_refused(await c.delete(url, params={"version": value}, headers=h), "version")
    assert (await c.get(url, headers=h)).status_code == 200


async def test_oauth_callback_values_and_invitation_tokens_have_a_length_limit(
    world: World,
) -> None:
    """The OAuth callback's ``state``, ``code`` and ``error`` over 2,048 characters and an
    invitation token over 4,096 characters are 400 naming them."""
    c = world.hive.client
    for name in ("state", "code", "error"):
        r = await c.get("/v1/oauth/github/callback", params={name: "x" * 2049})
        _assert_refused(r, name)
    token = "t" * 4097
    _assert_refused(await c.get(f"/v1/invitations/{token}"), "token")
    r = await c.post(f"/v1/invitations/{token}/accept", headers=world.member.headers)
    _assert_refused(r, "token")


async def test_every_bounded_parameter_is_tested() -> None:
    """The parameters tested above are all the hive's parameters with declared bounds."""
    app = create_app(load_settings(env={}, overrides={"jwt_secret": "k" * 40}))
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            for name, field in handler.parsed_fn_signature.parameters.items():
                kwarg = field.kwarg_definition
                bounds = ("ge", "le", "gt", "lt", "min_length", "max_length")
                if name != "data" and any(getattr(kwarg, b, None) is not None for b in bounds):
                    found.add((route.path.split("{")[0].rstrip("/"), name))
    tested = {(t.split("{")[0].rstrip("/"), n) for t, n, _, _ in _PAGES}
    tested |= {(t.split("{")[0].rstrip("/"), "version") for t in _VERSIONS}
    tested |= {("/v1/oauth", n) for n in ("oauth_state", "code", "error")}
    tested |= {("/v1/invitations", "token")}
    assert found == tested


# --- strict JSON bodies --------------------------------------------------------------------------


async def _new_task(world: World, **fields: Any) -> httpx.Response:
    body = {"project_id": world.ids["project_id"], "title": "strict", **fields}
    return await world.hive.client.post("/v1/tasks", json=body, headers=world.admin.headers)


@pytest.mark.parametrize("value", [1, 0, "true", "1", None])
async def test_a_boolean_field_takes_only_true_or_false(world: World, value: object) -> None:
    """``start_attempt`` of 1, 0, "true", "1" or null is 400 naming the field; nothing is
    created."""
    before = await world.hive.client.get(
        "/v1/tasks", params={"project_id": world.ids["project_id"]}, headers=world.admin.headers
    )
    _assert_refused(await _new_task(world, start_attempt=value), "start_attempt")
    after = await world.hive.client.get(
        "/v1/tasks", params={"project_id": world.ids["project_id"]}, headers=world.admin.headers
    )
    assert len(after.json()) == len(before.json())


async def test_wrong_json_types_are_refused_naming_the_field(world: World) -> None:
    """An integer given as a string or a fraction, a boolean as a number and a string as a
    number are 400 naming the field, on several routes."""
    c, h, ids = world.hive.client, world.admin.headers, world.ids
    task = f"/v1/tasks/{ids['task_id']}"
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("PATCH", task, {"version": "5"}, "version"),
        ("PATCH", task, {"version": 1.5}, "version"),
        ("PATCH", task, {"archived": 0}, "archived"),
        ("PATCH", task, {"title": 5}, "title"),
        ("POST", f"{task}/archive", {"archived": 1}, "archived"),
        ("POST", "/v1/tasks", {"project_id": 5, "title": "t"}, "project_id"),
        ("POST", "/v1/organizations", {"name": 123}, "name"),
        ("POST", "/v1/swarm/labels", {"organization_id": ids["org_id"], "name": 7}, "name"),
        ("PATCH", f"/v1/swarm/labels/{ids['label_id']}", {"version": "1"}, "version"),
    ]
    for method, url, body, field in cases:
        r = await c.request(method, url, json=body, headers=h)
        _assert_refused(r, field)
    assert (await c.get(task, headers=h)).json()["archived_at"] is None


async def test_legitimate_bodies_still_work(world: World) -> None:
    """UUIDs as strings, an enum by its value, defaults and nulls of optional fields, real
    booleans, and integers (also written with a zero fraction) are accepted."""
    c, h = world.hive.client, world.admin.headers
    r = await _new_task(world, description=None, start_attempt=False, node_id=None)
    assert r.status_code == 201, r.text
    task = r.json()["task"]
    url = f"/v1/tasks/{task['id']}"
    version = float(task["version"])  # 1.0: an integer to JSON Schema (the OpenAPI document)
    r = await c.patch(url, json={"status": "in-progress", "version": version}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in-progress"
    r = await c.post(f"{url}/archive", json={"archived": True}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["archived_at"] is not None
    r = await c.patch(url, json={"archived": False, "title": "again"}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["archived_at"], r.json()["title"]) == (None, "again")
