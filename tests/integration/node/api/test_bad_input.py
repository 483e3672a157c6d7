"""Bad input on every route of the local API is a 4xx JSON error with a detail, never a 5xx.

A route walker (``support.route_walker``) reads the running node's OpenAPI document and sends each
operation hostile path parameters, query parameters and bodies over a real socket to a node served
by uvicorn on a real SQLite file, with real rows (a project on a real git repository, a task, an
attempt that ran), then checks that the node still answers ``/api/health``. The node has no user
authentication, so the walk runs once without a token and once with one (which it ignores).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.route_walker import exchange, walk_app
from support.uvicorn_server import serving
from vk_node.app import create_app
from vk_node.settings import NodeSettings, load_settings
from vk_shared.jsoncheck import MAX_DEPTH

from .conftest import make_git_repo

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Node:
    port: int
    settings: NodeSettings
    http: httpx.AsyncClient
    known: dict[str, Any]
    root: Path


async def _ok(http: httpx.AsyncClient, method: str, url: str, body: Any = None) -> Any:
    r = await http.request(method, url, json=body)
    assert r.status_code < 300, (url, r.text)
    return r.json()


async def _run(http: httpx.AsyncClient, repo: Path) -> dict[str, Any]:
    """A project on ``repo``, a task and an attempt whose first process has started."""
    project = await _ok(http, "POST", "/api/projects", {"name": "p", "git_repo_path": str(repo)})
    task = await _ok(http, "POST", "/api/tasks", {"project_id": project["id"], "title": "t"})
    body = {"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"}
    attempt = await _ok(http, "POST", "/api/task-attempts", body)
    for _ in range(500):  # the attempt's first process is recorded as it starts
        processes = await _ok(http, "GET", f"/api/task-attempts/{attempt['id']}/processes")
        if processes:
            break
        await asyncio.sleep(0.01)
    return {
        "project_id": project["id"],
        "task_id": task["id"],
        "attempt_id": attempt["id"],
        "process_id": processes[0]["id"],
    }


_WEBHOOK_URL = "http://127.0.0.1:9/walked"


async def _rows(http: httpx.AsyncClient, repo: Path) -> dict[str, Any]:
    """Real rows, so probes get past the lookups: their ids (and plausible values), by the names
    the API uses."""
    ids = await _run(http, repo)
    label = await _ok(http, "POST", "/api/labels", {"name": "l"})
    template = await _ok(http, "POST", "/api/templates", {"template_name": "t", "content": "c"})
    variable = await _ok(
        http, "POST", f"/api/tasks/{ids['task_id']}/variables", {"name": "VAR", "value": "v"}
    )
    # Its URL is a port where nothing listens: probes of POST /test fail fast, no one is called.
    webhook = await _ok(http, "POST", "/api/webhooks", {"name": "w", "url": _WEBHOOK_URL})
    return {
        **ids,
        "label_id": label["id"],
        "template_id": template["id"],
        "variable_id": variable["id"],
        "webhook_id": webhook["id"],
        "url": _WEBHOOK_URL,
        "draft_type": "follow_up",
        "name": "walked",
        "git_repo_path": str(repo),
        "executor": "SCRIPT",
        "base_branch": "main",
        "template_name": "walked",
        "color": "#112233",
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    root = tmp_path_factory.mktemp("walked-node")
    env = {"VK_NODE_DATA_DIR": str(root / "data"), "VK_NODE_EXECUTORS": "SCRIPT"}
    settings = load_settings(env=env).settings
    async with serving(create_app(settings)) as port:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
            known = await _rows(http, make_git_repo(root / "repo"))
            yield Node(port, settings, http, known, root)


async def test_every_route_answers_hostile_input_with_a_4xx(node: Node) -> None:
    """Every operation of the OpenAPI document (and every undocumented route), walked with
    hostile path, query and body input, never gets a 5xx, answers each 4xx with the JSON error
    body, and the node still serves /api/health afterwards."""
    doc = (await node.http.get("/schema/openapi.json")).json()
    report = await walk_app(
        "node",
        create_app(node.settings),
        doc,
        node.port,
        node.known,
        token="vk_pat_not-a-node-token",
        depth_limit=MAX_DEPTH,
        max_body_bytes=node.settings.max_body_bytes,
    )
    print("\n" + report.text())
    assert not report.problems, report.text()
    assert (await node.http.get("/api/health")).status_code == 200


async def test_a_body_of_ten_megabytes_is_413(node: Node) -> None:
    """A 10 MB string in a body, announced or streamed in chunks, is refused with 413 (the body
    limit), never a 5xx."""
    body = b'{"name": "' + b"y" * 10_000_000 + b'", "git_repo_path": "/nonexistent"}'
    for chunked in (False, True):
        status, answer = await exchange(node.port, "POST", b"/api/projects", body, chunked=chunked)
        assert status == 413, (chunked, answer)
        assert json.loads(answer)["code"] == "payload_too_large"


async def test_the_log_websocket_ignores_hostile_frames_and_bad_ids(node: Node) -> None:
    """Frames nested 200,000 deep (text and binary) sent to the log WebSocket change nothing: it
    still streams the process's rows and its final frame; a malformed id is refused at the
    handshake and an unknown one closed with 4404, and the node still serves /api/health."""
    base = f"ws://127.0.0.1:{node.port}/api/execution-processes"
    process_id = (await _run(node.http, make_git_repo(node.root / "ws-repo")))["process_id"]
    async with connect(f"{base}/{process_id}/logs/ws", open_timeout=10) as ws:
        await ws.send("[" * 200_000 + "]" * 200_000)
        await ws.send(b"\x91" * 200_000 + b"\xc0")
        frames = [json.loads(frame) async for frame in ws]
    assert frames, "no frame"
    assert frames[-1]["type"] == "finished", frames
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{base}/not-a-uuid/logs/ws", open_timeout=10):
            pass
    assert refused.value.response.status_code < 500
    async with connect(f"{base}/{uuid.uuid4()}/logs/ws", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4404
    assert (await node.http.get("/api/health")).status_code == 200
