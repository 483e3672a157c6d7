"""``vk-node mcp``: the node's tasks as Model Context Protocol tools, over stdio.

A coding agent (or any MCP client) starts ``vk-node mcp`` as a subprocess and speaks MCP on its
stdin/stdout (the official ``mcp`` SDK's server). Every tool is a call to the running node's own
REST API — the same client, address and token as ``vk-node tasks`` (:mod:`vk_node.cli_tasks`) —
so validation, the outbox and the executor path are the API's, not a second copy of them.

Tools:

- ``list_projects`` — ``GET /api/projects``.
- ``list_tasks(project, status?)`` — ``GET /api/tasks?project_id=``, optionally one status.
- ``get_task(task)`` — ``GET /api/tasks/{id}`` plus its attempts, newest first, each with the
  status of its latest execution process.
- ``create_task(project, title, description?, parent_task?)`` — ``POST /api/tasks``; a subtask
  names its parent task (the node keeps subtasks as ``parent_task_id``).
- ``update_task(task, title?, description?, status?)`` — ``PATCH /api/tasks/{id}``.
- ``start_attempt(task, executor?, base_branch?)`` — ``POST /api/task-attempts``; the executor
  defaults to the first of ``VK_NODE_EXECUTORS``, the base branch to ``main``.

A project is named by its id, a unique id prefix or its name; a task by its id or a unique id
prefix. A failure the caller can act on — the node is not running, an unknown id, input the API
refuses (its RFC 9457 ``detail``) — is a tool error (``isError`` with one line of text), never a
protocol error or a crash of the server.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from vk_node import __version__
from vk_node.cli_tasks import ClientError, NodeClient, node_url, project_id_of, task_id_of
from vk_node.logging import configure_logging
from vk_node.settings import NodeSettings
from vk_shared.status import NodeTaskStatus

__all__ = ["build_server", "run_mcp"]

_INSTRUCTIONS = (
    "Tasks of the local vk-swarm node (vk-node serve must be running). Projects are named by "
    "id, id prefix or name; tasks by id or an id prefix of at least 4 characters. Statuses: "
    "todo, inprogress, inreview, done, cancelled. start_attempt runs a coding agent on the task "
    "in its own git worktree."
)

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)

ProjectRef = Annotated[str, Field(description="project id, unique id prefix or name")]
TaskRef = Annotated[str, Field(description="task id or unique id prefix (4+ characters)")]


def _attempt_status(client: NodeClient, attempt_id: str) -> str:
    processes = client.get(f"/task-attempts/{attempt_id}/processes")
    return str(processes[-1]["status"]) if processes else "pending"


def build_server(settings: NodeSettings, client: NodeClient | None = None) -> MCPServer:
    """The MCP server whose tools call the node of ``settings`` through ``client``."""
    node = client or NodeClient(node_url(settings), settings.api_token)
    server = MCPServer(
        "vibe_kanban", version=__version__, instructions=_INSTRUCTIONS, log_level="WARNING"
    )

    def call(fn: Any, *args: Any) -> Any:
        """``fn(node, *args)`` with the client's failures as tool errors."""
        try:
            return fn(node, *args)
        except ClientError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(annotations=_READ)
    def list_projects() -> list[dict[str, Any]]:
        """The node's projects (id, name, git repository path, task counts)."""
        return list(call(lambda c: c.get("/projects")))

    @server.tool(annotations=_READ)
    def list_tasks(
        project: ProjectRef,
        status: Annotated[NodeTaskStatus | None, Field(description="only this status")] = None,
    ) -> list[dict[str, Any]]:
        """Tasks of one project, most recent activity first."""

        def run(c: NodeClient) -> list[dict[str, Any]]:
            tasks = c.get("/tasks", project_id=project_id_of(c, project))
            return [t for t in tasks if status is None or t["status"] == status]

        return list(call(run))

    @server.tool(annotations=_READ)
    def get_task(task: TaskRef) -> dict[str, Any]:
        """One task with its attempts (newest first) and each attempt's run status."""

        def run(c: NodeClient) -> dict[str, Any]:
            found = c.get(f"/tasks/{task_id_of(c, task)}")
            attempts = c.get("/task-attempts", task_id=found["id"])
            for attempt in attempts:
                attempt["status"] = _attempt_status(c, attempt["id"])
            return {**found, "attempts": attempts}

        return dict(call(run))

    @server.tool(annotations=_WRITE)
    def create_task(
        project: ProjectRef,
        title: Annotated[str, Field(description="short title")],
        description: Annotated[str | None, Field(description="what to do")] = None,
        parent_task: Annotated[
            str | None, Field(description="make it a subtask of this task (id or id prefix)")
        ] = None,
    ) -> dict[str, Any]:
        """Create a task (status todo), or a subtask of ``parent_task``."""

        def run(c: NodeClient) -> dict[str, Any]:
            body: dict[str, Any] = {"project_id": project_id_of(c, project), "title": title}
            if description is not None:
                body["description"] = description
            if parent_task is not None:
                body["parent_task_id"] = task_id_of(c, parent_task)
            return dict(c.post("/tasks", body))

        return dict(call(run))

    @server.tool(annotations=_WRITE)
    def update_task(
        task: TaskRef,
        title: Annotated[str | None, Field(description="new title")] = None,
        description: Annotated[str | None, Field(description="new description")] = None,
        status: Annotated[NodeTaskStatus | None, Field(description="new status")] = None,
    ) -> dict[str, Any]:
        """Change a task's title, description or status (the fields given)."""
        changes = {
            key: value
            for key, value in (("title", title), ("description", description), ("status", status))
            if value is not None
        }
        if not changes:
            raise ToolError("give at least one of title, description, status")

        def run(c: NodeClient) -> dict[str, Any]:
            return dict(c.patch(f"/tasks/{task_id_of(c, task)}", changes))

        return dict(call(run))

    @server.tool(annotations=_WRITE)
    def start_attempt(
        task: TaskRef,
        executor: Annotated[
            str | None,
            Field(
                description="executor profile, e.g. CLAUDE_CODE or SCRIPT (default: the "
                "node's first enabled one)"
            ),
        ] = None,
        base_branch: Annotated[str, Field(description="branch to start from")] = "main",
    ) -> dict[str, Any]:
        """Start a run of a coding agent on the task in a new branch and worktree."""
        profile = executor or (settings.executors[0] if settings.executors else None)
        if not profile:
            raise ToolError("name the executor (the node's VK_NODE_EXECUTORS is empty)")

        def run(c: NodeClient) -> dict[str, Any]:
            body = {"task_id": task_id_of(c, task), "executor": profile, "base_branch": base_branch}
            return dict(c.post("/task-attempts", body))

        return dict(call(run))

    return server


def run_mcp(settings: NodeSettings) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin. stdout carries the protocol
    only: our logs go to stderr (as ``serve``'s do), warnings and above."""
    configure_logging(settings.log_format, "warning")
    client = NodeClient(node_url(settings), settings.api_token)
    try:
        build_server(settings, client).run("stdio")
    finally:
        client.close()
