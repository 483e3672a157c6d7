"""The node holds its input to what it declares, on a real SQLite file, real git and a real
SCRIPT run.

- Every bounded query parameter refuses a negative, out-of-range, non-numeric or huge value with
  400 naming it; in-range values still work.
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
