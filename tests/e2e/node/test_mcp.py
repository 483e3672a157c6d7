"""``vk-node mcp`` as a real stdio subprocess, driven by the official MCP SDK's client, against a
real ``vk-node serve`` and a real git repository."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

pytestmark = pytest.mark.asyncio

_SCRIPT = {"VK_NODE_EXECUTORS": "SCRIPT"}
_TOOLS = {
    "list_projects",
    "list_tasks",
    "get_task",
    "create_task",
    "update_task",
    "start_attempt",
}


def _params(data_dir: Path, port: int, extra: Mapping[str, str] | None = None) -> Any:
    """``vk-node mcp`` of this venv, with the node's settings and no other VK_* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_NODE_", "VK_HIVE_"))}
    env.update({"VK_NODE_DATA_DIR": str(data_dir), "VK_NODE_PORT": str(port), **(extra or {})})
    command = str(Path(sys.executable).parent / "vk-node")
    return StdioServerParameters(command=command, args=["mcp"], env=env)


@asynccontextmanager
async def _session(params: Any, errlog: Path) -> AsyncIterator[ClientSession]:
    with errlog.open("w") as err:
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write, read_timeout_seconds=30) as session,
        ):
            await session.initialize()
            yield session


async def _call(session: ClientSession, tool: str, **arguments: Any) -> CallToolResult:
    result = await session.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    return result


def _text(result: CallToolResult) -> str:
    [content] = result.content
    assert isinstance(content, TextContent)
    return content.text


async def _ok(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """The tool's structured result (lists come wrapped as ``{"result": [...]}``)."""
    result = await _call(session, tool, **arguments)
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    content = result.structured_content
    return content["result"] if set(content) == {"result"} else content


async def _error(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The message of the tool error (the SDK prefixes ``Error executing tool <name>: ``)."""
    result = await _call(session, tool, **arguments)
    assert result.is_error
    prefix = f"Error executing tool {tool}: "
    text = _text(result)
    assert text.startswith(prefix), text
    return text.removeprefix(prefix)


def _project(url: str, repo: Path) -> dict[str, Any]:
    with httpx.Client(base_url=url + "/api", timeout=10) as http:
        response = http.post("/projects", json={"name": "demo", "git_repo_path": str(repo)})
        assert response.status_code == 201, response.text
        return dict(response.json())


async def test_tools_manage_tasks_and_start_a_script_attempt(
    start_node: Any, git_repo: Path, tmp_path: Path
) -> None:
    """Through MCP an agent lists the tools and projects, creates a task and a subtask, lists,
    updates and reads them, starts a SCRIPT attempt that runs to completion, and gets tool
    errors (not a crash) for an unknown task, bad input and a refused status."""
    node = start_node(tmp_path / "node", _SCRIPT)
    project = _project(node.url, git_repo)
    params = _params(node.data_dir, node.port, _SCRIPT)
    async with _session(params, tmp_path / "mcp.err") as session:
        tools = await session.list_tools()
        assert {tool.name for tool in tools.tools} == _TOOLS
        [listed] = await _ok(session, "list_projects")
        assert listed["id"] == project["id"]

        task = await _ok(
            session, "create_task", project="demo", title="Write it", description="echo hello-mcp"
        )
        assert (task["title"], task["status"], task["parent_task_id"]) == ("Write it", "todo", None)
        child = await _ok(
            session, "create_task", project=project["id"], title="Part", parent_task=task["id"][:8]
        )
        assert child["parent_task_id"] == task["id"]
        tasks = await _ok(session, "list_tasks", project=project["id"][:8])
        assert {t["id"] for t in tasks} == {task["id"], child["id"]}

        renamed = await _ok(session, "update_task", task=child["id"], title="Part one")
        assert renamed["title"] == "Part one"
        cancelled = await _ok(session, "update_task", task=child["id"], status="cancelled")
        assert cancelled["status"] == "cancelled"
        only = await _ok(session, "list_tasks", project="demo", status="cancelled")
        assert [t["id"] for t in only] == [child["id"]]

        attempt = await _ok(session, "start_attempt", task=task["id"])
        assert attempt["task_id"] == task["id"]
        assert attempt["executor"] == "SCRIPT"
        deadline = time.monotonic() + 15
        while True:
            shown = await _ok(session, "get_task", task=task["id"])
            if shown["status"] == "inreview":
                break
            assert time.monotonic() < deadline, shown
            await anyio.sleep(0.05)
        assert [a["id"] for a in shown["attempts"]] == [attempt["id"]]
        assert shown["attempts"][0]["status"] == "completed"

        missing = "00000000-0000-4000-8000-000000000000"
        assert await _error(session, "get_task", task=missing) == f"task {missing} not found"
        assert await _error(session, "update_task", task=missing, title="x") == (
            f"task {missing} not found"
        )
        assert "no task matches" in await _error(session, "get_task", task="ffffffff")
        assert "no task matches" in await _error(session, "get_task", task="../projects")
        braced = await _ok(session, "get_task", task="{" + task["id"].upper() + "}")
        assert braced["id"] == task["id"]  # other UUID spellings reach the API as a plain id
        assert "no project matches" in await _error(
            session, "create_task", project="nope", title="x"
        )
        assert await _error(session, "update_task", task=task["id"]) == (
            "give at least one of title, description, status"
        )
        bad_status = await _error(session, "update_task", task=task["id"], status="finished")
        assert "status" in bad_status
        assert await _error(session, "update_task", task=task["id"], status="todo") == (
            "a task cannot move from inreview to todo"
        )
        empty = await _error(session, "create_task", project="demo", title="")
        assert "title" in empty
        unknown = await _error(session, "start_attempt", task=task["id"], executor="NOPE")
        assert "NOPE" in unknown
        # the server is still serving after every error
        assert len(await _ok(session, "list_tasks", project="demo")) == 2
    assert "Traceback" not in (tmp_path / "mcp.err").read_text()


async def test_node_not_running_is_a_tool_error(tmp_path: Path) -> None:
    """Without a node on the port, a tool call answers one clear line as a tool error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    async with _session(_params(tmp_path / "node", port), tmp_path / "mcp.err") as session:
        message = await _error(session, "list_projects")
    assert message == (
        f"cannot reach the node at http://127.0.0.1:{port} (is `vk-node serve` running?)"
    )
    assert json.dumps(message)  # one plain line for the model to read
