"""The log WebSocket of a node with an API token, over a real socket (uvicorn, real SQLite, a
real SCRIPT run): the token as a ``vk-token.`` subprotocol opens it like a Bearer header does,
the answer selects ``vk-logs`` and never echoes the token, and a wrong, missing or cross-site
handshake is refused before it is accepted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from support.uvicorn_server import serving
from vk_node.api.guard import token_subprotocol
from vk_node.app import create_app
from vk_node.settings import load_settings

from .conftest import TOKEN, make_git_repo

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[int, str]]:
    """A token-guarded node on a real port and the id of a finished process with a log line."""
    env = {
        "VK_NODE_DATA_DIR": str(tmp_path / "data"),
        "VK_NODE_EXECUTORS": "SCRIPT",
        "VK_NODE_API_TOKEN": TOKEN,
    }
    async with serving(create_app(load_settings(env=env).settings)) as port:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}/api", headers=headers, timeout=10
        ) as http:
            repo = make_git_repo(tmp_path / "repo")
            project = await http.post("/projects", json={"name": "p", "git_repo_path": str(repo)})
            body = {"project_id": project.json()["id"], "title": "t", "description": "echo hi"}
            task = (await http.post("/tasks", json=body)).json()
            body = {"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"}
            attempt = (await http.post("/task-attempts", json=body)).json()
            processes: list[dict[str, Any]] = []
            for _ in range(500):
                processes = (await http.get(f"/task-attempts/{attempt['id']}/processes")).json()
                if processes:
                    break
                await asyncio.sleep(0.01)
            yield port, processes[0]["id"]


async def _frames(ws: ClientConnection) -> list[dict[str, Any]]:
    return [json.loads(frame) async for frame in ws]


async def test_the_token_as_a_subprotocol_opens_the_log_socket(node: tuple[int, str]) -> None:
    """Offering ``vk-logs`` and ``vk-token.<base64url>``: accepted, ``vk-logs`` selected, the
    answer's headers carry no token, and the log streams to its final frame."""
    port, process_id = node
    url = f"ws://127.0.0.1:{port}/api/execution-processes/{process_id}/logs/ws"
    offered = [Subprotocol("vk-logs"), Subprotocol(token_subprotocol(TOKEN))]
    origin = f"http://127.0.0.1:{port}"
    async with connect(url, subprotocols=offered, origin=origin, open_timeout=10) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "vk-logs"
        assert ws.response is not None
        answer = str(ws.response.headers).lower()
        assert token_subprotocol(TOKEN).lower() not in answer
        assert TOKEN.lower() not in answer
        frames = await _frames(ws)
    assert frames[-1]["type"] == "finished"
    assert "hi" in [f.get("content") for f in frames]


async def test_bearer_without_subprotocols_still_works(node: tuple[int, str]) -> None:
    """A client with a header (the CLI) offers no subprotocol and gets none."""
    port, process_id = node
    url = f"ws://127.0.0.1:{port}/api/execution-processes/{process_id}/logs/ws"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(url, additional_headers=headers, open_timeout=10) as ws:
        assert ws.subprotocol is None
        assert (await _frames(ws))[-1]["type"] == "finished"


@pytest.mark.parametrize(
    ("offered", "origin", "status"),
    [
        (["vk-logs"], None, 401),
        (["vk-logs", token_subprotocol(TOKEN + "x")], None, 401),
        (["vk-logs", "vk-token." + TOKEN.replace("-", "_")], None, 401),
        (["vk-logs", token_subprotocol(TOKEN)], "https://evil.example", 403),
    ],
)
async def test_a_wrong_missing_or_cross_site_handshake_is_refused(
    node: tuple[int, str], offered: list[str], origin: str | None, status: int
) -> None:
    """No token, a wrong one, the raw token instead of its encoding: 401; the right token from
    another site's page: 403 — each answered with the HTTP status, never accepted."""
    port, process_id = node
    url = f"ws://127.0.0.1:{port}/api/execution-processes/{process_id}/logs/ws"
    protocols = [Subprotocol(p) for p in offered]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, subprotocols=protocols, origin=origin, open_timeout=10):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == status
