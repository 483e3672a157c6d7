"""A real ``vk-node serve``: a pull request attached to a finished attempt is followed by the PR
monitor until GitHub merges it, and the task becomes done.

GitHub is not reachable from this machine, so a fake ``gh`` (``tests/fixtures/gh``, see
:mod:`support.fake_gh`) stands in for it first on the node's PATH, answering ``gh pr view --json``
in the real CLI's format from a JSON state file this test edits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from support.cluster import wait_until
from support.fake_gh import FakeGitHub


def test_the_pr_monitor_marks_the_task_done_when_github_merges_the_pr(
    start_node: Any, git_repo: Path, tmp_path: Path
) -> None:
    """Attempt finished (task in review), its open PR attached; GitHub merges it; the node's
    monitor records the merge and the task is done, as REST shows. The monitor interval is
    0.2 s in this test only, so it does not wait the 60 s default between two rounds."""
    github = FakeGitHub(tmp_path / "gh-bin")
    node = start_node(
        tmp_path / "node",
        {
            "VK_NODE_EXECUTORS": "SCRIPT",
            "VK_NODE_PR_MONITOR_INTERVAL_S": "0.2",
            "PATH": f"{github.bin_dir}{os.pathsep}{os.environ['PATH']}",
        },
    )
    with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
        project = http.post("/projects", json={"name": "p", "git_repo_path": str(git_repo)}).json()
        task = http.post(
            "/tasks",
            json={"project_id": project["id"], "title": "t", "description": "echo x > x.txt"},
        ).json()
        r = http.post(
            "/task-attempts",
            json={"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"},
        )
        assert r.status_code == 202, r.text
        attempt = r.json()
        wait_until(
            lambda: http.get(f"/tasks/{task['id']}").json()["status"] == "inreview",
            timeout=15,
            what="the attempt to finish",
        )
        github.open_pr(attempt["branch"], 42)
        r = http.post(f"/task-attempts/{attempt['id']}/pr/attach", json={})
        assert r.status_code == 200, r.text
        assert (r.json()["pr_number"], r.json()["pr_status"]) == (42, "open")

        github.set_state(42, "MERGED", merge_commit="b" * 40)
        wait_until(
            lambda: http.get(f"/tasks/{task['id']}").json()["status"] == "done",
            timeout=15,
            what=lambda: f"the monitor to mark the task done; node log:\n{node.log()[-3000:]}",
        )
        [merge] = http.get(f"/task-attempts/{attempt['id']}/merges").json()
        assert (merge["pr_status"], merge["pr_merge_commit_sha"]) == ("merged", "b" * 40)
    assert node.terminate() == 0
