"""An attempt runs only when this node can run its executor: otherwise nothing is recorded,
created or run — not even the project's setup script (real SQLite, real git, real processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.agent_path import isolated_path
from vk_node.store.sql import fetch_one

NO_EXECUTORS = {"VK_NODE_EXECUTORS": ""}


async def _start(hx: Any, task: dict[str, Any], executor: str) -> Any:
    body = {"task_id": task["id"], "executor": executor, "base_branch": "main"}
    return await hx.client.post("/api/task-attempts", json=body)


async def _counts(hx: Any) -> tuple[int, int]:
    async with hx.store.read() as conn:
        attempts = await fetch_one(conn, "SELECT COUNT(*) FROM task_attempts", ())
        processes = await fetch_one(conn, "SELECT COUNT(*) FROM execution_processes", ())
    assert attempts is not None
    assert processes is not None
    return int(attempts[0]), int(processes[0])


@pytest.mark.asyncio
@pytest.mark.parametrize("node_env", [NO_EXECUTORS], indirect=True)
async def test_an_agent_that_is_not_installed_runs_no_setup_script(
    hx: Any, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a standalone node with no executors, an attempt naming CLAUDE_CODE (not installed) is a
    422 naming the executor and what is available, and leaves no attempt, process, worktree or
    setup-script side effect behind."""
    monkeypatch.setenv("PATH", isolated_path(tmp_path / "bin"))
    marker = tmp_path / "setup-ran"
    project = await hx.project(git_repo, setup_script=f"touch {marker}")
    task = await hx.task(project["id"], "do it")
    r = await _start(hx, task, "CLAUDE_CODE")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "CLAUDE_CODE" in detail
    assert "available: none" in detail
    assert await _counts(hx) == (0, 0)
    assert not marker.exists()
    worktrees = hx.ctx.settings.worktrees_dir
    assert not worktrees.exists() or not any(worktrees.iterdir())
    assert hx.executor.running_count() == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("node_env", [NO_EXECUTORS], indirect=True)
async def test_script_is_refused_when_the_node_does_not_enable_it(
    hx: Any, git_repo: Path, tmp_path: Path
) -> None:
    """SCRIPT not listed in VK_NODE_EXECUTORS is a 422 and nothing of the attempt is recorded."""
    marker = tmp_path / "setup-ran"
    project = await hx.project(git_repo, setup_script=f"touch {marker}")
    task = await hx.task(project["id"], "do it", f"touch {tmp_path / 'script-ran'}")
    r = await _start(hx, task, "SCRIPT")
    assert r.status_code == 422, r.text
    assert "SCRIPT" in r.json()["detail"]
    assert await _counts(hx) == (0, 0)
    assert not marker.exists()
    assert not (tmp_path / "script-ran").exists()


@pytest.mark.asyncio
@pytest.mark.parametrize("node_env", [NO_EXECUTORS], indirect=True)
async def test_an_agent_whose_cli_is_on_path_is_available(
    hx: Any, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a (fake) ``claude`` on PATH and nothing enabled, a CLAUDE_CODE attempt is accepted and
    runs its setup script; the refusal of the other agents names CLAUDE_CODE as available."""
    monkeypatch.setenv("PATH", isolated_path(tmp_path / "bin", "claude"))
    marker = tmp_path / "setup-ran"
    project = await hx.project(git_repo, setup_script=f"touch {marker}")
    task = await hx.task(project["id"], "do it")
    refused = await _start(hx, task, "CODEX")
    assert refused.status_code == 422
    assert "available: CLAUDE_CODE" in refused.json()["detail"]
    attempt = await hx.attempt(task["id"], executor="CLAUDE_CODE")
    await hx.wait_idle(attempt["id"])
    assert marker.exists()


@pytest.mark.asyncio
async def test_follow_up_and_retry_are_refused_once_the_executor_is_gone(
    hx: Any, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attempt whose agent CLI has disappeared since it ran gets no follow-up or retry run:
    both are a 422 and no new process is recorded."""
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", isolated_path(bin_dir, "claude"))
    project = await hx.project(git_repo)
    task = await hx.task(project["id"], "do it")
    attempt = await hx.attempt(task["id"], executor="CLAUDE_CODE")
    [proc] = await hx.wait_idle(attempt["id"])
    (bin_dir / "claude").unlink()
    before = await _counts(hx)
    follow = await hx.client.post(
        f"/api/task-attempts/{attempt['id']}/follow-up", json={"prompt": "again"}
    )
    assert follow.status_code == 422, follow.text
    retry = await hx.client.post(
        f"/api/task-attempts/{attempt['id']}/retry", json={"process_id": str(proc.id)}
    )
    assert retry.status_code == 422, retry.text
    assert "CLAUDE_CODE" in retry.json()["detail"]
    assert await _counts(hx) == before
