"""The hive's swarm board in a real browser against a real ``vk-hive serve`` and a real node
running SCRIPT tasks: sign-in, live updates over ``/v1/ws``, actions through the REST API, a
run's log followed live, a node going offline, and what a signed-out or foreign page gets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from support.cluster import Cluster, free_port

PROJECT = "Moonshot"


@pytest.fixture(autouse=True)
def no_script_errors(cluster: Cluster, page: Page) -> Iterator[None]:
    """Every test fails when a page's own script threw an uncaught exception."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("hive-board"), nodes_count=1, project_name=PROJECT) as c:
        yield c


def _sign_in(cluster: Cluster, page: Page) -> None:
    page.goto(cluster.hive.login_link(cluster.email))
    expect(page).to_have_url(cluster.hive.url + "/")


def _board(cluster: Cluster, page: Page, *, live: bool = True) -> None:
    _sign_in(cluster, page)
    page.goto(f"{cluster.hive.url}/projects/{cluster.swarm_project_id}")
    if live:
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live")


def _create(cluster: Cluster, title: str, **extra: Any) -> dict[str, Any]:
    body = {"project_id": cluster.swarm_project_id, "title": title, "executor": "SCRIPT", **extra}
    created: dict[str, Any] = cluster.api.post("/tasks", json=body)
    return created


def test_a_login_link_lands_on_the_organizations_projects_and_nodes(
    cluster: Cluster, page: Page
) -> None:
    _sign_in(cluster, page)
    expect(page.get_by_role("link", name=PROJECT)).to_be_visible()
    node = page.locator(f'tr[data-node-id="{cluster.nodes[0].node_id}"]')
    expect(node.locator(".node-name")).to_have_text("node-a")
    expect(node.locator("[data-node-status]")).to_have_text("online")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_the_home_pages_counts_follow_the_activity(cluster: Cluster, page: Page) -> None:
    _sign_in(cluster, page)
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    project = page.locator(f'[data-project-id="{cluster.swarm_project_id}"]')
    todo = project.locator('[data-count="todo"]')
    before = int(todo.inner_text())
    _create(cluster, "counted on the home page")
    expect(todo).to_have_text(str(before + 1))


def test_the_board_shows_a_task_created_over_rest_within_a_second(
    cluster: Cluster, page: Page
) -> None:
    """No reload: the ``task.created`` activity puts the card in To do; a status change over
    REST moves it to Cancelled, a new title shows, a delete removes the card; the column counts
    follow."""
    _board(cluster, page)
    created = _create(cluster, "made over REST")
    card = page.locator(f'.card[data-task-id="{created["task"]["id"]}"]')
    expect(card).to_be_visible(timeout=1000)
    expect(
        page.locator('.column[data-status="todo"] .card', has_text="made over REST")
    ).to_be_visible()
    cancelled = page.locator('.column[data-status="cancelled"]')
    before = int(cancelled.locator("[data-col-count]").inner_text())
    cluster.api.patch(f"/tasks/{created['task']['id']}", json={"status": "cancelled"})
    expect(cancelled.locator(".card", has_text="made over REST")).to_be_visible(timeout=1000)
    expect(cancelled.locator("[data-col-count]")).to_have_text(str(before + 1))
    cluster.api.patch(f"/tasks/{created['task']['id']}", json={"title": "renamed over REST"})
    expect(card.locator(".card-title")).to_have_text("renamed over REST", timeout=1000)
    cluster.api.delete(f"/tasks/{created['task']['id']}")
    expect(card).to_have_count(0, timeout=1000)
    expect(cancelled.locator("[data-col-count]")).to_have_text(str(before))


def test_a_task_created_in_the_board_is_visible_over_rest(cluster: Cluster, page: Page) -> None:
    """The form's title, description, label, executor, start-now and target node all reach the
    REST API: the task runs on the chosen node and carries the label."""
    label = cluster.api.post(
        "/swarm/labels",
        json={"organization_id": cluster.admin.organization_id, "name": "from-ui"},
    )
    node = cluster.nodes[0]
    _board(cluster, page, live=False)
    page.get_by_text("New task").click()
    form = page.locator("#create-task")
    form.get_by_label("Title").fill("made in the board")
    form.get_by_label("Description").fill("echo from the board")
    form.get_by_label("from-ui").check()
    form.get_by_label("Executor").fill("SCRIPT")
    form.get_by_label("Start now").check()
    form.get_by_label("Target node").select_option(node.node_id)
    form.get_by_role("button", name="Create task").click()
    card = page.locator(".card", has_text="made in the board")
    expect(card).to_be_visible()
    expect(card.locator(".label")).to_have_text("from-ui")
    expect(card.locator(".card-node")).to_have_text("on node-a")
    [task] = [t for t in cluster.hive_tasks() if t["title"] == "made in the board"]
    assert task["description"] == "echo from the board"
    assert task["executing_node_id"] == node.node_id
    labels = cluster.api.get(f"/tasks/{task['id']}/labels")
    assert [entry["id"] for entry in labels] == [label["id"]]


def test_a_refused_action_shows_the_servers_reason(cluster: Cluster, page: Page) -> None:
    """Dispatching a task no node can run is refused by the API (409); the page says why."""
    created = _create(cluster, "needs another executor", executor="CLAUDE_CODE")
    _sign_in(cluster, page)
    page.goto(f"{cluster.hive.url}/tasks/{created['task']['id']}")
    page.locator("#dispatch").get_by_role("button", name="Dispatch").click()
    expect(page.locator("#action-error")).to_contain_text("cannot run CLAUDE_CODE")
    # A legal move goes through and the page follows it.
    page.get_by_role("button", name="Move to Cancelled").click()
    expect(page.locator("#task-status")).to_have_text("Cancelled")
    expect(page.locator("#history tbody tr").last).to_contain_text("todo → cancelled")
    assert cluster.api.get(f"/tasks/{created['task']['id']}")["status"] == "cancelled"


def test_editing_a_task_in_the_page_changes_it_over_rest(cluster: Cluster, page: Page) -> None:
    created = _create(cluster, "first title")
    task_id = created["task"]["id"]
    _sign_in(cluster, page)
    page.goto(f"{cluster.hive.url}/tasks/{task_id}")
    page.get_by_text("Edit title and description").click()
    form = page.locator("#edit-task")
    form.get_by_label("Title").fill("second title")
    form.get_by_label("Description").fill("new words")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#task-title")).to_have_text("second title")
    expect(page.locator("#task-description")).to_have_text("new words")
    task = cluster.api.get(f"/tasks/{task_id}")
    assert (task["title"], task["description"]) == ("second title", "new words")


def test_a_script_runs_lines_appear_live_on_the_task_page(cluster: Cluster, page: Page) -> None:
    """The page, opened before the run prints, shows each line while the script still runs."""
    script = "for i in 1 2 3 4 5 6 7 8 9 10; do echo tick-$i; sleep 0.4; done"
    _sign_in(cluster, page)
    created = cluster.dispatch(cluster.nodes[0], "ticking script", script)
    page.goto(f"{cluster.hive.url}/tasks/{created['task']['id']}")
    log = page.locator("#log")
    expect(log).to_contain_text("tick-1")
    assert "tick-10" not in log.inner_text()  # still running: the rest comes live
    expect(log).to_contain_text("tick-10")
    expect(page.locator("#assignments")).to_contain_text(
        str(created["assignment"]["fencing_token"])
    )
    # The run ends: the task moves to In review and its execution shows completed, live.
    expect(page.locator("#task-status")).to_have_text("In review")
    row = page.locator("#executions tr[data-process-id]").last
    expect(row).to_have_attribute("data-status", "completed")
    assert log.inner_text().count("tick-") == 10  # no line twice


def test_a_node_going_offline_shows_on_the_nodes_page(cluster: Cluster, page: Page) -> None:
    extra = cluster.add_node("node-z", link=False)
    _sign_in(cluster, page)
    page.goto(cluster.hive.url + "/nodes")
    badge = page.locator(f'tr[data-node-id="{extra.node_id}"] [data-node-status]')
    expect(badge).to_have_text("online")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    extra.process.stop()
    expect(badge).to_have_text("offline")


def test_the_board_is_usable_from_the_keyboard_and_on_a_phone(cluster: Cluster, page: Page) -> None:
    """A card is a real link (Enter opens the task) and a move is a real button (Enter makes
    it); on a 390 px phone the columns scroll sideways inside the board, not the page."""
    created = _create(cluster, "keyboard task")
    _board(cluster, page, live=False)
    link = page.locator(f'.card[data-task-id="{created["task"]["id"]}"] a.card-title')
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{cluster.hive.url}/tasks/{created['task']['id']}")
    page.get_by_role("button", name="Move to Cancelled").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#task-status")).to_have_text("Cancelled")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{cluster.hive.url}/projects/{cluster.swarm_project_id}")
    kanban = page.locator("#kanban")
    expect(kanban).to_be_visible()
    assert kanban.evaluate("k => k.scrollWidth > k.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_the_board_resumes_after_the_hive_restarts(cluster: Cluster, page: Page) -> None:
    """The socket reconnects with backoff and resumes from the last seq it applied: a task
    created while the board is still reconnecting shows up, then the stream is live again."""
    _board(cluster, page)
    cluster.hive.kill()
    expect(page.locator("#live-state")).not_to_have_attribute("data-state", "live")
    cluster.hive.start()
    created = _create(cluster, "made while reconnecting")
    expect(page.locator(f'.card[data-task-id="{created["task"]["id"]}"]')).to_be_visible()
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    later = _create(cluster, "made after reconnecting")
    expect(page.locator(f'.card[data-task-id="{later["task"]["id"]}"]')).to_be_visible(timeout=1000)
    for node in cluster.nodes:
        if node.process.alive:
            cluster.wait_online(node)


def test_a_signed_out_browser_sees_no_data_on_any_page(cluster: Cluster, page: Page) -> None:
    task = _create(cluster, "secret task title")["task"]
    for path in ("/", "/nodes", f"/projects/{cluster.swarm_project_id}", f"/tasks/{task['id']}"):
        page.goto(cluster.hive.url + path)
        expect(page).to_have_url(cluster.hive.url + "/login")
        html = page.content()
        assert PROJECT not in html
        assert "secret task title" not in html
        assert "node-a" not in html


def test_signing_out_in_one_tab_sends_the_other_to_login(cluster: Cluster, page: Page) -> None:
    created = _create(cluster, "left open in a tab")
    _sign_in(cluster, page)
    page.goto(f"{cluster.hive.url}/tasks/{created['task']['id']}")
    other = page.context.new_page()
    other.goto(cluster.hive.url + "/nodes")
    other.get_by_role("button", name="Sign out").click()
    expect(other).to_have_url(cluster.hive.url + "/login")
    page.get_by_role("button", name="Move to Cancelled").click()
    expect(page).to_have_url(cluster.hive.url + "/login")
    assert cluster.api.get(f"/tasks/{created['task']['id']}")["status"] == "todo"


class _EvilPage(BaseHTTPRequestHandler):
    """Another origin (same host, another port: same site, so the Lax cookie is sent) whose
    script posts to the hive's REST API and opens its live stream with the visitor's cookie."""

    script = ""

    def do_GET(self) -> None:
        html = f"<!doctype html><title>evil</title><script>{self.script}</script>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(html)))
        self.end_headers()
        self.wfile.write(html)

    def log_message(self, *_: Any) -> None:
        pass


def _evil_script(hive_url: str, body: str, org_id: str) -> str:
    ws_url = hive_url.replace("http://", "ws://") + f"/v1/ws?organization_id={org_id}"
    return (
        "window.heard = [];"
        f"const ws = new WebSocket({json.dumps(ws_url)});"
        "ws.onmessage = (e) => window.heard.push(JSON.parse(e.data).type);"
        "ws.onclose = (e) => { window.closed = e.code; };"
        f"fetch({json.dumps(hive_url + '/v1/tasks')}, {{method: 'POST', mode: 'no-cors', "
        "credentials: 'include', headers: {'Content-Type': 'text/plain'}, "
        f"body: {json.dumps(body)}}})"
        ".finally(() => { window.posted = true; });"
    )


def test_a_forged_cross_site_post_from_another_origin_is_refused(
    cluster: Cluster, page: Page
) -> None:
    """The browser sends the session cookie with the forged POST (the hive logs a 403, not a
    401) and the hive refuses it for its foreign Origin: nothing is created. The same page's
    WebSocket to ``/v1/ws`` is refused too: it hears nothing of the organization."""
    _sign_in(cluster, page)
    body = json.dumps(
        {"project_id": cluster.swarm_project_id, "title": "forged task", "executor": "SCRIPT"}
    )
    script = _evil_script(cluster.hive.url, body, cluster.admin.organization_id)
    server = ThreadingHTTPServer(
        ("127.0.0.1", free_port()), type("Evil", (_EvilPage,), {"script": script})
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    log = cluster.hive.log_path
    seen = len(log.read_text().splitlines())
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        page.wait_for_function("window.posted === true && window.closed !== undefined")
        assert page.evaluate("window.heard") == []
    finally:
        server.shutdown()
        server.server_close()

    def refused() -> list[int]:
        statuses = []
        for line in log.read_text().splitlines()[seen:]:
            entry = json.loads(line) if line.startswith("{") else {}
            post = entry.get("event") == "http.request" and entry.get("method") == "POST"
            if post and str(entry.get("route", "")).startswith("/v1/tasks"):
                statuses.append(int(entry["status"]))
        return statuses

    def socket_refusals() -> list[int]:
        lines = log.read_text().splitlines()[seen:]
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [e["status"] for e in entries if e.get("event") == "user_ws.refused"]

    assert cluster.wait(refused, what="the hive to log the forged POST", timeout=5) == [403]
    assert cluster.wait(socket_refusals, what="the hive to refuse the socket", timeout=5) == [403]
    assert "forged task" not in [t["title"] for t in cluster.hive_tasks()]
