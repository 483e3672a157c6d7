"""Screenshots of the hive's swarm board for the docs: a real hive and two real nodes (the test
Cluster) with a few tasks, one script run, headless Chromium (the tests' launcher).

    .venv/bin/python scripts/screenshots.py [--out docs/images]

Writes hive-home.png, hive-board.png, hive-task.png, hive-nodes.png (1280x800) and
hive-board-phone.png (390x844).
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
from support.cluster import Cluster  # noqa: E402

SCRIPT = 'for i in $(seq 1 40); do echo "step $i: checking the build"; sleep 0.05; done'
LONG_SCRIPT = 'for i in $(seq 1 600); do echo "working on item $i"; sleep 1; done'


def _populate(cluster: Cluster) -> str:
    """Labels, tasks in every column and two runs; the id of the task to show."""
    org = cluster.admin.organization_id
    labels = {
        name: cluster.api.post(
            "/swarm/labels", json={"organization_id": org, "name": name, "color": color}
        )["id"]
        for name, color in (("bug", "#d93f0b"), ("docs", "#0e8a16"), ("backend", "#1d76db"))
    }

    def task(title: str, description: str, *tags: str, status: str | None = None) -> Any:
        created = cluster.api.post(
            "/tasks",
            json={
                "project_id": cluster.swarm_project_id,
                "title": title,
                "description": description,
                "executor": "SCRIPT",
            },
        )["task"]
        for tag in tags:
            cluster.api.post(f"/tasks/{created['id']}/labels/{labels[tag]}")
        if status:
            cluster.api.patch(f"/tasks/{created['id']}", json={"status": status})
        return created

    task("Write the release notes", "Summarise the changes since 0.1.", "docs")
    task("Flaky login test", "Find out why the test fails one run in fifty.", "bug", "backend")
    task("Rename the settings page", "", status="cancelled")
    task("Upgrade PostgreSQL to 16", "Check the migrations on a copy first.", "backend")
    a, b = cluster.nodes
    done = cluster.dispatch(a, "Check the build", SCRIPT)
    cluster.wait(
        lambda: cluster.api.get(f"/tasks/{done['task']['id']}")["status"] == "in-review",
        what="the first run to finish",
    )
    shown = cluster.dispatch(b, "Index the repository", LONG_SCRIPT)
    cluster.wait(
        lambda: cluster.api.get(f"/tasks/{shown['task']['id']}/logs")["logs"],
        what="the second run to print",
    )
    return str(shown["task"]["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="vk-shots-") as tmp,
        Cluster(Path(tmp), nodes_count=2, project_name="Website") as cluster,
    ):
        task_id = _populate(cluster)
        link = cluster.hive.login_link(cluster.email)
        from playwright.sync_api import expect, sync_playwright

        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                laptop = browser.new_context(viewport={"width": 1280, "height": 800})
                page = laptop.new_page()
                page.goto(link)
                url = cluster.hive.url
                shots = [
                    ("hive-home.png", "/"),
                    ("hive-board.png", f"/projects/{cluster.swarm_project_id}"),
                    ("hive-task.png", f"/tasks/{task_id}"),
                    ("hive-nodes.png", "/nodes"),
                ]
                for name, path in shots:
                    page.goto(url + path)
                    page.wait_for_load_state("networkidle")
                    if name == "hive-task.png":
                        expect(page.locator("#log")).to_contain_text("working on item 2")
                    page.screenshot(path=str(args.out / name))
                cookies = laptop.cookies()
                phone = browser.new_context(
                    viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True
                )
                phone.add_cookies(cookies)
                small = phone.new_page()
                small.goto(f"{url}/projects/{cluster.swarm_project_id}")
                small.wait_for_load_state("networkidle")
                small.screenshot(path=str(args.out / "hive-board-phone.png"))
            finally:
                browser.close()
    for name in ("hive-home", "hive-board", "hive-task", "hive-nodes", "hive-board-phone"):
        path = args.out / f"{name}.png"
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
