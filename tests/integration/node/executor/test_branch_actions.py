"""Git actions on an attempt branch over REST, against real git: a bare repository as the
project's ``origin``, the project repository, and the attempt's worktree made by the real
attempt path (a SCRIPT run that commits its change)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Git = Callable[..., str]


@pytest.fixture
def origin(tmp_path: Path, git_repo: Path, git: Git) -> Path:
    """A bare repository, the project's ``origin``, holding ``main``."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(git_repo, "remote", "add", "origin", str(bare))
    git(git_repo, "push", "-q", "origin", "main")
    return bare


async def _finished(hx: Any, repo: Path, script: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A task whose SCRIPT attempt ran ``script`` (its changes committed on the branch)."""
    task, attempt = await hx.run_script(repo, script)
    await hx.wait_idle(attempt["id"])
    return task, attempt


def _commit_on_main(git: Git, repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"main changes {name}")
    return git(repo, "rev-parse", "HEAD")


@pytest.mark.asyncio
async def test_push_sends_the_branch_to_origin_and_a_diverged_origin_is_409(
    hx: Any, git_repo: Path, origin: Path, git: Git, tmp_path: Path
) -> None:
    """A push puts the branch on origin (tracked: nothing left to push); when origin's branch
    gains a commit the local one lacks, a push is 409 push_rejected with git's rejected line and
    a force push overwrites it."""
    _, attempt = await _finished(hx, git_repo, "echo feature > feature.txt")
    branch = attempt["branch"]
    url = f"/task-attempts/{attempt['id']}"
    status = await hx.ok("POST", url + "/push", json={})
    tip = git(git_repo, "rev-parse", f"refs/heads/{branch}")
    assert git(origin, "rev-parse", f"refs/heads/{branch}") == tip
    assert (status["remote_ahead"], status["remote_behind"]) == (0, 0)
    assert (status["ahead"], status["behind"]) == (1, 0)

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", branch, str(origin), str(clone))
    _commit_on_main(git, clone, "other.txt", "someone else\n")
    git(clone, "push", "-q", "origin", branch)
    (Path(attempt["container_ref"]) / "more.txt").write_text("more\n")
    git(attempt["container_ref"], "add", "more.txt")
    git(attempt["container_ref"], "commit", "-q", "-m", "more")
    r = await hx.client.post(f"/api{url}/push", json={})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "push_rejected"
    assert "[rejected]" in r.json()["detail"]
    await hx.ok("POST", url + "/push", json={"force": True})
    assert git(origin, "rev-parse", f"refs/heads/{branch}") == git(
        git_repo, "rev-parse", f"refs/heads/{branch}"
    )


@pytest.mark.asyncio
async def test_push_without_an_origin_remote_is_422(hx: Any, git_repo: Path) -> None:
    """A repository with no ``origin`` answers 422 saying so (no stack trace, no 500)."""
    _, attempt = await _finished(hx, git_repo, "echo x > x.txt")
    r = await hx.client.post(f"/api/task-attempts/{attempt['id']}/push", json={})
    assert r.status_code == 422, r.text
    assert "no remote named 'origin'" in r.json()["detail"]


@pytest.mark.asyncio
async def test_rebase_replays_the_branch_onto_the_moved_base(
    hx: Any, git_repo: Path, git: Git
) -> None:
    """After main moves on, the branch is one behind; a rebase puts its commit on main's tip."""
    _, attempt = await _finished(hx, git_repo, "echo feature > feature.txt")
    url = f"/task-attempts/{attempt['id']}"
    main_tip = _commit_on_main(git, git_repo, "main.txt", "main\n")
    before = await hx.ok("GET", url + "/branch-status")
    assert (before["ahead"], before["behind"]) == (1, 1)
    after = await hx.ok("POST", url + "/rebase", json={})
    assert (after["ahead"], after["behind"]) == (1, 0)
    worktree = attempt["container_ref"]
    assert git(worktree, "rev-parse", "HEAD~1") == main_tip
    assert (Path(worktree) / "main.txt").exists()
    assert (Path(worktree) / "feature.txt").read_text() == "feature\n"
    assert git(worktree, "status", "--porcelain") == ""


@pytest.mark.asyncio
async def test_a_rebase_conflict_is_409_and_leaves_everything_as_before(
    hx: Any, git_repo: Path, git: Git
) -> None:
    """Branch and main both change README: the rebase is 409 rebase_conflict naming README, and
    it is aborted — HEAD as before, the worktree clean, no rebase in progress."""
    _, attempt = await _finished(hx, git_repo, "echo from-the-attempt > README")
    url = f"/task-attempts/{attempt['id']}"
    worktree = attempt["container_ref"]
    head = git(worktree, "rev-parse", "HEAD")
    _commit_on_main(git, git_repo, "README", "from-main\n")
    r = await hx.client.post(f"/api{url}/rebase", json={})
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["code"] == "rebase_conflict"
    assert "README" in problem["detail"]
    assert "aborted" in problem["detail"]
    assert git(worktree, "rev-parse", "HEAD") == head
    assert git(worktree, "symbolic-ref", "HEAD") == f"refs/heads/{attempt['branch']}"
    assert git(worktree, "status", "--porcelain") == ""
    status = await hx.ok("GET", url + "/branch-status")
    assert status["rebase_in_progress"] is False
    assert (status["ahead"], status["behind"]) == (1, 1)


@pytest.mark.asyncio
async def test_a_rebase_left_in_progress_by_hand_can_be_aborted(
    hx: Any, git_repo: Path, git: Git
) -> None:
    """A conflicting rebase started by hand in the worktree shows in branch-status, blocks the
    node's own rebase (409) and is undone by ``rebase/abort``; a second abort is 409."""
    _, attempt = await _finished(hx, git_repo, "echo from-the-attempt > README")
    url = f"/task-attempts/{attempt['id']}"
    worktree = attempt["container_ref"]
    head = git(worktree, "rev-parse", "HEAD")
    _commit_on_main(git, git_repo, "README", "from-main\n")
    with pytest.raises(subprocess.CalledProcessError):
        git(worktree, "rebase", "main")
    assert (await hx.ok("GET", url + "/branch-status"))["rebase_in_progress"] is True
    r = await hx.client.post(f"/api{url}/rebase", json={})
    assert r.status_code == 409, r.text
    assert "already in progress" in r.json()["detail"]
    status = await hx.ok("POST", url + "/rebase/abort")
    assert status["rebase_in_progress"] is False
    assert git(worktree, "rev-parse", "HEAD") == head
    assert git(worktree, "status", "--porcelain") == ""
    r = await hx.client.post(f"/api{url}/rebase/abort")
    assert r.status_code == 409, r.text


@pytest.mark.asyncio
async def test_rebase_onto_a_new_base_makes_it_the_target(
    hx: Any, git_repo: Path, git: Git
) -> None:
    """``new_base_branch`` moves the branch's own commit onto that branch and retargets the
    attempt; an unknown base is 422 and changes nothing."""
    _, attempt = await _finished(hx, git_repo, "echo feature > feature.txt")
    url = f"/task-attempts/{attempt['id']}"
    git(git_repo, "branch", "develop", "main")
    git(git_repo, "checkout", "-q", "develop")
    develop_tip = _commit_on_main(git, git_repo, "dev.txt", "dev\n")
    git(git_repo, "checkout", "-q", "main")
    r = await hx.client.post(f"/api{url}/rebase", json={"new_base_branch": "nope"})
    assert r.status_code == 422, r.text
    status = await hx.ok("POST", url + "/rebase", json={"new_base_branch": "develop"})
    assert status["target_branch"] == "develop"
    assert (status["ahead"], status["behind"]) == (1, 0)
    assert git(attempt["container_ref"], "rev-parse", "HEAD~1") == develop_tip
    assert (await hx.ok("GET", url))["target_branch"] == "develop"


@pytest.mark.asyncio
async def test_rename_moves_branch_worktree_and_child_attempts(
    hx: Any, git_repo: Path, git: Git
) -> None:
    """The branch is renamed in git (the worktree follows), the attempt row too, and a child
    task's attempt based on the old name now targets the new one; a taken name is 409."""
    task, attempt = await _finished(hx, git_repo, "echo feature > feature.txt")
    old = attempt["branch"]
    child = await hx.ok(
        "POST",
        "/tasks",
        201,
        json={"project_id": task["project_id"], "title": "child", "parent_task_id": task["id"]},
    )
    child_attempt = await hx.attempt(child["id"], base_branch=old)
    await hx.wait_idle(child_attempt["id"])
    url = f"/task-attempts/{attempt['id']}"
    r = await hx.client.post(f"/api{url}/rename-branch", json={"new_branch_name": "main"})
    assert r.status_code == 409, r.text
    renamed = await hx.ok("POST", url + "/rename-branch", json={"new_branch_name": "feature/nice"})
    assert renamed["branch"] == "feature/nice"
    assert git(attempt["container_ref"], "symbolic-ref", "HEAD") == "refs/heads/feature/nice"
    assert git(git_repo, "branch", "--list", old) == ""
    assert (await hx.ok("GET", f"/task-attempts/{child_attempt['id']}"))[
        "target_branch"
    ] == "feature/nice"


@pytest.mark.asyncio
async def test_rename_while_the_attempt_runs_is_409(hx: Any, git_repo: Path, git: Git) -> None:
    """While a process of the attempt runs its branch keeps its name."""
    _, attempt = await hx.run_script(git_repo, "sleep 30")
    await hx.wait_running(attempt["id"])
    r = await hx.client.post(
        f"/api/task-attempts/{attempt['id']}/rename-branch", json={"new_branch_name": "other"}
    )
    assert r.status_code == 409, r.text
    assert "runs" in r.json()["detail"]
    await hx.ok("POST", f"/task-attempts/{attempt['id']}/stop")
    assert git(git_repo, "branch", "--list", "other") == ""


@pytest.mark.asyncio
async def test_change_target_branch_needs_an_existing_branch(
    hx: Any, git_repo: Path, git: Git
) -> None:
    """The base becomes an existing branch (diff and status follow); a missing one is 422, the
    attempt's own branch 422."""
    _, attempt = await _finished(hx, git_repo, "echo feature > feature.txt")
    url = f"/task-attempts/{attempt['id']}"
    for name in ("missing", attempt["branch"]):
        r = await hx.client.post(f"/api{url}/change-target-branch", json={"target_branch": name})
        assert r.status_code == 422, r.text
    git(git_repo, "branch", "release", "main")
    changed = await hx.ok("POST", url + "/change-target-branch", json={"target_branch": "release"})
    assert changed["target_branch"] == "release"
    assert (await hx.ok("GET", url + "/diff"))["base_branch"] == "release"


@pytest.mark.asyncio
async def test_hostile_branch_names_are_refused_before_git_sees_them(
    hx: Any, git_repo: Path, tmp_path: Path
) -> None:
    """Names that look like options, hold characters no branch has or are too long are 400 (the
    request's schema); names git itself refuses (``@{-1}``, ``..``, ``.lock``) are 422 from
    ``git check-ref-format --branch``. Nothing runs (no file an ``--exec`` would create) and
    the attempt keeps its branch and base."""
    _, attempt = await _finished(hx, git_repo, "echo feature > feature.txt")
    url = f"/api/task-attempts/{attempt['id']}"
    pwned = tmp_path / "pwned"
    refused = {
        f"--exec=touch {pwned}": 400,
        "-D": 400,
        "HEAD~1": 400,
        "a b": 400,
        "": 400,
        "x" * 300: 400,
        "@{-1}": 422,
        "a..b": 422,
        "x.lock": 422,
        "main\n": 422,
        "refs/../../x": 422,
    }
    for name, status in refused.items():
        for path, field in (
            ("/rename-branch", "new_branch_name"),
            ("/change-target-branch", "target_branch"),
            ("/rebase", "new_base_branch"),
        ):
            r = await hx.client.post(url + path, json={field: name})
            assert r.status_code == status, (name, path, r.text)
    assert not pwned.exists()
    current = await hx.ok("GET", f"/task-attempts/{attempt['id']}")
    assert (current["branch"], current["target_branch"]) == (attempt["branch"], "main")


@pytest.mark.asyncio
async def test_a_foreign_page_cannot_push_rename_or_rebase(
    hx: Any, git_repo: Path, origin: Path, git: Git
) -> None:
    """The node API guard covers the branch actions: a cross-origin request is 403 and a
    text/plain body (a form a page may send without CORS) 415; the branch is neither pushed,
    renamed nor moved."""
    _, attempt = await _finished(hx, git_repo, "echo feature > feature.txt")
    url = f"/api/task-attempts/{attempt['id']}"
    tip = git(git_repo, "rev-parse", f"refs/heads/{attempt['branch']}")
    writes = [
        ("/push", {"force": True}),
        ("/rename-branch", {"new_branch_name": "stolen"}),
        ("/rebase", {}),
        ("/change-target-branch", {"target_branch": "main"}),
        ("/pr/attach", {"pr_number": 1}),
    ]
    for path, body in writes:
        r = await hx.client.post(url + path, json=body, headers={"origin": "https://evil.test"})
        assert r.status_code == 403, (path, r.text)
        r = await hx.client.post(
            url + path, content=json.dumps(body), headers={"content-type": "text/plain"}
        )
        assert r.status_code == 415, (path, r.text)
    assert git(origin, "branch", "--list", attempt["branch"]) == ""
    assert git(git_repo, "rev-parse", f"refs/heads/{attempt['branch']}") == tip
    assert (await hx.ok("GET", f"/task-attempts/{attempt['id']}"))["branch"] == attempt["branch"]
