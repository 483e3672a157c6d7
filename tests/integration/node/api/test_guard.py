"""Requests a web page (or anyone without the token) can send to the node are refused before any
handler runs: foreign Host (DNS rebinding), foreign Origin or Referer, cross-site fetches,
non-JSON bodies, a missing or wrong token. Each refusal is counted against the real SQLite file:
nothing is created or changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from vk_node.context import NodeContext
from vk_node.store.sql import fetch_all

from .conftest import TOKEN, make_git_repo

Client = AsyncTestClient[Litestar]

BROWSER_ATTACKS: dict[str, dict[str, str]] = {
    "foreign Origin": {"origin": "http://evil.example"},
    "null Origin": {"origin": "null"},
    "foreign Referer": {"referer": "http://evil.example/page.html"},
    "cross-site fetch": {"sec-fetch-site": "cross-site"},
    "foreign Host": {"host": "evil.example:3000"},
}
STATUS = {"foreign Host": 421, "text/plain body": 415, "missing token": 401, "wrong token": 401}
CODE = {
    401: "unauthorized",
    403: "forbidden",
    415: "unsupported_media_type",
    421: "misdirected_request",
}


async def _snapshot(client: Client) -> dict[str, Any]:
    """Row counts and the mutable columns of the tables a request could touch."""
    ctx: NodeContext = client.app.state.node
    state: dict[str, Any] = {}
    async with ctx.store.read() as conn:
        for table in ("projects", "labels", "tasks", "task_attempts", "node_outbox"):
            state[table] = [tuple(r) for r in await fetch_all(conn, f"SELECT * FROM {table}")]
    state["worktrees"] = sorted(p.name for p in ctx.settings.worktrees_dir.glob("*"))
    return state


async def _seed(client: Client, repo: Path, headers: dict[str, str]) -> dict[str, str]:
    """A linked project (so task writes append outbox ops) with one task, created legitimately."""

    async def ok(method: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await client.request(method, url, json=body, headers=headers)
        assert r.status_code in (200, 201), r.text
        return r.json()  # type: ignore[no-any-return]

    project = await ok("POST", "/api/projects", {"name": "p", "git_repo_path": str(repo)})
    await ok("POST", f"/api/projects/{project['id']}/link", {"swarm_project_id": str(uuid4())})
    task = await ok("POST", "/api/tasks", {"project_id": project["id"], "title": "t"})
    return {"project": project["id"], "task": task["id"]}


def _writes(ids: dict[str, str], tmp_path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """What a hostile page would send: a project that runs a script, a label, a task, an edit,
    an attempt, a delete and an unlink."""
    other = make_git_repo(tmp_path / "victim")
    marker = tmp_path / "pwned"
    return [
        (
            "POST",
            "/api/projects",
            {"name": "x", "git_repo_path": str(other), "setup_script": f"touch {marker}"},
        ),
        ("POST", "/api/labels", {"name": "evil"}),
        ("POST", "/api/tasks", {"project_id": ids["project"], "title": "evil"}),
        ("PATCH", f"/api/tasks/{ids['task']}", {"title": "changed", "status": "inprogress"}),
        (
            "POST",
            "/api/task-attempts",
            {"task_id": ids["task"], "executor": "SCRIPT", "base_branch": "main"},
        ),
        ("DELETE", f"/api/tasks/{ids['task']}", {}),
        ("POST", f"/api/projects/{ids['project']}/unlink", {}),
    ]


async def _attack(
    client: Client, writes: list[tuple[str, str, dict[str, Any]]], name: str, headers: Any
) -> None:
    for method, url, body in writes:
        content = json.dumps(body).encode() if body else b""
        r = await client.request(method, url, content=content, headers=headers)
        expected = STATUS.get(name, 403)
        assert r.status_code == expected, (name, method, url, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == expected
        assert r.json()["code"] == CODE[expected]
        assert r.json()["detail"]


@pytest.mark.asyncio
async def test_browser_attacks_change_nothing(
    client: Client, git_repo: Path, tmp_path: Path
) -> None:
    """Foreign Origin, null Origin, foreign Referer, Sec-Fetch-Site: cross-site and a foreign Host
    (403 / 421), and a text/plain body on every write that carries one (415), leave every table
    and the worktrees as they were; a local page's request still works afterwards."""
    ids = await _seed(client, git_repo, {})
    writes = _writes(ids, tmp_path)
    before = await _snapshot(client)
    json_type = {"content-type": "application/json"}
    for name, headers in BROWSER_ATTACKS.items():
        await _attack(client, writes, name, {**json_type, **headers})
    with_body = [write for write in writes if write[2]]
    await _attack(client, with_body, "text/plain body", {"content-type": "text/plain"})
    assert await _snapshot(client) == before
    assert not (tmp_path / "pwned").exists()

    local_page = {"origin": "http://localhost:5173", "sec-fetch-site": "same-site"}
    r = await client.post("/api/labels", json={"name": "mine"}, headers=local_page)
    assert r.status_code == 201, r.text


@pytest.mark.asyncio
async def test_rebinding_pages_cannot_read(client: Client) -> None:
    """A request whose Host is a foreign name (a DNS-rebinding page) gets a 421 and no data, for
    reads, unknown paths and the API schema alike."""
    for url in ("/api/projects", "/api/health", "/api/no-such-route", "/schema"):
        r = await client.get(url, headers={"host": "evil.example:3000"})
        assert r.status_code == 421, (url, r.text)
        assert r.json() == {
            "type": "urn:vk-swarm:problem:misdirected_request",
            "title": "Misdirected request",
            "status": 421,
            "detail": r.json()["detail"],
            "code": "misdirected_request",
        }
        assert "evil.example:3000" in r.json()["detail"]


@pytest.mark.asyncio
async def test_a_missing_or_wrong_token_changes_nothing(
    exposed: Client, git_repo: Path, tmp_path: Path
) -> None:
    """On a non-loopback node every write without the right Bearer token is a 401 with a
    WWW-Authenticate challenge and changes nothing; reads need the token too, health does not."""
    bearer = {"authorization": f"Bearer {TOKEN}"}
    ids = await _seed(exposed, git_repo, bearer)
    writes = _writes(ids, tmp_path)
    before = await _snapshot(exposed)
    json_type = {"content-type": "application/json"}
    await _attack(exposed, writes, "missing token", json_type)
    wrong = {**json_type, "authorization": f"Bearer {TOKEN[:-1]}x"}
    await _attack(exposed, writes, "wrong token", wrong)
    assert await _snapshot(exposed) == before

    r = await exposed.get("/api/projects")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert (await exposed.get("/api/health")).status_code == 200
    r = await exposed.get("/api/projects", headers=bearer)
    assert [p["id"] for p in r.json()] == [ids["project"]]
