"""Labels, templates, task variables, drafts and the activity feed over the local REST API."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]


async def _project_task(client: Client, repo: Path) -> tuple[dict, dict]:
    project = (
        await client.post("/api/projects", json={"name": "p", "git_repo_path": str(repo)})
    ).json()
    task = (
        await client.post("/api/tasks", json={"project_id": project["id"], "title": "t"})
    ).json()
    return project, task


@pytest.mark.asyncio
async def test_labels_global_project_and_task(client: Client, git_repo: Path) -> None:
    """Global and project labels are listed together, set on tasks, and unknown ones refused."""
    project, task = await _project_task(client, git_repo)
    glob = (await client.post("/api/labels", json={"name": "bug", "color": "#ff0000"})).json()
    own = (
        await client.post("/api/labels", json={"name": "ui", "project_id": project["id"]})
    ).json()
    assert [x["id"] for x in (await client.get("/api/labels")).json()] == [glob["id"]]
    listed = (await client.get("/api/labels", params={"project_id": project["id"]})).json()
    assert {x["id"] for x in listed} == {glob["id"], own["id"]}
    r = await client.put(f"/api/tasks/{task['id']}/labels", json={"label_ids": [own["id"]]})
    assert [x["name"] for x in r.json()] == ["ui"]
    r = await client.patch(f"/api/labels/{own['id']}", json={"name": "frontend"})
    assert r.json()["name"] == "frontend"
    assert r.json()["color"] == own["color"]
    assert (await client.delete(f"/api/labels/{glob['id']}")).status_code == 204
    r = await client.put(f"/api/tasks/{task['id']}/labels", json={"label_ids": [glob["id"]]})
    assert r.status_code == 422


@pytest.mark.asyncio
async def test_templates_crud(client: Client) -> None:
    """Templates are created, listed by name, edited and deleted; names with spaces are 400."""
    r = await client.post("/api/templates", json={"template_name": "review", "content": "Check"})
    assert r.status_code == 201
    tid = r.json()["id"]
    bad = await client.post("/api/templates", json={"template_name": "a b", "content": "x"})
    assert bad.status_code == 400
    r = await client.patch(f"/api/templates/{tid}", json={"content": "Check twice"})
    assert r.json()["content"] == "Check twice"
    assert [t["template_name"] for t in (await client.get("/api/templates")).json()] == ["review"]
    assert (await client.delete(f"/api/templates/{tid}")).status_code == 204
    assert (await client.get(f"/api/templates/{tid}")).status_code == 404


@pytest.mark.asyncio
async def test_variables_inherit_from_parent(client: Client, git_repo: Path) -> None:
    """A subtask sees its parent's variables unless it overrides them, plus system variables."""
    project, parent = await _project_task(client, git_repo)
    child = (
        await client.post(
            "/api/tasks",
            json={"project_id": project["id"], "title": "c", "parent_task_id": parent["id"]},
        )
    ).json()
    base = f"/api/tasks/{parent['id']}/variables"
    assert (await client.post(base, json={"name": "ENV", "value": "prod"})).status_code == 201
    assert (await client.post(base, json={"name": "ENV", "value": "dup"})).status_code == 409
    assert (await client.post(base, json={"name": "lower", "value": "x"})).status_code == 400
    await client.post(base, json={"name": "REGION", "value": "eu"})
    own = f"/api/tasks/{child['id']}/variables"
    created = (await client.post(own, json={"name": "REGION", "value": "us"})).json()
    resolved = {v["name"]: v for v in (await client.get(own + "/resolved")).json()}
    assert resolved["ENV"] == {"name": "ENV", "value": "prod", "source": "inherited"}
    assert resolved["REGION"]["value"] == "us"
    assert resolved["REGION"]["source"] == "task"
    assert resolved["IS_SUBTASK"]["value"] == "true"
    r = await client.patch(f"{own}/{created['id']}", json={"value": "ap"})
    assert r.json()["value"] == "ap"
    assert (await client.delete(f"{base}/{created['id']}")).status_code == 404  # wrong task
    assert (await client.delete(f"{own}/{created['id']}")).status_code == 204


@pytest.mark.asyncio
async def test_drafts_and_activity(client: Client, git_repo: Path) -> None:
    """Drafts are saved with a version and queued with compare-and-set; review tasks show in the
    activity feed until dismissed."""
    _, task = await _project_task(client, git_repo)
    body = {"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"}
    attempt = (await client.post("/api/task-attempts", json=body)).json()
    url = f"/api/task-attempts/{attempt['id']}/drafts/follow_up"
    assert (await client.get(url)).status_code == 404
    draft = (await client.put(url, json={"prompt": "next step"})).json()
    assert draft["version"] == 1
    stale = await client.post(url + "/queue", json={"queued": True, "expected_version": 99})
    assert stale.status_code == 409
    queued = await client.post(url + "/queue", json={"queued": True, "expected_version": 1})
    assert queued.json()["queued"] is True
    assert (await client.get(url.replace("follow_up", "bogus"))).status_code == 400
    assert (await client.delete(url)).status_code == 204

    await client.patch(f"/api/tasks/{task['id']}", json={"status": "inprogress"})
    await client.patch(f"/api/tasks/{task['id']}", json={"status": "inreview"})
    feed = (await client.get("/api/activity")).json()
    assert [i["task_id"] for i in feed] == [task["id"]]
    assert (await client.post(f"/api/activity/{task['id']}/dismiss")).status_code == 204
    assert (await client.get("/api/activity")).json() == []
    counts = (await client.get("/api/activity/counts")).json()
    assert counts == {"total": 1, "dismissed": 1}
    assert (await client.delete(f"/api/activity/{task['id']}/dismiss")).status_code == 204
    assert len((await client.get("/api/activity")).json()) == 1
