"""Projects and tasks over the local REST API, on a real SQLite file and real git."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from vk_shared.protocol import MAX_TASK_TEXT_BYTES

Client = AsyncTestClient[Litestar]


async def _project(client: Client, repo: Path) -> dict:
    r = await client.post("/api/projects", json={"name": "demo", "git_repo_path": str(repo)})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.asyncio
async def test_health_reports_standalone(client: Client) -> None:
    """Without VK_HIVE_URL the node reports itself standalone."""
    r = await client.get("/api/health")
    assert r.status_code == 200
    assert r.json()["hive"] == "standalone"


@pytest.mark.asyncio
async def test_project_requires_a_git_root(client: Client, tmp_path: Path, git_repo: Path) -> None:
    """A path that is missing, not a repository, or not the repository root is a 422."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (git_repo / "sub").mkdir()
    for path in (tmp_path / "missing", plain, git_repo / "sub", Path("relative")):
        r = await client.post("/api/projects", json={"name": "x", "git_repo_path": str(path)})
        assert r.status_code == 422, (path, r.text)
        assert r.json()["status"] == 422


@pytest.mark.asyncio
async def test_project_path_errors_do_not_tell_what_exists(
    client: Client, tmp_path: Path, git_repo: Path
) -> None:
    """A missing path, a file, a plain directory and a directory inside a repository all get the
    same 422 message (apart from the echoed path), so the API is no oracle for what exists."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (tmp_path / "file").write_text("x")
    (git_repo / "sub").mkdir()
    details = set()
    for path in (tmp_path / "missing", tmp_path / "file", plain, git_repo / "sub"):
        r = await client.post("/api/projects", json={"name": "x", "git_repo_path": str(path)})
        assert r.status_code == 422, (path, r.text)
        details.add(r.json()["detail"].replace(repr(str(path)), "<path>"))
    assert details == {"git_repo_path is not the root of a git repository on this node: <path>"}


@pytest.mark.asyncio
async def test_project_crud_and_duplicate_path(client: Client, git_repo: Path) -> None:
    """Projects are created, listed, renamed and deleted; a second project on one path is 409."""
    project = await _project(client, git_repo)
    again = await client.post("/api/projects", json={"name": "b", "git_repo_path": str(git_repo)})
    assert again.status_code == 409
    listed = (await client.get("/api/projects")).json()
    assert [p["id"] for p in listed] == [project["id"]]
    r = await client.patch(f"/api/projects/{project['id']}", json={"name": "renamed"})
    assert r.status_code == 200
    assert r.json()["name"] == "renamed"
    assert r.json()["git_repo_path"] == str(git_repo)
    assert (await client.delete(f"/api/projects/{project['id']}")).status_code == 204
    assert (await client.get(f"/api/projects/{project['id']}")).status_code == 404


@pytest.mark.asyncio
async def test_task_lifecycle_with_subtasks(client: Client, git_repo: Path) -> None:
    """Tasks and subtasks are created, edited, moved through statuses, archived and deleted."""
    project = await _project(client, git_repo)
    r = await client.post("/api/tasks", json={"project_id": project["id"], "title": "parent"})
    assert r.status_code == 201, r.text
    parent = r.json()
    r = await client.post(
        "/api/tasks",
        json={"project_id": project["id"], "title": "child", "parent_task_id": parent["id"]},
    )
    child = r.json()
    kids = (await client.get(f"/api/tasks/{parent['id']}/children")).json()
    assert [k["id"] for k in kids] == [child["id"]]

    r = await client.patch(f"/api/tasks/{parent['id']}", json={"status": "inprogress"})
    assert r.status_code == 200
    assert r.json()["status"] == "inprogress"
    r = await client.patch(f"/api/tasks/{parent['id']}", json={"status": "todo"})
    assert r.status_code == 409  # not a legal transition

    r = await client.post(f"/api/tasks/{parent['id']}/archive")
    assert r.status_code == 200
    assert r.json()["archived_at"] is not None
    listed = (await client.get("/api/tasks", params={"project_id": project["id"]})).json()
    assert listed == []
    listed = (
        await client.get(
            "/api/tasks", params={"project_id": project["id"], "include_archived": "true"}
        )
    ).json()
    assert {t["id"] for t in listed} == {parent["id"], child["id"]}
    r = await client.post(f"/api/tasks/{parent['id']}/unarchive")
    assert r.json()["archived_at"] is None

    assert (await client.delete(f"/api/tasks/{parent['id']}")).status_code == 204
    orphan = (await client.get(f"/api/tasks/{child['id']}")).json()
    assert orphan["parent_task_id"] is None


@pytest.mark.asyncio
async def test_task_parent_rules(client: Client, git_repo: Path, tmp_path: Path) -> None:
    """Unknown projects are 404; unknown, cyclic or cross-project parents are 422."""
    project = await _project(client, git_repo)
    r = await client.post("/api/tasks", json={"project_id": str(uuid4()), "title": "x"})
    assert r.status_code == 404
    r = await client.post(
        "/api/tasks",
        json={"project_id": project["id"], "title": "x", "parent_task_id": str(uuid4())},
    )
    assert r.status_code == 422
    a = (await client.post("/api/tasks", json={"project_id": project["id"], "title": "a"})).json()
    b = (
        await client.post(
            "/api/tasks",
            json={"project_id": project["id"], "title": "b", "parent_task_id": a["id"]},
        )
    ).json()
    r = await client.patch(f"/api/tasks/{a['id']}", json={"parent_task_id": b["id"]})
    assert r.status_code == 422
    r = await client.patch(f"/api/tasks/{a['id']}", json={"parent_task_id": a["id"]})
    assert r.status_code == 422


@pytest.mark.asyncio
async def test_task_text_is_limited_in_utf8_bytes_like_the_hive(
    client: Client, git_repo: Path
) -> None:
    """Title plus description may hold MAX_TASK_TEXT_BYTES bytes of UTF-8 (the hive's limit): a
    51,204-byte emoji title, or an edit pushing the sum over, is a 400 and stores nothing; exactly
    the limit is accepted."""
    project = await _project(client, git_repo)
    emoji_title = "\U0001f600" * 12_801  # 12,801 characters, 51,204 bytes
    assert len(emoji_title) < MAX_TASK_TEXT_BYTES < len(emoji_title.encode())
    r = await client.post("/api/tasks", json={"project_id": project["id"], "title": emoji_title})
    assert r.status_code == 400, r.text
    assert "bytes" in r.json()["detail"]
    half = MAX_TASK_TEXT_BYTES // 2
    over = {"project_id": project["id"], "title": "t" * half, "description": "d" * (half + 1)}
    assert (await client.post("/api/tasks", json=over)).status_code == 400
    assert (await client.get("/api/tasks", params={"project_id": project["id"]})).json() == []

    exact = {**over, "description": "\u00e9" * (half // 2)}  # two bytes each: exactly the limit
    r = await client.post("/api/tasks", json=exact)
    assert r.status_code == 201, r.text
    task = r.json()
    r = await client.patch(f"/api/tasks/{task['id']}", json={"title": "t" * half + "x"})
    assert r.status_code == 400, r.text
    r = await client.patch(f"/api/tasks/{task['id']}", json={"description": emoji_title})
    assert r.status_code == 400, r.text
    stored = (await client.get(f"/api/tasks/{task['id']}")).json()
    assert (stored["title"], stored["description"]) == (exact["title"], exact["description"])
