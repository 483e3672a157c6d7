"""The node holds its input to what it declares, on a real SQLite file, real git and a real
SCRIPT run.

- Every bounded query parameter refuses a negative, out-of-range, non-numeric or huge value with
  400 naming it; in-range values still work.
- JSON bodies are typed strictly: ``0``/``1`` or ``"true"`` for a boolean, ``"5"`` or ``5.5``
  for an integer and a number for a string are 400 naming the field; UUIDs and enums as JSON
  strings, partial updates and nulls of optional fields still work.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from vk_shared.protocol import MAX_NAME_LENGTH
from vk_shared.wire.common import INT64_MAX

from .conftest import run_script_attempt

Client = AsyncTestClient[Litestar]

pytestmark = pytest.mark.asyncio

HUGE = "99999999999999999999999"


def _assert_refused(r: httpx.Response, name: str) -> None:
    assert r.status_code == 400, (name, r.status_code, r.text)
    body = r.json()
    assert body["code"] == "validation_failed", body
    assert repr(name) in body["detail"], (name, body["detail"])


def _bad_integers(low: int, high: int) -> list[str]:
    return [str(low - 1), "-1", str(high + 1), HUGE, "abc", "1.5", ""]


async def _project(client: Client, repo: Path, **fields: Any) -> dict[str, Any]:
    body = {"name": f"p-{uuid.uuid4().hex[:6]}", "git_repo_path": str(repo), **fields}
    r = await client.post("/api/projects", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _task(client: Client, project: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/api/tasks", json={"project_id": project["id"], "title": "t"})
    assert r.status_code == 201, r.text
    return dict(r.json())


# --- bounded parameters --------------------------------------------------------------------------


async def test_paging_parameters_refuse_values_out_of_their_bounds(
    client: Client, git_repo: Path
) -> None:
    """A process's log ``after`` and ``limit`` and a webhook's delivery ``limit`` refuse values
    below or above their bounds, huge numbers, non-numbers and empty values with 400 naming
    them, and take their bounds themselves."""
    task = await _task(client, await _project(client, git_repo))
    _, run = await run_script_attempt(client, task["id"])
    r = await client.post("/api/webhooks", json={"name": "h", "url": "http://127.0.0.1:9/h"})
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    pages = [
        (f"/api/execution-processes/{run['id']}/logs", "after", 0, INT64_MAX),
        (f"/api/execution-processes/{run['id']}/logs", "limit", 1, 1000),
        (f"/api/webhooks/{hook}/deliveries", "limit", 1, 200),
    ]
    for url, name, low, high in pages:
        for value in _bad_integers(low, high):
            _assert_refused(await client.get(url, params={name: value}), name)
        for good in (low, high):
            r = await client.get(url, params={name: str(good)})
            assert r.status_code == 200, (url, name, good, r.text)


async def test_a_project_name_filter_has_the_length_of_a_name(
    client: Client, git_repo: Path
) -> None:
    """``GET /api/projects?name=`` longer than a name can be is 400 naming ``name``; a name
    filters."""
    project = await _project(client, git_repo)
    _assert_refused(
        await client.get("/api/projects", params={"name": "n" * (MAX_NAME_LENGTH + 1)}), "name"
    )
    r = await client.get("/api/projects", params={"name": project["name"]})
    assert [p["id"] for p in r.json()] == [project["id"]]


# --- strict JSON bodies --------------------------------------------------------------------------


async def test_wrong_json_types_are_refused_naming_the_field(
    client: Client, git_repo: Path
) -> None:
    """Booleans given as 0/1 or "true", integers as strings or fractions, strings as numbers,
    and an enum as a number are 400 naming the field, on several routes; nothing changes."""
    project = await _project(client, git_repo)
    task = await _task(client, project)
    new_project = {"name": "x", "git_repo_path": str(git_repo)}
    attempt = {"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"}
    hook = {"name": "h", "url": "http://127.0.0.1:9/h"}
    drafts = f"/api/task-attempts/{uuid.uuid4()}/drafts/follow_up/queue"
    setup = "parallel_setup_script"
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/api/projects", {**new_project, setup: 1}, setup),
        ("POST", "/api/projects", {**new_project, setup: "true"}, setup),
        ("PATCH", f"/api/projects/{project['id']}", {setup: 0}, setup),
        ("PATCH", f"/api/projects/{project['id']}", {"name": 5}, "name"),
        ("POST", "/api/tasks", {"project_id": project["id"], "title": 5}, "title"),
        ("POST", "/api/tasks", {"project_id": 7, "title": "t"}, "project_id"),
        ("PATCH", f"/api/tasks/{task['id']}", {"status": 1}, "status"),
        ("POST", drafts, {"queued": 1}, "queued"),
        ("POST", drafts, {"queued": True, "expected_version": "5"}, "expected_version"),
        ("POST", drafts, {"queued": True, "expected_version": 5.5}, "expected_version"),
        ("POST", "/api/webhooks", {**hook, "active": 0}, "active"),
        (
            "POST",
            "/api/task-attempts",
            {**attempt, "use_parent_worktree": "1"},
            "use_parent_worktree",
        ),
    ]
    for method, url, body, field in cases:
        _assert_refused(await client.request(method, url, json=body), field)
    assert len((await client.get("/api/projects")).json()) == 1
    unchanged = (await client.get(f"/api/projects/{project['id']}")).json()
    assert (unchanged["name"], unchanged["parallel_setup_script"]) == (project["name"], False)
    assert (await client.get("/api/webhooks")).json() == []
    attempts = await client.get("/api/task-attempts", params={"task_id": task["id"]})
    assert attempts.json() == []


async def test_legitimate_bodies_still_work(client: Client, git_repo: Path) -> None:
    """Real booleans, UUIDs as strings, an enum by its value, a partial update and null optional
    fields are accepted."""
    project = await _project(client, git_repo, parallel_setup_script=True, cleanup_script=None)
    assert project["parallel_setup_script"] is True
    r = await client.patch(f"/api/projects/{project['id']}", json={"parallel_setup_script": False})
    assert r.status_code == 200, r.text
    assert (r.json()["parallel_setup_script"], r.json()["name"]) == (False, project["name"])
    r = await client.post(
        "/api/tasks",
        json={"project_id": project["id"], "title": "t", "description": None, "image_ids": []},
    )
    assert r.status_code == 201, r.text
    task = r.json()
    r = await client.patch(f"/api/tasks/{task['id']}", json={"status": "cancelled"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    r = await client.post(
        "/api/webhooks",
        json={"name": "h", "url": "http://127.0.0.1:9/h", "active": False, "project_id": None},
    )
    assert r.status_code == 201, r.text
    assert r.json()["active"] is False
