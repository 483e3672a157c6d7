"""Attempt worktrees: naming, orphan cleanup, vanished and archived worktrees, copy files."""

# Tests look at files and /proc synchronously on purpose (tiny reads, no event-loop load).
# ruff: noqa: ASYNC240

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from vk_node.executor.worktree import branch_name, slugify


def test_branch_and_directory_names_follow_the_spec() -> None:
    """Branches are <prefix>/<4 hex>-<slug of at most 16 chars>; no prefix means no slash."""
    attempt = UUID("abcdef01-2345-6789-abcd-ef0123456789")
    assert slugify("  Fix: the BIG bug -- now!!  ") == "fix-the-big-bug"
    assert slugify("A very long title that goes on") == "a-very-long-titl"
    assert slugify("***") == "task"
    assert branch_name("vk", attempt, "Fix it") == "vk/abcd-fix-it"
    assert branch_name("", attempt, "Fix it") == "abcd-fix-it"


@pytest.mark.asyncio
async def test_orphan_directories_are_removed_and_live_ones_kept(
    hx: Any, git_repo: Path, node_settings: Any
) -> None:
    """The startup sweep deletes worktree directories no attempt references, never a live one."""
    _, attempt = await hx.run_script(git_repo, "true")
    await hx.wait_idle(attempt["id"])
    orphan = node_settings.worktrees_dir / "dead-beef"
    orphan.mkdir()
    (orphan / "junk").write_text("x")
    assert await hx.executor.worktrees.sweep_orphans() == 1
    assert not orphan.exists()
    assert Path(attempt["container_ref"]).is_dir()


@pytest.mark.asyncio
async def test_vanished_and_archived_worktrees_are_cleaned_up(
    hx: Any, git_repo: Path, git: Any
) -> None:
    """Archiving a task removes its worktree at once and the sweeper marks a vanished worktree
    deleted; the branches (and their commits) stay."""
    proj = await hx.project(git_repo)
    t1 = await hx.task(proj["id"], "one", "echo 1 > one.txt")
    t2 = await hx.task(proj["id"], "two", "echo 2 > two.txt")
    a1, a2 = await hx.attempt(t1["id"]), await hx.attempt(t2["id"])
    await hx.wait_idle(a1["id"])
    await hx.wait_idle(a2["id"])
    git(git_repo, "worktree", "remove", "--force", a1["container_ref"])
    await hx.ok("POST", f"/tasks/{t2['id']}/archive")
    assert not Path(a2["container_ref"]).exists()
    assert await hx.executor.worktrees.sweep() == 1
    got1 = await hx.ok("GET", f"/task-attempts/{a1['id']}")
    got2 = await hx.ok("GET", f"/task-attempts/{a2['id']}")
    assert got1["worktree_deleted"]
    assert got2["worktree_deleted"]
    assert not Path(a2["container_ref"]).exists()
    assert git(git_repo, "show", f"{a2['branch']}:two.txt") == "2"
    # a follow-up recreates the worktree from the branch
    await hx.ok("POST", f"/task-attempts/{a2['id']}/follow-up", 202, json={"prompt": "ls"})
    procs = await hx.wait_idle(a2["id"])
    assert procs[-1].status == "completed"
    assert Path(a2["container_ref"], "two.txt").read_text() == "2\n"


@pytest.mark.asyncio
async def test_copy_files_are_copied_into_the_worktree(hx: Any, git_repo: Path) -> None:
    """Files listed in the project's copy_files (untracked ones such as .env) reach the worktree;
    a missing entry is only a warning."""
    (git_repo / ".env").write_text("SECRET=1\n")
    _, attempt = await hx.run_script(git_repo, "cat .env", copy_files=".env, missing.txt")
    [proc] = await hx.wait_idle(attempt["id"])
    assert [e.content for e in await hx.logs(proc.id)] == ["SECRET=1"]


@pytest.mark.asyncio
async def test_use_parent_worktree_reuses_the_parent_branch(
    hx: Any, git_repo: Path, git: Any
) -> None:
    """A subtask started with use_parent_worktree runs in its parent's worktree and branch."""
    proj = await hx.project(git_repo)
    parent = await hx.task(proj["id"], "parent", "echo p > p.txt")
    pa = await hx.attempt(parent["id"])
    await hx.wait_idle(pa["id"])
    child = await hx.ok(
        "POST",
        "/tasks",
        201,
        json={
            "project_id": proj["id"],
            "title": "child",
            "description": "cat p.txt > c.txt",
            "parent_task_id": parent["id"],
        },
    )
    ca = await hx.attempt(child["id"], use_parent_worktree=True)
    assert (ca["branch"], ca["container_ref"]) == (pa["branch"], pa["container_ref"])
    await hx.wait_idle(ca["id"])
    assert git(git_repo, "show", f"{pa['branch']}:c.txt") == "p"


@pytest.mark.asyncio
async def test_running_task_cannot_be_archived_or_deleted(hx: Any, git_repo: Path) -> None:
    """Archive and delete answer 409 while the task's script runs; after a stop both work and
    delete removes the attempt's worktree."""
    gate = git_repo.parent / "never"
    task, attempt = await hx.run_script(git_repo, f"while [ ! -e {gate} ]; do sleep 0.02; done")
    await hx.wait_running(attempt["id"])
    for method, url in (
        ("POST", f"/tasks/{task['id']}/archive"),
        ("DELETE", f"/tasks/{task['id']}"),
    ):
        r = await hx.client.request(method, "/api" + url)
        assert r.status_code == 409, r.text
        assert "running attempt" in r.json()["detail"]
    await hx.ok("POST", f"/task-attempts/{attempt['id']}/stop")
    await hx.wait_idle(attempt["id"])
    assert Path(attempt["container_ref"]).is_dir()
    deleted = await hx.client.request("DELETE", f"/api/tasks/{task['id']}")
    assert deleted.status_code == 204, deleted.text
    assert not Path(attempt["container_ref"]).exists()
