"""Bad input on every route of the local API is a 4xx JSON error with a detail, never a 500.

The cases are generated from the app's own route table, so a new endpoint is covered as soon as it
is mounted: invalid UUIDs in the path, unknown ids, malformed JSON, wrong JSON shapes, wrong field
types, unknown enum values, oversized strings, NUL bytes, unknown fields and bad query values.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.testing import AsyncTestClient

from vk_node.app import create_app
from vk_node.settings import load_settings

_SKIP_PARAMS = {"store", "ctx", "data", "request", "state"}
_PLAUSIBLE: dict[str, Any] = {
    "name": "n",
    "title": "t",
    "description": "d",
    "git_repo_path": "/nonexistent/repo",
    "status": "done",
    "executor": "SCRIPT",
    "base_branch": "main",
    "template_name": "tmpl",
    "content": "c",
    "value": "v",
    "prompt": "p",
    "queued": True,
    "color": "#112233",
    "icon": "tag",
}


def _routes() -> list[tuple[str, str, HTTPRouteHandler]]:
    app = create_app(load_settings(env={"HOME": "/nonexistent"}).settings)
    found = []
    for route in app.routes:
        if not route.path.startswith("/api"):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                found.append((method, route.path, handler))
    return found


ROUTES = _routes()


def _body_fields(handler: HTTPRouteHandler) -> dict[str, Any]:
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return {}
    hints = typing.get_type_hints(data.annotation, include_extras=True)
    return {f.name: hints[f.name] for f in msgspec.structs.fields(data.annotation)}


def _query_names(handler: HTTPRouteHandler, path: str) -> list[str]:
    params = handler.parsed_fn_signature.parameters
    return [n for n in params if n not in _SKIP_PARAMS and "{" + n + ":" not in path]


def _path(path: str, ids: dict[str, str]) -> str:
    out = path
    for name, value in ids.items():
        out = out.replace("{" + name + ":uuid}", value).replace("{" + name + ":str}", value)
    return out


def _bad_bodies(fields: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    yield "malformed", b'{"bad json'
    yield "array", b"[1, 2]"
    yield "string", b'"x"'
    yield "empty", b""
    yield "unknown-field", msgspec.json.encode({"surely_unknown": 1})
    for name in fields:
        base = {k: _PLAUSIBLE.get(k, str(uuid4())) for k in fields}
        for label, value in (
            ("int", 12345678901234567890123),
            ("object", {"a": 1}),
            ("huge", "x" * 60_000),
            ("nul", "a\x00b"),
            ("enum", "BOGUS VALUE"),
            ("uuid", "not-a-uuid"),
        ):
            yield f"{name}-{label}", msgspec.json.encode({**base, name: value})


async def _ids(client: AsyncTestClient[Litestar], repo: Path) -> dict[str, str]:
    """Real ids of existing rows, so handlers run past their lookups."""
    project = (
        await client.post("/api/projects", json={"name": "p", "git_repo_path": str(repo)})
    ).json()
    task = (
        await client.post("/api/tasks", json={"project_id": project["id"], "title": "t"})
    ).json()
    attempt = (
        await client.post(
            "/api/task-attempts",
            json={"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"},
        )
    ).json()
    label = (await client.post("/api/labels", json={"name": "l"})).json()
    template = (
        await client.post("/api/templates", json={"template_name": "t", "content": "c"})
    ).json()
    variable = (
        await client.post(f"/api/tasks/{task['id']}/variables", json={"name": "VAR", "value": "v"})
    ).json()
    return {
        "project_id": project["id"],
        "task_id": task["id"],
        "attempt_id": attempt["id"],
        "label_id": label["id"],
        "template_id": template["id"],
        "variable_id": variable["id"],
        "process_id": str(uuid4()),
        "draft_type": "follow_up",
    }


def _check(response: Any, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("detail"), str), what
        assert body.get("status_code") == response.status_code, what


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path", "handler"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
async def test_bad_input_is_a_4xx(
    client: AsyncTestClient[Litestar], git_repo: Path, method: str, path: str, handler: Any
) -> None:
    """Every kind of bad input on this route yields a JSON 4xx error with a detail."""
    ids = await _ids(client, git_repo)
    fields = _body_fields(handler)
    queries = _query_names(handler, path)
    unknown = {k: (v if k == "draft_type" else str(uuid4())) for k, v in ids.items()}
    invalid = {k: ("bogus" if k == "draft_type" else "not-a-uuid") for k in ids}

    for label, target in (("invalid-id", invalid), ("unknown-id", unknown)):
        r = await client.request(method, _path(path, target), json=_PLAUSIBLE if fields else None)
        _check(r, f"{method} {path} {label}")
        if label == "invalid-id" and "{" in path:
            assert r.status_code in (400, 404)

    real = _path(path, ids)
    if fields:
        for label, body in _bad_bodies(fields):
            r = await client.request(
                method, real, content=body, headers={"content-type": "application/json"}
            )
            _check(r, f"{method} {path} body {label}")
    for name in queries:
        for value in ("not-a-uuid", "-1", "99999999999999999999999", "maybe", "a\x00b", "x" * 5000):
            r = await client.request(method, real, params={**ids, name: value})
            _check(r, f"{method} {path} query {name}={value[:20]!r}")
    r = await client.request(method, real + "%00")
    _check(r, f"{method} {path} NUL in path")
