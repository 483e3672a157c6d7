"""Controlling runs: stop (whole process groups), follow-ups and the queue, retry, the
concurrency limit, dev servers, status ops in the outbox, pull-request errors."""

# Tests look at files and /proc synchronously on purpose (tiny reads, no event-loop load).
# ruff: noqa: ASYNC240

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from vk_node.store.sql import fetch_all


def _alive(pid: int) -> bool:
    """The pid exists and is not a zombie (read straight from /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


async def _wait_file(path: Path, lines: int, within_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if path.exists():
            got = path.read_text().split()
            if len(got) >= lines:
                return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} did not get {lines} lines")


@pytest.mark.asyncio
async def test_stop_kills_every_descendant_within_the_grace_period(
    hx: Any, git_repo: Path, tmp_path: Path
) -> None:
    """Stopping a script that spawned children and grandchildren (one of them ignoring SIGTERM)
    leaves none of them alive, within the grace period plus a little."""
    pids = tmp_path / "pids"
    script = f"""
echo $$ >> {pids}
( sleep 300 & echo $! >> {pids}
  ( sleep 300 & echo $! >> {pids}; wait ) & echo $! >> {pids}; wait ) &
echo $! >> {pids}
bash -c 'trap "" TERM; sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; wait' &
echo started
wait
"""
    task, attempt = await hx.run_script(git_repo, script)
    found = [int(p) for p in await _wait_file(pids, 7)]
    assert all(_alive(p) for p in found)
    t0 = time.monotonic()
    await hx.ok("POST", f"/task-attempts/{attempt['id']}/stop")
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0 + 1.5, f"stop took {elapsed:.2f} s"
    assert [p for p in found if _alive(p)] == []
    [proc] = await hx.wait_idle(attempt["id"])
    assert (proc.status, proc.completion_reason) == ("killed", "killed")
    assert await hx.task_status(task["id"]) == "inreview"


@pytest.mark.asyncio
async def test_stop_of_an_idle_attempt_is_a_noop(hx: Any, git_repo: Path) -> None:
    """Stopping an attempt whose run already ended changes nothing."""
    _, attempt = await hx.run_script(git_repo, "true")
    [before] = await hx.wait_idle(attempt["id"])
    await hx.ok("POST", f"/task-attempts/{attempt['id']}/stop")
    [after] = await hx.processes(attempt["id"])
    assert (after.status, after.exit_code) == (before.status, before.exit_code) == ("completed", 0)


@pytest.mark.asyncio
async def test_follow_up_runs_and_is_queued_while_busy(
    hx: Any, git_repo: Path, git: Any, tmp_path: Path
) -> None:
    """A follow-up while the attempt runs is queued and runs after it; one sent when idle starts
    at once; each run commits its own changes."""
    gate = tmp_path / "gate"
    _, attempt = await hx.run_script(
        git_repo, f"echo first > first.txt\nwhile [ ! -e {gate} ]; do sleep 0.02; done"
    )
    aid = attempt["id"]
    await hx.wait_running(aid)
    queued = await hx.ok(
        "POST", f"/task-attempts/{aid}/follow-up", 202, json={"prompt": "echo q > queued.txt"}
    )
    assert queued["queued"] is True
    gate.touch()
    procs = await hx.wait_idle(aid)
    assert [p.status for p in procs] == ["completed", "completed"]
    started = await hx.ok(
        "POST", f"/task-attempts/{aid}/follow-up", 202, json={"prompt": "echo f > later.txt"}
    )
    assert started["queued"] is False
    procs = await hx.wait_idle(aid)
    assert len(procs) == 3
    files = git(git_repo, "ls-tree", "--name-only", attempt["branch"]).split()
    assert {"first.txt", "queued.txt", "later.txt"} <= set(files)
    async with hx.store.read() as conn:
        left = await fetch_all(conn, "SELECT 1 FROM queued_messages", ())
    assert left == []


@pytest.mark.asyncio
async def test_retry_resets_the_worktree_and_drops_later_processes(
    hx: Any, git_repo: Path, git: Any
) -> None:
    """Retrying from a process resets the worktree to where it began, drops it and every later
    process, and runs again (here with a replaced prompt)."""
    _, attempt = await hx.run_script(git_repo, "echo a > a.txt")
    aid = attempt["id"]
    [first] = await hx.wait_idle(aid)
    await hx.ok("POST", f"/task-attempts/{aid}/follow-up", 202, json={"prompt": "echo b > b.txt"})
    procs = await hx.wait_idle(aid)
    second = procs[1]
    await hx.ok("POST", f"/task-attempts/{aid}/follow-up", 202, json={"prompt": "echo c > c.txt"})
    await hx.wait_for(lambda: _count(hx, aid, 3), "third run")
    await hx.wait_idle(aid)
    await hx.ok(
        "POST",
        f"/task-attempts/{aid}/retry",
        202,
        json={"process_id": str(second.id), "prompt": "echo r > r.txt"},
    )
    await hx.wait_for(lambda: _count(hx, aid, 4), "the retried run")
    procs = await hx.wait_idle(aid)
    assert [p.dropped for p in procs] == [False, True, True, False]
    assert procs[3].before_head_commit == second.before_head_commit == first.after_head_commit
    files = set(git(git_repo, "ls-tree", "--name-only", attempt["branch"]).split())
    assert {"a.txt", "r.txt"} <= files
    assert not {"b.txt", "c.txt"} & files
    visible = await hx.ok("GET", f"/task-attempts/{aid}/processes")
    assert len(visible) == 2


async def _count(hx: Any, aid: str, n: int) -> bool:
    return len(await hx.processes(aid)) >= n


@pytest.mark.asyncio
async def test_retry_refuses_a_dirty_worktree_unless_forced(
    hx: Any, git_repo: Path, git: Any
) -> None:
    """Uncommitted changes in the worktree make retry a 409 unless force_when_dirty is set."""
    _, attempt = await hx.run_script(git_repo, "echo a > a.txt")
    [proc] = await hx.wait_idle(attempt["id"])
    (Path(attempt["container_ref"]) / "dirty.txt").write_text("x")
    url = f"/task-attempts/{attempt['id']}/retry"
    r = await hx.client.post("/api" + url, json={"process_id": str(proc.id)})
    assert r.status_code == 409
    await hx.ok("POST", url, 202, json={"process_id": str(proc.id), "force_when_dirty": True})
    await hx.wait_for(lambda: _count(hx, attempt["id"], 2), "the retried run")
    await hx.wait_idle(attempt["id"])
    assert not (Path(attempt["container_ref"]) / "dirty.txt").exists()


@pytest.mark.asyncio
@pytest.mark.parametrize("node_env", [{"VK_NODE_MAX_CONCURRENT": "1"}], indirect=True)
async def test_attempts_beyond_the_limit_wait_their_turn(
    hx: Any, git_repo: Path, tmp_path: Path
) -> None:
    """With VK_NODE_MAX_CONCURRENT=1 a second attempt starts only after the first finished."""
    gate = tmp_path / "gate"
    proj = await hx.project(git_repo)
    one = await hx.task(proj["id"], "one", f"while [ ! -e {gate} ]; do sleep 0.02; done")
    two = await hx.task(proj["id"], "two", "echo two")
    a1 = await hx.attempt(one["id"])
    a2 = await hx.attempt(two["id"])
    await hx.wait_running(a1["id"])
    await asyncio.sleep(0.3)
    assert await hx.processes(a2["id"]) == []
    assert await hx.task_status(two["id"]) == "todo"
    gate.touch()
    [p2] = await hx.wait_idle(a2["id"])
    [p1] = await hx.wait_idle(a1["id"])
    assert p2.started_at >= p1.completed_at


@pytest.mark.asyncio
async def test_dev_server_starts_replaces_and_stops(hx: Any, git_repo: Path) -> None:
    """A dev server runs without touching the task status; starting another attempt's dev server
    in the same project stops the first; stop ends it."""
    proj = await hx.project(git_repo, dev_script="echo serving; sleep 300")
    t1 = await hx.task(proj["id"], "one", "true")
    t2 = await hx.task(proj["id"], "two", "true")
    a1, a2 = await hx.attempt(t1["id"]), await hx.attempt(t2["id"])
    await hx.wait_idle(a1["id"])
    await hx.wait_idle(a2["id"])
    await hx.ok("POST", f"/task-attempts/{a1['id']}/dev-server", 202, json={})
    [dev1] = [p for p in await hx.wait_running(a1["id"]) if p.run_reason == "devserver"]
    await hx.ok("POST", f"/task-attempts/{a2['id']}/dev-server", 202, json={"action": "start"})
    await hx.wait_running(a2["id"])
    rows = {p.id: p for p in await hx.processes(a1["id"])}
    assert rows[dev1.id].status == "killed"
    await hx.ok("POST", f"/task-attempts/{a2['id']}/dev-server", 202, json={"action": "stop"})
    procs = await hx.wait_idle(a2["id"])
    assert procs[-1].run_reason == "devserver"
    assert procs[-1].status == "killed"
    assert await hx.task_status(t2["id"]) == "inreview"


@pytest.mark.asyncio
async def test_status_ops_for_a_linked_project_follow_the_run(hx: Any, git_repo: Path) -> None:
    """For a linked project the outbox carries task.upsert ops inprogress → inreview → done, and
    the process and its logs are queued for the hive too."""
    proj = await hx.project(git_repo)
    await hx.ok("POST", f"/projects/{proj['id']}/link", json={"swarm_project_id": str(uuid4())})
    task = await hx.task(proj["id"], "linked", "echo linked | tee l.txt")
    attempt = await hx.attempt(task["id"])
    await hx.wait_idle(attempt["id"])
    await hx.ok("POST", f"/task-attempts/{attempt['id']}/merge")
    async with hx.store.read() as conn:
        rows = await fetch_all(
            conn,
            "SELECT op_type, entity_id, payload FROM node_outbox ORDER BY seq",
            (),
        )
    statuses = []
    for op_type, entity_id, payload in rows:
        if op_type == "task.upsert" and UUID(bytes=entity_id) == UUID(task["id"]):
            status = json.loads(payload)["status"]
            if not statuses or statuses[-1] != status:
                statuses.append(status)
    assert statuses == ["todo", "inprogress", "inreview", "done"]
    kinds = {r[0] for r in rows}
    assert {"attempt.upsert", "execution.upsert", "logs.append"} <= kinds


@pytest.mark.asyncio
async def test_pull_request_without_gh_is_a_clear_error(
    hx: Any, git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the GitHub CLI on PATH, opening a PR answers 422 saying gh is not installed."""
    _, attempt = await hx.run_script(git_repo, "true")
    await hx.wait_idle(attempt["id"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", str(bin_dir))
    r = await hx.client.post(f"/api/task-attempts/{attempt['id']}/pr", json={})
    assert r.status_code == 422
    assert "gh is not installed" in r.json()["detail"]


@pytest.mark.asyncio
async def test_unknown_executable_fails_the_run_with_setup_required(
    hx: Any, git_repo: Path
) -> None:
    """A script whose executable is missing fails cleanly with exit code 127 in the logs."""
    task, attempt = await hx.run_script(git_repo, "definitely-not-a-command-xyz")
    [proc] = await hx.wait_idle(attempt["id"])
    assert (proc.status, proc.exit_code) == ("failed", 127)
    assert any("not found" in e.content for e in await hx.logs(proc.id))
    assert await hx.task_status(task["id"]) == "inreview"
