"""Screenshots of the node board for the docs: ``docs/images/node-board.png`` (a project's kanban)
and ``docs/images/node-task.png`` (a task with its attempt's log and diff), 1280x800 each.

Starts a real ``vk-node serve`` (standalone, SCRIPT enabled) in a temporary directory, fills a
demo repository with tasks in several states through the REST API — some waiting, one running,
some run to review, one merged — and photographs the pages in headless Chromium
(``tests/support/browser.py``). Run from the repository's root:

    .venv/bin/python scripts/node_screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.browser import launch_chromium  # noqa: E402
from support.cluster import NodeProcess, RestClient, make_demo_repo, wait_until  # noqa: E402

_LIMIT_BYTES = 200_000

_SCRIPTS = {
    "Add a changelog": (
        "echo 'writing CHANGELOG.md'; printf '# Changelog\\n\\n- Board for the node\\n' "
        "> CHANGELOG.md; echo 'done'"
    ),
    "Expand the notes": (
        'for i in 1 2 3; do echo "note $i"; echo "note $i" >> notes.txt; done; '
        "sed -i 's/first line/first line, edited/' notes.txt; echo 'notes expanded'"
    ),
    "Rename the readme title": "sed -i 's/# demo/# Demo project/' README.md; echo renamed",
}


def _task(api: RestClient, project_id: str, title: str, script: str = "") -> dict[str, Any]:
    body = {"project_id": project_id, "title": title, "description": script or None}
    task: dict[str, Any] = api.post("/tasks", json=body)
    return task


def _run(api: RestClient, task_id: str) -> dict[str, Any]:
    body = {"task_id": task_id, "executor": "SCRIPT", "base_branch": "main"}
    attempt: dict[str, Any] = api.post("/task-attempts", json=body)
    return attempt


def _in_review(api: RestClient, task_id: str) -> None:
    wait_until(
        lambda: api.get(f"/tasks/{task_id}")["status"] == "inreview",
        timeout=20,
        what=f"task {task_id} in review",
    )


def _seed(api: RestClient, repo: Path) -> tuple[str, str]:
    """The demo project and its tasks; returns the project id and the task to photograph."""
    project = api.post("/projects", json={"name": "demo-app", "git_repo_path": str(repo)})
    pid = project["id"]
    for title in ("Write the install guide", "Add a dark theme toggle", "Profile the slow query"):
        _task(api, pid, title)
    ran = {title: _task(api, pid, title, script) for title, script in _SCRIPTS.items()}
    for task in ran.values():
        _run(api, task["id"])
    for task in ran.values():
        _in_review(api, task["id"])
    merged = ran["Rename the readme title"]
    attempt = api.get("/task-attempts", params={"task_id": merged["id"]})[0]
    api.post(f"/task-attempts/{attempt['id']}/merge")
    running = _task(api, pid, "Run the nightly checks", "echo 'checking...'; sleep 120")
    _run(api, running["id"])
    return pid, ran["Expand the notes"]["id"]


def _shoot(base_url: str, project_id: str, task_id: str, out: Path) -> list[Path]:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{base_url}/projects/{project_id}")
            expect(page.locator(".card").first).to_be_visible()
            board = out / "node-board.png"
            page.screenshot(path=str(board))

            page.goto(f"{base_url}/tasks/{task_id}")
            attempt = page.locator(".attempt").first
            attempt.get_by_role("button", name="Follow log").click()
            expect(page.locator("#log-status")).to_contain_text("completed")
            attempt.get_by_role("button", name="Diff").click()
            expect(page.locator("#diff .add").first).to_be_visible()
            page.evaluate("document.getElementById('attempts-heading').scrollIntoView()")
            task = out / "node-task.png"
            page.screenshot(path=str(task))
        finally:
            browser.close()
    return [board, task]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vk-node-shots-") as tmp:
        work = Path(tmp)
        node = NodeProcess(work, name="laptop")
        node.start()
        try:
            project_id, task_id = _seed(node.api, make_demo_repo(work / "demo-app"))
            shots = _shoot(node.url, project_id, task_id, args.out)
        finally:
            node.stop()
            node.close()
    for shot in shots:
        size = shot.stat().st_size
        print(f"{shot} ({size} bytes)")
        if size >= _LIMIT_BYTES:
            print(f"{shot.name} is {size} bytes, over {_LIMIT_BYTES}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
