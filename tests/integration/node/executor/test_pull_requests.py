"""Pull requests of attempts: opening one, attaching an existing one, and the PR monitor's round.

GitHub is not reachable from this machine, so a fake ``gh`` (``tests/fixtures/gh``, see
:mod:`support.fake_gh`) stands in for it on PATH: it answers ``gh pr view --json ...`` in the
real CLI's format from a JSON state file the test edits to play GitHub (a PR merged, closed).
git, the store and the node app are real."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from support.fake_gh import FakeGitHub
from vk_node.executor.pull_requests import refresh_open_prs
from vk_node.store.sql import fetch_all

Git = Callable[..., str]


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    fake = FakeGitHub(tmp_path / "gh-bin")
    monkeypatch.setenv("PATH", f"{fake.bin_dir}{os.pathsep}{os.environ['PATH']}")
    return fake


async def _finished(hx: Any, repo: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    task, attempt = await hx.run_script(repo, "echo feature > feature.txt")
    await hx.wait_idle(attempt["id"])
    return task, attempt


@pytest.mark.asyncio
async def test_open_pr_pushes_the_branch_and_records_the_pr(
    hx: Any, git_repo: Path, git: Git, github: FakeGitHub, tmp_path: Path
) -> None:
    """``POST .../pr`` pushes the branch to origin (a bare repository) and records the PR gh
    created as an open PR row."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(git_repo, "remote", "add", "origin", str(bare))
    task, attempt = await _finished(hx, git_repo)
    merge = await hx.ok("POST", f"/task-attempts/{attempt['id']}/pr", json={"title": "Nice"})
    assert (merge["merge_type"], merge["pr_number"], merge["pr_status"]) == ("pr", 1, "open")
    assert merge["pr_url"] == "https://github.com/acme/widgets/pull/1"
    assert git(bare, "rev-parse", f"refs/heads/{attempt['branch']}") == git(
        git_repo, "rev-parse", f"refs/heads/{attempt['branch']}"
    )
    assert await hx.task_status(task["id"]) == "inreview"


@pytest.mark.asyncio
async def test_attach_by_number_url_or_branch(hx: Any, git_repo: Path, github: FakeGitHub) -> None:
    """A PR is attached by its number, by its URL, or found for the attempt's branch (gh gets
    the branch after ``--``); the same PR twice is 409; the rows are listed newest first."""
    _, attempt = await _finished(hx, git_repo)
    url = f"/task-attempts/{attempt['id']}"
    pr_url = github.open_pr(attempt["branch"], 7)
    merge = await hx.ok("POST", url + "/pr/attach", json={})
    assert (merge["pr_number"], merge["pr_url"], merge["pr_status"]) == (7, pr_url, "open")
    assert github.calls()[-1][-2:] == ["--", attempt["branch"]]
    for body in ({"pr_number": 7}, {"pr_url": pr_url}):
        r = await hx.client.post(f"/api{url}/pr/attach", json=body)
        assert r.status_code == 409, r.text
    github.open_pr("elsewhere", 8)
    second = await hx.ok("POST", url + "/pr/attach", json={"pr_number": 8})
    assert second["pr_number"] == 8
    rows = await hx.ok("GET", url + "/merges")
    assert [m["pr_number"] for m in rows] == [8, 7]


@pytest.mark.asyncio
async def test_attaching_a_merged_pr_makes_the_task_done(
    hx: Any, git_repo: Path, github: FakeGitHub
) -> None:
    """A PR GitHub already merged is recorded as merged (with its merge commit and time) and the
    task becomes done."""
    task, attempt = await _finished(hx, git_repo)
    github.open_pr(attempt["branch"], 3)
    github.set_state(3, "MERGED", merge_commit="a" * 40)
    merge = await hx.ok("POST", f"/task-attempts/{attempt['id']}/pr/attach", json={"pr_number": 3})
    assert merge["pr_status"] == "merged"
    assert merge["pr_merge_commit_sha"] == "a" * 40
    assert merge["pr_merged_at"].startswith("2026-01-02T03:04:05")
    assert await hx.task_status(task["id"]) == "done"


@pytest.mark.asyncio
async def test_monitor_round_records_merged_and_closed_prs(
    hx: Any, git_repo: Path, github: FakeGitHub
) -> None:
    """One monitor round: an open PR stays open; after GitHub merges one and closes another, the
    merged one's task is done and the closed one's task keeps its status."""
    merged_task, merged_attempt = await _finished(hx, git_repo)
    closed_task = await hx.task(merged_task["project_id"], "other", "echo other > other.txt")
    closed_attempt = await hx.attempt(closed_task["id"])
    await hx.wait_idle(closed_attempt["id"])
    github.open_pr(merged_attempt["branch"], 11)
    github.open_pr(closed_attempt["branch"], 12)
    for attempt in (merged_attempt, closed_attempt):
        await hx.ok("POST", f"/task-attempts/{attempt['id']}/pr/attach", json={})
    assert await refresh_open_prs(hx.executor) == 0
    github.set_state(11, "MERGED")
    github.set_state(12, "CLOSED")
    assert await refresh_open_prs(hx.executor) == 2
    assert await hx.task_status(merged_task["id"]) == "done"
    assert await hx.task_status(closed_task["id"]) == "inreview"
    [merged] = await hx.ok("GET", f"/task-attempts/{merged_attempt['id']}/merges")
    [closed] = await hx.ok("GET", f"/task-attempts/{closed_attempt['id']}/merges")
    assert (merged["pr_status"], closed["pr_status"]) == ("merged", "closed")
    assert closed["pr_merged_at"] is None
    assert await refresh_open_prs(hx.executor) == 0  # nothing open is left to ask about


@pytest.mark.asyncio
async def test_a_merged_pr_of_a_linked_project_queues_done_for_the_hive(
    hx: Any, git_repo: Path, github: FakeGitHub
) -> None:
    """The monitor's ``done`` goes to the outbox as a task.upsert, like every status change of a
    linked project's task."""
    project = await hx.project(git_repo)
    await hx.ok("POST", f"/projects/{project['id']}/link", json={"swarm_project_id": str(uuid4())})
    task = await hx.task(project["id"], "linked", "echo linked > l.txt")
    attempt = await hx.attempt(task["id"])
    await hx.wait_idle(attempt["id"])
    github.open_pr(attempt["branch"], 5)
    await hx.ok("POST", f"/task-attempts/{attempt['id']}/pr/attach", json={})
    github.set_state(5, "MERGED")
    assert await refresh_open_prs(hx.executor) == 1
    async with hx.store.read() as conn:
        rows = await fetch_all(
            conn, "SELECT entity_id, payload FROM node_outbox WHERE op_type = 'task.upsert'", ()
        )
    last = [json.loads(p) for e, p in rows if UUID(bytes=e) == UUID(task["id"])][-1]
    assert last["status"] == "done"


@pytest.mark.asyncio
async def test_monitor_round_survives_gh_failures(
    hx: Any, git_repo: Path, github: FakeGitHub
) -> None:
    """A PR gh no longer knows is logged and kept open; the round goes on with the others."""
    task, attempt = await _finished(hx, git_repo)
    github.open_pr(attempt["branch"], 21)
    await hx.ok("POST", f"/task-attempts/{attempt['id']}/pr/attach", json={})
    (github.bin_dir / "gh-state.json").write_text('{"prs": []}')
    assert await refresh_open_prs(hx.executor) == 0
    [row] = await hx.ok("GET", f"/task-attempts/{attempt['id']}/merges")
    assert row["pr_status"] == "open"
    assert await hx.task_status(task["id"]) == "inreview"


@pytest.mark.asyncio
async def test_attach_refuses_hostile_or_inconsistent_input(
    hx: Any, git_repo: Path, github: FakeGitHub
) -> None:
    """URLs that are not https pull request addresses, options and bad numbers are 400, a
    number that contradicts the URL 422, all before gh runs; an unknown PR is 422 with gh's own
    words."""
    _, attempt = await _finished(hx, git_repo)
    url = f"/api/task-attempts/{attempt['id']}/pr/attach"
    bad: list[dict[str, Any]] = [
        {"pr_url": "--help"},
        {"pr_url": "file:///etc/passwd"},
        {"pr_url": "http://github.com/a/b/pull/1"},
        {"pr_url": "https://github.com/a/b/pull/1 --repo x/y"},
        {"pr_url": "https://github.com/a/b/pull/1\n"},
        {"pr_url": "https://github.com/a/b/issues/1"},
        {"pr_number": 0},
        {"pr_number": -1},
        {"pr_number": "1; rm -rf /"},
        {"pr_number": 2**40},
        {"branch": "x"},
    ]
    before = len(github.calls())
    for body in bad:
        r = await hx.client.post(url, json=body)
        assert r.status_code == 400, (body, r.text)
    both = {"pr_number": 2, "pr_url": "https://github.com/a/b/pull/1"}
    r = await hx.client.post(url, json=both)
    assert r.status_code == 422, r.text
    assert len(github.calls()) == before
    r = await hx.client.post(url, json={"pr_number": 99})
    assert r.status_code == 422, r.text
    assert "no pull requests found" in r.json()["detail"]


@pytest.mark.asyncio
async def test_attach_without_gh_is_422(
    hx: Any, git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the GitHub CLI on PATH, attaching answers 422 saying gh is not installed."""
    _, attempt = await _finished(hx, git_repo)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    r = await hx.client.post(f"/api/task-attempts/{attempt['id']}/pr/attach", json={})
    assert r.status_code == 422, r.text
    assert "gh is not installed" in r.json()["detail"]
