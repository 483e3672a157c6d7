"""The node board in a real browser against a real ``vk-node serve`` (real SQLite, real git, real
SCRIPT runs): browse projects and a board, create a task, start an attempt and watch its log
arrive while the script still runs, read its diff, stop a run — and the same with an API token,
typed into the board once, carried to the log WebSocket as a subprotocol."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from support.cluster import NodeProcess, RestClient, make_demo_repo, wait_until

TOKEN = "board-e2e-token/with+odd=chars"


def _node(workdir: Path, name: str, env: dict[str, str] | None = None) -> Iterator[NodeProcess]:
    node = NodeProcess(workdir, name=name, env=env)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        node.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    yield from _node(tmp_path_factory.mktemp("node-board"), "board-node")


@pytest.fixture(scope="module")
def project(node: NodeProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    repo = make_demo_repo(tmp_path_factory.mktemp("repos") / "demo")
    created: dict[str, Any] = node.api.post(
        "/projects", json={"name": "Demo project", "git_repo_path": str(repo)}
    )
    return created


def _task(api: RestClient, project: dict[str, Any], title: str, script: str) -> dict[str, Any]:
    body = {"project_id": project["id"], "title": title, "description": script}
    task: dict[str, Any] = api.post("/tasks", json=body)
    return task


def _processes(api: RestClient, task_id: str) -> list[dict[str, Any]]:
    attempts = api.get("/task-attempts", params={"task_id": task_id})
    if not attempts:
        return []
    found: list[dict[str, Any]] = api.get(f"/task-attempts/{attempts[0]['id']}/processes")
    return found


def test_browse_projects_and_create_a_task_on_the_board(
    node: NodeProcess, project: dict[str, Any], page: Page
) -> None:
    """From ``/`` to a project's five-column board; a task created with the board's form shows
    up in the To do column and over REST, description included; Enter on its card opens it."""
    page.goto(node.url + "/")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.get_by_role("link", name="Demo project").click()
    expect(page).to_have_url(f"{node.url}/projects/{project['id']}")
    expect(page.locator(".column")).to_have_count(5)

    page.get_by_text("New task").click()
    page.get_by_label("Title").fill("Written in the browser")
    page.get_by_label("Description").fill("echo from the board")
    page.get_by_role("button", name="Create task").click()
    todo = page.locator('.column[data-status="todo"]')
    expect(todo.get_by_role("link", name="Written in the browser")).to_be_visible()
    expect(page.locator("#flash")).to_contain_text('Created "Written in the browser"')

    tasks = node.api.get("/tasks", params={"project_id": project["id"]})
    mine = [t for t in tasks if t["title"] == "Written in the browser"]
    assert len(mine) == 1
    assert mine[0]["description"] == "echo from the board"
    assert mine[0]["status"] == "todo"

    # Keyboard: the card is a real link, Enter on it opens the task.
    todo.get_by_role("link", name="Written in the browser").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{node.url}/tasks/{mine[0]['id']}")


def test_the_board_fits_a_phone_and_follows_the_dark_scheme(
    node: NodeProcess, project: dict[str, Any], page: Page
) -> None:
    """At a phone's width the board stacks its columns without sideways scrolling; with
    ``prefers-color-scheme: dark`` the page is dark."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{node.url}/projects/{project['id']}")
    expect(page.locator(".column")).to_have_count(5)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert light != dark
    channels = [int(v) for v in re.findall(r"\d+", dark)[:3]]
    assert max(channels) < 64, dark


def test_a_started_attempt_streams_its_log_live_and_shows_its_diff(
    node: NodeProcess, project: dict[str, Any], page: Page, tmp_path: Path
) -> None:
    """A SCRIPT attempt started from the task page streams its first line while the script is
    still running (it waits for a gate file), the next line once the gate opens, then its end,
    and the page's process table and task status follow without a reload; the Diff button shows
    the file the run changed."""
    gate = tmp_path / "gate"
    script = (
        "echo 'first line'; "
        f"while [ ! -e '{gate}' ]; do sleep 0.05; done; "
        "echo 'second line'; echo 'from the run' >> notes.txt"
    )
    task = _task(node.api, project, "Gated script", script)
    page.goto(f"{node.url}/tasks/{task['id']}")
    expect(page.get_by_label("Executor")).to_have_value("SCRIPT")
    expect(page.get_by_label("Base branch")).to_have_value("main")
    page.get_by_role("button", name="Start").click()

    log = page.locator("#log")
    expect(log).to_contain_text("first line")
    # The line arrived while the script still runs: it waits for the gate.
    assert [p["status"] for p in _processes(node.api, task["id"])] == ["running"]
    expect(log).not_to_contain_text("second line")
    gate.touch()
    expect(log).to_contain_text("second line")
    expect(page.locator("#log-status")).to_contain_text("completed, exit 0")
    # The page follows the run without a reload: the process row and the task's status.
    expect(page.locator(".attempt").first.locator(".process-status")).to_have_text(["completed"])
    expect(page.locator("#task-status")).to_have_text("In review")
    expect(page.locator(".attempt").first.locator(".attempt-running")).to_be_hidden()

    page.reload()
    page.locator(".attempt").first.get_by_role("button", name="Diff").click()
    expect(page.locator("#diff-files")).to_contain_text("notes.txt (+1 \N{MINUS SIGN}0)")
    expect(page.locator("#diff .add")).to_contain_text(["+from the run"])


def test_stop_ends_a_running_attempt_from_the_board(
    node: NodeProcess, project: dict[str, Any], page: Page
) -> None:
    """Stop on a running attempt ends its process (seen over REST and on the page); a merge the
    API refuses shows the API's error."""
    task = _task(node.api, project, "Long sleeper", "echo 'sleeping now'; sleep 60")
    page.goto(f"{node.url}/tasks/{task['id']}")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#log")).to_contain_text("sleeping now")

    page.locator(".attempt").first.get_by_role("button", name="Stop").click()
    expect(page.locator("#flash")).to_have_text("Stopped")
    assert all(p["status"] != "running" for p in _processes(node.api, task["id"]))
    expect(page.locator(".processes .state").first).not_to_have_text("running")
    # A failing action shows the API's own words: nothing to merge from a stopped empty run.
    page.locator(".attempt").first.get_by_role("button", name="Merge").click()
    expect(page.locator("#flash")).to_contain_text("Merge failed:")


@pytest.fixture(scope="module")
def token_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    yield from _node(
        tmp_path_factory.mktemp("token-board"), "token-node", {"VK_NODE_API_TOKEN": TOKEN}
    )


def test_with_a_token_the_board_asks_once_and_streams_logs_with_it(
    token_node: NodeProcess, page: Page, tmp_path: Path
) -> None:
    """On a node with an API token the board shows only the token form until the token is typed;
    then pages open (SameSite=Strict cookie), REST calls pass (Bearer from sessionStorage) and
    the log WebSocket streams (token as a subprotocol)."""
    api = RestClient(token_node.url + "/api", TOKEN)
    try:
        _token_flow(token_node, api, page, tmp_path)
    finally:
        api.close()


def _token_flow(token_node: NodeProcess, api: RestClient, page: Page, tmp_path: Path) -> None:
    repo = make_demo_repo(tmp_path / "repo")
    project = api.post("/projects", json={"name": "Guarded", "git_repo_path": str(repo)})
    task = _task(api, project, "Guarded run", "echo 'guarded line'")

    page.goto(token_node.url + "/")
    expect(page.get_by_role("heading", name="Token needed")).to_be_visible()
    assert "Guarded" not in page.content()
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Use token").click()
    expect(page.get_by_role("link", name="Guarded")).to_be_visible()

    page.goto(f"{token_node.url}/tasks/{task['id']}")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#log")).to_contain_text("guarded line")
    expect(page.locator("#log-status")).to_contain_text("completed")
    stored = page.evaluate("sessionStorage.getItem('vk-node-token')")
    assert stored == TOKEN
    cookie = {c["name"]: c for c in page.context.cookies()}["vk_node_token"]
    assert cookie["sameSite"] == "Strict"
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cookie["value"])
    # A second tab of the same browser has the cookie but not the tab's sessionStorage: the board
    # takes the token from the cookie, so its API calls and the log still work there.
    other = page.context.new_page()
    other.goto(f"{token_node.url}/tasks/{task['id']}")
    other.locator(".attempt").first.get_by_role("button", name="Follow log").click()
    expect(other.locator("#log")).to_contain_text("guarded line")
    assert other.evaluate("sessionStorage.getItem('vk-node-token')") == TOKEN
    wait_until(
        lambda: api.get(f"/tasks/{task['id']}")["status"] == "inreview",
        timeout=10,
        what="the guarded task in review",
    )
