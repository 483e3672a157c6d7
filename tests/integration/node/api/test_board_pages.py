"""The node board's pages on a real node app (real SQLite, real git): what each page shows, its
security headers, unknown ids, the token gate, and that the board opens no way around the API's
guard."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from pathlib import Path
from uuid import uuid4

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from vk_node.api.guard import token_subprotocol

from .conftest import TOKEN
from .test_images import png

Client = AsyncTestClient[Litestar]
HTML = {"Accept": "text/html,application/xhtml+xml"}
EVIL_TITLE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


async def _project_with_tasks(client: Client, repo: Path) -> tuple[dict, dict, dict]:
    project = (
        await client.post(
            "/api/projects", json={"name": "Board <demo>", "git_repo_path": str(repo)}
        )
    ).json()
    todo = (
        await client.post("/api/tasks", json={"project_id": project["id"], "title": EVIL_TITLE})
    ).json()
    body = {"project_id": project["id"], "title": "Reviewed one", "description": "true"}
    review = (await client.post("/api/tasks", json=body)).json()
    start = {"task_id": review["id"], "executor": "SCRIPT", "base_branch": "main"}
    assert (await client.post("/api/task-attempts", json=start)).status_code == 202
    deadline = time.monotonic() + 20
    while (await client.get(f"/api/tasks/{review['id']}")).json()["status"] != "inreview":
        assert time.monotonic() < deadline, "the attempt did not bring the task to review"
        await asyncio.sleep(0.05)
    return project, todo, review


def _assert_no_inline_code(html: str) -> None:
    """Every script is an external module of this node; no inline handlers or styles."""
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == ['<script type="module" src="/static/board.js">']
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html)
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html, re.IGNORECASE)
    assert not re.search(r"<[^>]*\sstyle\s*=", html, re.IGNORECASE)
    assert "<style" not in html


def _assert_page_headers(headers: dict[str, str] | object) -> None:
    csp = headers["content-security-policy"]  # type: ignore[index]
    assert "default-src 'self'" in csp
    assert "script-src 'self';" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert headers["x-frame-options"] == "DENY"  # type: ignore[index]
    assert headers["x-content-type-options"] == "nosniff"  # type: ignore[index]


@pytest.mark.asyncio
async def test_the_projects_page_lists_projects_with_counts_and_links(
    client: Client, git_repo: Path, tmp_path: Path
) -> None:
    """``/`` lists each project (name escaped) with its task counts, marks the one linked to a
    swarm project, links each to its board, and carries the security headers."""
    from .conftest import make_git_repo

    project, _, _ = await _project_with_tasks(client, git_repo)
    other = (
        await client.post(
            "/api/projects",
            json={"name": "Linked", "git_repo_path": str(make_git_repo(tmp_path / "other"))},
        )
    ).json()
    swarm = str(uuid4())
    r = await client.post(f"/api/projects/{other['id']}/link", json={"swarm_project_id": swarm})
    assert r.status_code == 200, r.text

    r = await client.get("/", headers=HTML)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    _assert_page_headers(r.headers)
    html = r.text
    _assert_no_inline_code(html)
    assert "Board &lt;demo&gt;" in html
    assert "Board <demo>" not in html
    assert f'href="/projects/{project["id"]}"' in html
    assert f'href="/projects/{other["id"]}"' in html
    assert f"Linked to swarm project {swarm}" in html
    counts = re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", html)
    assert ("To do", "1") in counts
    assert ("In review", "1") in counts


@pytest.mark.asyncio
async def test_the_project_board_has_a_column_per_status_with_escaped_cards(
    client: Client, git_repo: Path
) -> None:
    """``/projects/{id}``: one column per node status in the state machine's order, each task's
    card (title escaped, a link to its page) in its status's column, the new-task form."""
    project, todo, review = await _project_with_tasks(client, git_repo)
    r = await client.get(f"/projects/{project['id']}", headers=HTML)
    assert r.status_code == 200
    _assert_page_headers(r.headers)
    html = r.text
    _assert_no_inline_code(html)
    statuses = re.findall(r'<section class="column" data-status="([a-z]+)"', html)
    assert statuses == ["todo", "inprogress", "inreview", "done", "cancelled"]
    assert EVIL_TITLE not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img" in html
    parts = html.split('<section class="column" data-status="')[1:]
    columns = {part.partition('"')[0]: part for part in parts}
    assert f"/tasks/{todo['id']}" in columns["todo"]
    assert f"/tasks/{review['id']}" in columns["inreview"]
    assert f"/tasks/{review['id']}" not in columns["todo"]
    assert f'data-project-id="{project["id"]}"' in html


@pytest.mark.asyncio
async def test_a_task_page_shows_attempts_processes_and_what_can_start(
    client: Client, git_repo: Path
) -> None:
    """``/tasks/{id}``: title, status, the executors this node runs (SCRIPT), the repository's
    branches, and each attempt with its branch and processes."""
    project, _, review = await _project_with_tasks(client, git_repo)
    attempt = (await client.get("/api/task-attempts", params={"task_id": review["id"]})).json()[0]
    processes = (await client.get(f"/api/task-attempts/{attempt['id']}/processes")).json()
    r = await client.get(f"/tasks/{review['id']}", headers=HTML)
    assert r.status_code == 200
    _assert_page_headers(r.headers)
    html = r.text
    _assert_no_inline_code(html)
    assert "<h1" in html
    assert "Reviewed one" in html
    assert '<option value="SCRIPT">SCRIPT</option>' in html
    assert '<option value="main">' in html
    assert f'data-attempt-id="{attempt["id"]}"' in html
    assert attempt["branch"] in html
    assert f'href="/projects/{project["id"]}"' in html
    assert f'data-process-id="{processes[0]["id"]}"' in html
    assert "codingagent" in html
    assert "completed" in html
    for action in ("log", "diff", "stop", "merge", "pr"):
        assert f'data-action="{action}"' in html


@pytest.mark.asyncio
async def test_unknown_ids_are_404_html_for_browsers_and_problems_for_clients(
    client: Client,
) -> None:
    """An unknown project or task id: a 404 HTML page for a browser, a problem-details 404 for
    any other client; a malformed id is a 4xx; POST to a page is 405 (pages change nothing)."""
    for path in (f"/projects/{uuid4()}", f"/tasks/{uuid4()}"):
        r = await client.get(path, headers=HTML)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html")
        assert "Not found" in r.text
        _assert_page_headers(r.headers)
        r = await client.get(path)
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"
    r = await client.get("/tasks/not-a-uuid", headers=HTML)
    assert 400 <= r.status_code < 500
    r = await client.post("/", headers=HTML)
    assert r.status_code == 405


@pytest.mark.asyncio
async def test_static_files_are_ours_only(client: Client) -> None:
    """The board's modules and stylesheet are served with their types and the CSP; any other
    name (a traversal, an unknown file) is a 404 problem."""
    r = await client.get("/static/board.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert "import" in r.text
    _assert_page_headers(r.headers)
    assert (await client.get("/static/board.css")).headers["content-type"].startswith("text/css")
    for name in ("nope.js", "..%2F__init__.py", "%2E%2E%2Fpages.py"):
        r = await client.get(f"/static/{name}")
        assert r.status_code == 404, name
        assert r.json()["code"] == "not_found"


@pytest.mark.asyncio
async def test_a_cross_site_post_to_the_api_is_still_refused(
    client: Client, git_repo: Path
) -> None:
    """A page on another site posting to the API (form or fetch) is refused and creates
    nothing, with the board mounted."""
    project, _, _ = await _project_with_tasks(client, git_repo)
    before = (await client.get("/api/tasks", params={"project_id": project["id"]})).json()
    body = {"project_id": project["id"], "title": "forged"}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        r = await client.post("/api/tasks", json=body, headers=headers)
        assert r.status_code == 403, headers
    r = await client.post(
        "/api/tasks",
        content=b"project_id=x&title=forged",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    after = (await client.get("/api/tasks", params={"project_id": project["id"]})).json()
    assert len(after) == len(before)


@pytest.mark.asyncio
async def test_with_a_token_pages_need_it_and_the_cookie_opens_pages_only(
    exposed: Client, git_repo: Path
) -> None:
    """With VK_NODE_API_TOKEN set, a page without the token is a 401 token form that shows no
    data; the ``vk_node_token`` cookie (the token in base64url) or a Bearer header opens it; a
    wrong cookie does not; the cookie never opens the API; static files need no token."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    project = (
        await exposed.post(
            "/api/projects",
            json={"name": "Secret project", "git_repo_path": str(git_repo)},
            headers=auth,
        )
    ).json()
    r = await exposed.get("/", headers=HTML)
    assert r.status_code == 401
    assert 'id="token-form"' in r.text
    assert 'id="token-form" class="token-form" hidden' not in r.text
    assert "Secret project" not in r.text
    _assert_page_headers(r.headers)
    r = await exposed.get(f"/projects/{project['id']}", headers=HTML)
    assert r.status_code == 401
    assert "Secret project" not in r.text

    good = token_subprotocol(TOKEN).removeprefix("vk-token.")
    r = await exposed.get("/", headers={**HTML, "Cookie": f"vk_node_token={good}"})
    assert r.status_code == 200
    assert "Secret project" in r.text
    r = await exposed.get("/", headers={**HTML, **auth})
    assert r.status_code == 200
    assert "Secret project" in r.text
    for wrong in (TOKEN, good[:-1], token_subprotocol("x" * 20).removeprefix("vk-token.")):
        r = await exposed.get("/", headers={**HTML, "Cookie": f"vk_node_token={wrong}"})
        assert r.status_code == 401, wrong
    r = await exposed.get("/api/projects", headers={"Cookie": f"vk_node_token={good}"})
    assert r.status_code == 401
    assert (await exposed.get("/static/api.js")).status_code == 200


@pytest.mark.asyncio
async def test_a_task_page_still_opens_when_the_repository_is_gone(
    client: Client, git_repo: Path
) -> None:
    """A project whose repository directory was removed: its task page answers 200 with no
    branches to offer (never a 4xx or 5xx for the page itself)."""
    project = (
        await client.post("/api/projects", json={"name": "gone", "git_repo_path": str(git_repo)})
    ).json()
    task = (
        await client.post("/api/tasks", json={"project_id": project["id"], "title": "orphan"})
    ).json()
    shutil.rmtree(git_repo)
    r = await client.get(f"/tasks/{task['id']}", headers=HTML)
    assert r.status_code == 200, r.text
    assert "orphan" in r.text
    assert re.search(r'<datalist id="branches">\s*</datalist>', r.text)


@pytest.mark.asyncio
async def test_a_task_page_shows_its_images_behind_the_page_gate(
    exposed: Client, git_repo: Path
) -> None:
    """A task's attached images appear on its page as <img> of /images/{id}, which serves the
    bytes (nosniff) to the token cookie like a page, and a 401 without it."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    project = (
        await exposed.post(
            "/api/projects", json={"name": "p", "git_repo_path": str(git_repo)}, headers=auth
        )
    ).json()
    task = (
        await exposed.post(
            "/api/tasks", json={"project_id": project["id"], "title": "t"}, headers=auth
        )
    ).json()
    data = png(5)
    image = (
        await exposed.post(
            "/api/images",
            content=data,
            params={"filename": 'shot "1".png'},
            headers={**auth, "content-type": "image/png"},
        )
    ).json()
    r = await exposed.post(
        f"/api/tasks/{task['id']}/images", json={"image_ids": [image["id"]]}, headers=auth
    )
    assert r.status_code == 200, r.text
    cookie = {"Cookie": f"vk_node_token={token_subprotocol(TOKEN).removeprefix('vk-token.')}"}
    r = await exposed.get(f"/tasks/{task['id']}", headers={**HTML, **cookie})
    assert r.status_code == 200
    _assert_no_inline_code(r.text)
    assert f'<img src="/images/{image["id"]}" alt="shot &#34;1&#34;.png"' in r.text
    r = await exposed.get(f"/images/{image['id']}", headers=cookie)
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert (await exposed.get(f"/images/{image['id']}")).status_code == 401
    assert (await exposed.get(f"/api/images/{image['id']}", headers=cookie)).status_code == 401
