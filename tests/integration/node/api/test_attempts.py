"""Attempts, execution processes and logs over the local REST API (real SQLite, real git)."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from vk_node.context import NodeContext
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import log_entries as logs_repo

Client = AsyncTestClient[Litestar]


async def _task(client: Client, repo: Path) -> dict:
    project = (
        await client.post("/api/projects", json={"name": "p", "git_repo_path": str(repo)})
    ).json()
    r = await client.post("/api/tasks", json={"project_id": project["id"], "title": "Fix the bug!"})
    return r.json()


@pytest.mark.asyncio
async def test_attempt_is_recorded_with_a_branch(client: Client, git_repo: Path) -> None:
    """POST /task-attempts records the attempt (202) on a vk/ branch off an existing base."""
    task = await _task(client, git_repo)
    body = {"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"}
    r = await client.post("/api/task-attempts", json=body)
    assert r.status_code == 202, r.text
    attempt = r.json()
    assert attempt["branch"].startswith("vk/")
    assert attempt["branch"].endswith("-fix-the-bug")
    assert attempt["target_branch"] == "main"
    assert (await client.get(f"/api/task-attempts/{attempt['id']}")).json() == attempt
    listed = (await client.get("/api/task-attempts", params={"task_id": task["id"]})).json()
    assert [a["id"] for a in listed] == [attempt["id"]]
    processes = await client.get(f"/api/task-attempts/{attempt['id']}/processes")
    assert processes.status_code == 200


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"executor": "NOPE", "base_branch": "main"}, 422),
        ({"executor": "SCRIPT", "base_branch": "missing"}, 422),
        ({"executor": "script", "base_branch": "main"}, 400),
        ({"executor": "SCRIPT", "base_branch": "-x"}, 400),
    ],
)
async def test_attempt_rejects_bad_executor_or_branch(
    client: Client, git_repo: Path, body: dict, status: int
) -> None:
    """Unknown executors and branches that do not exist are rejected with a 4xx."""
    task = await _task(client, git_repo)
    r = await client.post("/api/task-attempts", json={"task_id": task["id"], **body})
    assert r.status_code == status, r.text


@pytest.mark.asyncio
async def test_stop_answers_and_merge_without_changes_is_409(
    client: Client, git_repo: Path
) -> None:
    """Stop answers 200; merging a branch with nothing new is a JSON 409; unknown ids are 404."""
    task = await _task(client, git_repo)
    body = {"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"}
    attempt = (await client.post("/api/task-attempts", json=body)).json()
    assert (await client.post(f"/api/task-attempts/{attempt['id']}/stop")).status_code == 200
    r = await client.post(f"/api/task-attempts/{attempt['id']}/merge")
    assert r.status_code == 409
    assert r.json()["status"] == 409
    assert (await client.post(f"/api/task-attempts/{uuid4()}/merge")).status_code == 404


@pytest.mark.asyncio
async def test_logs_are_paged_by_id(client: Client, app: Litestar, git_repo: Path) -> None:
    """GET /execution-processes/{id}/logs pages forward with ``after`` and ``limit``."""
    task = await _task(client, git_repo)
    body = {"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"}
    attempt = (await client.post("/api/task-attempts", json=body)).json()
    ctx: NodeContext = app.state.node
    process_id = uuid4()
    async with ctx.store.transaction() as conn:
        await processes_repo.create(
            conn,
            process_id,
            task_attempt_id=UUID(attempt["id"]),
            run_reason="codingagent",
            executor_action={"typ": {"type": "ScriptRequest"}, "next_action": None},
        )
        await logs_repo.append_many(conn, process_id, [("stdout", f"line {i}") for i in range(5)])
    processes = (await client.get(f"/api/task-attempts/{attempt['id']}/processes")).json()
    assert str(process_id) in [p["id"] for p in processes]
    page = (await client.get(f"/api/execution-processes/{process_id}/logs?limit=3")).json()
    assert [e["content"] for e in page["entries"]] == ["line 0", "line 1", "line 2"]
    assert page["has_more"] is True
    nxt = (
        await client.get(
            f"/api/execution-processes/{process_id}/logs?after={page['next_cursor']}&limit=3"
        )
    ).json()
    assert [e["content"] for e in nxt["entries"]] == ["line 3", "line 4"]
    assert nxt["has_more"] is False
    assert (await client.get(f"/api/execution-processes/{uuid4()}/logs")).status_code == 404
