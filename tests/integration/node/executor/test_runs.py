"""Runs of the SCRIPT executor end to end over the REST API: worktree and branch, streamed logs,
exit codes, auto-commit, task status, merges (real git, real processes)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from vk_node.store.sql import fetch_all


@pytest.mark.asyncio
async def test_script_run_commits_logs_in_order_and_merges(
    hx: Any, git_repo: Path, git: Any
) -> None:
    """A script's output lands in the logs in order, its edit is committed on the attempt branch,
    the task goes to review, and merging puts the change on main and marks the task done."""
    script = "echo one\necho two >&2\necho hello > hello.txt\necho three"
    task, attempt = await hx.run_script(git_repo, script, title="Say hello!")
    assert attempt["branch"].startswith("vk/")
    assert attempt["branch"].endswith("-say-hello")
    assert Path(attempt["container_ref"]).name == attempt["branch"].split("/", 1)[1]
    [proc] = await hx.wait_idle(attempt["id"])
    assert (proc.status, proc.exit_code, proc.run_reason) == ("completed", 0, "codingagent")
    assert proc.pid
    assert proc.before_head_commit
    logs = [(e.output_type, e.content) for e in await hx.logs(proc.id)]
    assert [c for t, c in logs if t == "stdout"] == ["one", "three"]
    assert ("stderr", "two") in logs
    assert await hx.task_status(task["id"]) == "inreview"
    branch = attempt["branch"]
    assert git(git_repo, "show", f"{branch}:hello.txt") == "hello"
    assert proc.after_head_commit == git(git_repo, "rev-parse", branch)
    assert git(git_repo, "rev-list", "--count", f"main..{branch}") == "1"

    merge = await hx.ok("POST", f"/task-attempts/{attempt['id']}/merge")
    assert merge["merge_type"] == "direct"
    assert git(git_repo, "show", "main:hello.txt") == "hello"
    assert merge["merge_commit"] == git(git_repo, "rev-parse", "main")
    assert "(vibe-kanban " in git(git_repo, "log", "-1", "--format=%s", "main")
    assert await hx.task_status(task["id"]) == "done"
    # the user's checkout of main followed the merge without losing anything
    assert (git_repo / "hello.txt").read_text() == "hello\n"
    assert git(git_repo, "status", "--porcelain") == ""


@pytest.mark.asyncio
async def test_conflicting_merge_is_409_and_leaves_both_branches(
    hx: Any, git_repo: Path, git: Any
) -> None:
    """When main changed the same file, merge answers 409 naming the conflict and moves no ref."""
    _, attempt = await hx.run_script(git_repo, "echo attempt > README")
    await hx.wait_idle(attempt["id"])
    (git_repo / "README").write_text("main\n")
    git(git_repo, "commit", "-q", "-am", "main edit")
    before = (git(git_repo, "rev-parse", "main"), git(git_repo, "rev-parse", attempt["branch"]))
    r = await hx.client.post(f"/api/task-attempts/{attempt['id']}/merge")
    assert r.status_code == 409, r.text
    assert "conflict" in r.json()["detail"]
    assert "README" in r.json()["detail"]
    after = (git(git_repo, "rev-parse", "main"), git(git_repo, "rev-parse", attempt["branch"]))
    assert after == before
    assert (git_repo / "README").read_text() == "main\n"


@pytest.mark.asyncio
async def test_merge_refuses_when_target_moved_without_conflict(
    hx: Any, git_repo: Path, git: Any
) -> None:
    """A target branch with commits the attempt lacks (no conflict) is refused: rebase first."""
    _, attempt = await hx.run_script(git_repo, "echo a > a.txt")
    await hx.wait_idle(attempt["id"])
    (git_repo / "other.txt").write_text("x\n")
    git(git_repo, "add", "other.txt")
    git(git_repo, "commit", "-q", "-m", "other")
    r = await hx.client.post(f"/api/task-attempts/{attempt['id']}/merge")
    assert r.status_code == 409
    assert "rebase" in r.json()["detail"]


@pytest.mark.asyncio
async def test_failing_script_records_exit_code_and_goes_to_review(
    hx: Any, git_repo: Path, git: Any
) -> None:
    """A non-zero exit is a failed process with its exit code; nothing is committed."""
    task, attempt = await hx.run_script(git_repo, "echo partial > p.txt\nexit 3")
    [proc] = await hx.wait_idle(attempt["id"])
    assert (proc.status, proc.exit_code, proc.completion_reason) == ("failed", 3, "result_error")
    assert await hx.task_status(task["id"]) == "inreview"
    assert git(git_repo, "rev-parse", attempt["branch"]) == git(git_repo, "rev-parse", "main")


@pytest.mark.asyncio
async def test_setup_agent_cleanup_chain(hx: Any, git_repo: Path, git: Any) -> None:
    """Setup, the agent and cleanup run in order in the worktree; cleanup's changes are committed
    too, and setup completion is recorded."""
    _, attempt = await hx.run_script(
        git_repo,
        "cat setup.txt > agent.txt",
        setup_script="echo from-setup > setup.txt",
        cleanup_script="echo cleaned > cleanup.txt",
    )
    procs = await hx.wait_idle(attempt["id"])
    assert [p.run_reason for p in procs] == ["setupscript", "codingagent", "cleanupscript"]
    assert all(p.status == "completed" for p in procs)
    branch = attempt["branch"]
    assert git(git_repo, "show", f"{branch}:agent.txt") == "from-setup"
    assert git(git_repo, "show", f"{branch}:cleanup.txt") == "cleaned"
    got = await hx.ok("GET", f"/task-attempts/{attempt['id']}")
    assert got["setup_completed_at"] is not None


@pytest.mark.asyncio
async def test_failed_setup_stops_the_chain(hx: Any, git_repo: Path, git: Any) -> None:
    """A failing sequential setup script ends the chain before the agent runs."""
    task, attempt = await hx.run_script(git_repo, "echo never", setup_script="exit 1")
    procs = await hx.wait_idle(attempt["id"])
    assert [(p.run_reason, p.status) for p in procs] == [("setupscript", "failed")]
    assert await hx.task_status(task["id"]) == "inreview"


@pytest.mark.asyncio
async def test_run_environment_has_task_variables_but_no_node_secrets(
    hx: Any, git_repo: Path, git: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run sees PATH and the task's variables, never the node's VK_NODE_* settings."""
    monkeypatch.setenv("VK_NODE_API_KEY", "secret-key")
    proj = await hx.project(git_repo)
    task = await hx.task(proj["id"], "env", 'echo "var=$GREETING api=${VK_NODE_API_KEY:-none}"')
    await hx.ok(
        "POST", f"/tasks/{task['id']}/variables", 201, json={"name": "GREETING", "value": "hi"}
    )
    attempt = await hx.attempt(task["id"])
    [proc] = await hx.wait_idle(attempt["id"])
    assert [e.content for e in await hx.logs(proc.id)] == ["var=hi api=none"]


@pytest.mark.asyncio
async def test_long_lines_are_split_not_lost(hx: Any, git_repo: Path, git: Any) -> None:
    """A line longer than the limit is stored as several rows that add up to the whole line."""
    _, attempt = await hx.run_script(git_repo, "head -c 200000 /dev/zero | tr '\\0' x; echo")
    [proc] = await hx.wait_idle(attempt["id"])
    pieces = [e.content for e in await hx.logs(proc.id)]
    assert len(pieces) > 1
    assert "".join(pieces) == "x" * 200_000


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "node_env",
    [
        {
            "VK_NODE_LOG_QUEUE_LINES": "1",
            "VK_NODE_LOG_BATCH_LINES": "1",
            "VK_NODE_EXIT_DRAIN_S": "0",
        }
    ],
    indirect=True,
)
async def test_output_still_in_the_pipe_at_exit_is_drained_not_dropped(
    hx: Any, git_repo: Path
) -> None:
    """When the process has exited but its output still waits in the pipe behind a slow log
    writer (small queue and batches), the readers keep draining while they make progress: every
    line is stored, none is cut off by the exit drain timeout."""
    _, attempt = await hx.run_script(git_repo, "seq 1 5000")
    [proc] = await hx.wait_idle(attempt["id"], within_s=60)
    async with hx.store.read() as conn:
        rows = await fetch_all(
            conn,
            "SELECT content FROM log_entries WHERE execution_id = ? AND output_type = 'stdout'"
            " ORDER BY id",
            (proc.id.bytes,),
        )
    assert [r[0] for r in rows] == [str(i) for i in range(1, 5_001)]


@pytest.mark.asyncio
async def test_flood_of_lines_is_complete_and_api_stays_responsive(
    hx: Any, git_repo: Path, git: Any
) -> None:
    """100,000 lines printed as fast as possible are all stored in order while GET /api/health
    keeps answering quickly."""
    _, attempt = await hx.run_script(git_repo, "seq 1 100000")
    attempt_id = attempt["id"]
    worst = 0.0
    answered = 0
    while True:
        t0 = time.monotonic()
        r = await hx.client.get("/api/health")
        worst = max(worst, time.monotonic() - t0)
        assert r.status_code == 200
        answered += 1
        procs = await hx.processes(attempt_id)
        if (
            procs
            and procs[0].status != "running"
            and not hx.executor.has_running_chain(procs[0].task_attempt_id)
        ):
            break
        await asyncio.sleep(0.01)
    assert answered > 3
    assert worst < 1.0, f"GET /api/health took {worst:.2f} s during the flood"
    [proc] = await hx.wait_idle(attempt_id)
    async with hx.store.read() as conn:
        rows = await fetch_all(
            conn,
            "SELECT content FROM log_entries WHERE execution_id = ? AND output_type = 'stdout'"
            " ORDER BY id",
            (proc.id.bytes,),
        )
    contents = [r[0] for r in rows]
    assert len(contents) == 100_000
    assert contents == [str(i) for i in range(1, 100_001)]


@pytest.mark.asyncio
async def test_missing_base_branch_and_disabled_script(
    hx: Any, git_repo: Path, git: Any, node_settings: Any
) -> None:
    """Starting from a branch that does not exist is a 422 and leaves no worktree behind."""
    proj = await hx.project(git_repo)
    task = await hx.task(proj["id"], "t", "true")
    r = await hx.client.post(
        "/api/task-attempts",
        json={"task_id": task["id"], "executor": "SCRIPT", "base_branch": "nope"},
    )
    assert r.status_code == 422
    wt = node_settings.worktrees_dir
    assert not wt.exists() or list(wt.iterdir()) == []
