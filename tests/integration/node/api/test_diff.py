"""``GET /api/task-attempts/{id}/diff``: an attempt's changes against its base branch, read from a
real worktree of a real git repository by a real SCRIPT run (real SQLite, no mocks)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from vk_node.context import NodeContext
from vk_node.executor.diff import attempt_diff
from vk_node.store.repositories import task_attempts as attempts_repo

Client = AsyncTestClient[Litestar]


async def _finished_attempt(client: Client, app: Litestar, repo: Path, script: str) -> dict:
    """A SCRIPT attempt running ``script`` in its worktree, after its run ended."""
    project = await client.post("/api/projects", json={"name": "p", "git_repo_path": str(repo)})
    assert project.status_code == 201, project.text
    body = {"project_id": project.json()["id"], "title": "diff me", "description": script}
    task = (await client.post("/api/tasks", json=body)).json()
    body = {"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"}
    r = await client.post("/api/task-attempts", json=body)
    assert r.status_code == 202, r.text
    attempt: dict = r.json()
    ctx: NodeContext = app.state.node
    deadline = time.monotonic() + 20
    while ctx.executor.has_running_chain(UUID(attempt["id"])):
        assert time.monotonic() < deadline, "the run did not end"
        await asyncio.sleep(0.05)
    return (await client.get(f"/api/task-attempts/{attempt['id']}")).json()


def _git(cwd: Path | str, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(cwd)}
    env["PATH"] = "/usr/bin:/bin:/usr/local/bin"
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)
    return done.stdout.decode()


@pytest.mark.asyncio
async def test_a_clean_worktree_has_an_empty_diff(
    client: Client, app: Litestar, git_repo: Path
) -> None:
    """An attempt that changed nothing: no files, an empty diff, base and head the same commit."""
    attempt = await _finished_attempt(client, app, git_repo, "true")
    r = await client.get(f"/api/task-attempts/{attempt['id']}/diff")
    assert r.status_code == 200, r.text
    diff = r.json()
    assert diff["files"] == []
    assert diff["diff"] == ""
    assert diff["diff_bytes"] == 0
    assert diff["truncated"] is False
    assert diff["base_branch"] == "main"
    assert diff["base_commit"] == diff["head_commit"] == _git(git_repo, "rev-parse", "main").strip()


@pytest.mark.asyncio
async def test_committed_uncommitted_and_untracked_changes_are_all_in_the_diff(
    client: Client, app: Litestar, git_repo: Path
) -> None:
    """The run's commit, a later edit of a committed file and a new untracked file all show up;
    an ignored file does not; reading the diff leaves the worktree's own index untouched; a
    commit added to the base branch afterwards is not shown as a reverse change."""
    attempt = await _finished_attempt(
        client, app, git_repo, "printf 'hello\\n' > hello.txt && printf 'x.log\\n' > .gitignore"
    )
    worktree = Path(attempt["container_ref"])
    assert "hello.txt" in _git(worktree, "show", "--stat", "HEAD")  # the node committed it
    (worktree / "hello.txt").write_text("hello\nagain\n")
    (worktree / "new.txt").write_text("brand new\n")
    (worktree / "x.log").write_text("ignored\n")
    (git_repo / "later.txt").write_text("on main only\n")
    _git(git_repo, "add", "later.txt")
    _git(git_repo, "commit", "-q", "-m", "later on main")
    status_before = _git(worktree, "status", "--porcelain")

    r = await client.get(f"/api/task-attempts/{attempt['id']}/diff")
    assert r.status_code == 200, r.text
    diff = r.json()
    files = {f["path"]: (f["additions"], f["deletions"]) for f in diff["files"]}
    assert files == {".gitignore": (1, 0), "hello.txt": (2, 0), "new.txt": (1, 0)}
    text = diff["diff"]
    assert "+hello\n+again\n" in text
    assert "diff --git a/new.txt b/new.txt" in text
    assert "+brand new" in text
    assert "x.log\n" in text  # only as the .gitignore line
    assert "ignored" not in text
    assert "later.txt" not in text
    assert diff["diff_bytes"] == len(text.encode())
    assert diff["head_commit"] == _git(worktree, "rev-parse", "HEAD").strip()
    assert _git(worktree, "status", "--porcelain") == status_before
    assert "?? new.txt" in status_before


@pytest.mark.asyncio
async def test_a_diff_past_the_limit_is_cut_at_a_line(
    client: Client, app: Litestar, git_repo: Path
) -> None:
    """Past the byte limit the text ends at the last whole line before it, ``truncated`` is set,
    and ``diff_bytes`` and ``files`` still describe the whole diff."""
    attempt = await _finished_attempt(client, app, git_repo, "seq 1 2000 > numbers.txt")
    ctx: NodeContext = app.state.node
    async with ctx.store.read() as conn:
        row = await attempts_repo.get(conn, UUID(attempt["id"]))
    whole = await attempt_diff(ctx.executor.git, row)
    cut = await attempt_diff(ctx.executor.git, row, limit_bytes=500)
    assert whole.truncated is False
    assert cut.truncated is True
    assert cut.limit_bytes == 500
    assert cut.diff_bytes == whole.diff_bytes > 500
    assert len(cut.diff.encode()) <= 500
    assert cut.diff.endswith("\n")
    assert whole.diff.startswith(cut.diff)
    assert cut.files == whole.files
    assert [(f.path, f.additions) for f in whole.files] == [("numbers.txt", 2000)]


@pytest.mark.asyncio
async def test_a_missing_worktree_or_base_branch_is_a_clear_409(
    client: Client, app: Litestar, git_repo: Path
) -> None:
    """A worktree removed from disk answers 409 ``worktree_gone`` naming the attempt and its
    kept branch; so does a base branch deleted from the repository."""
    attempt = await _finished_attempt(client, app, git_repo, "echo hi > a.txt")
    _git(git_repo, "branch", "-q", "other", "main")
    _git(git_repo, "checkout", "-q", "other")
    _git(git_repo, "branch", "-q", "-D", "main")
    r = await client.get(f"/api/task-attempts/{attempt['id']}/diff")
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "worktree_gone"
    assert "base branch 'main'" in r.json()["detail"]

    shutil.rmtree(attempt["container_ref"])
    r = await client.get(f"/api/task-attempts/{attempt['id']}/diff")
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["code"] == "worktree_gone"
    assert attempt["id"] in problem["detail"]
    assert attempt["branch"] in problem["detail"]


@pytest.mark.asyncio
async def test_unknown_and_malformed_attempt_ids_are_4xx(client: Client) -> None:
    """An unknown attempt id is a 404 problem; a malformed one a 4xx problem, never a 5xx."""
    r = await client.get(f"/api/task-attempts/{uuid4()}/diff")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    for bad in ("not-a-uuid", "1" * 500, "%00"):
        r = await client.get(f"/api/task-attempts/{bad}/diff")
        assert 400 <= r.status_code < 500, (bad, r.text)
        assert r.json()["status"] == r.status_code
