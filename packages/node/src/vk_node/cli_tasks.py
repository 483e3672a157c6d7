"""``vk-node tasks ...`` and ``vk-node open``: a terminal client of the running node's REST API.

Every command talks to the node that ``vk-node serve`` runs with the same settings: its address is
``VK_NODE_HOST``/``VK_NODE_PORT`` (``--host``/``--port``; a wildcard bind address such as
``0.0.0.0`` is reached on the loopback address) and, when ``VK_NODE_API_TOKEN`` is set, every
request carries ``Authorization: Bearer <token>``. The CLI sends neither ``Origin`` nor
``Referer``, so the node's cross-site guard lets it through like curl.

- ``tasks list [--project P] [--status S]`` — ``GET /api/tasks?project_id=`` for the project, or
  for every project of ``GET /api/projects`` (the API lists tasks per project).
- ``tasks show ID`` — ``GET /api/tasks/{id}``, its attempts (``GET /api/task-attempts?task_id=``)
  and each attempt's status: the status of its latest execution process.
- ``tasks create --project P --title T [--description D]`` — ``POST /api/tasks``.
- ``tasks start ID [--executor E] [--base-branch B]`` — ``POST /api/task-attempts``.
- ``tasks logs ID [--follow]`` — the log lines of the latest execution process of the task's
  latest attempt: ``GET /api/execution-processes/{id}/logs`` page by page; with ``--follow`` the
  log WebSocket ``/api/execution-processes/{id}/logs/ws`` instead, which sends the history, then
  the live lines, then a ``finished`` frame when the process has ended. When the attempt goes on
  with a later process (setup → agent → cleanup), that one is followed too.
- ``open`` — prints the node's board URL and opens it in a browser when there is a display.

A task or project is named by its id, a unique prefix of it (as ``tasks list`` shows), and a
project also by its name. Failures raise :class:`ClientError` (one line, exit 1): the node is not
reachable, or the API's RFC 9457 ``detail`` (an unknown id: its 404 detail).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import sys
import time
import uuid
import webbrowser
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from vk_node.settings import NodeSettings
from vk_shared.status import NodeTaskStatus

__all__ = [
    "ClientError",
    "NodeClient",
    "add_commands",
    "has_display",
    "node_url",
    "project_id_of",
    "run_open",
    "run_tasks",
    "task_id_of",
]

_TIMEOUT_S = 15.0
_PROCESS_WAIT_S = 30.0
"""How long ``logs --follow`` waits for a just-started attempt's first execution process."""
_NEXT_PROCESS_WAIT_S = 5.0
"""How long ``logs --follow`` waits, after a process ends while its task is still ``inprogress``,
for the attempt's next process."""
_LOG_PAGE = 1000
_LOG_STREAMS = ("stdout", "stderr")
_TITLE_WIDTH = 48


class ClientError(Exception):
    """A failure reported as one line on stderr with exit code 1."""


# --- the node's address and HTTP -----------------------------------------------------------------


def node_url(settings: NodeSettings) -> str:
    """``http://HOST:PORT`` of the node these settings serve (wildcard binds: the loopback)."""
    host = settings.host.strip().strip("[]")
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(host)
        if ip.is_unspecified:  # a wildcard bind (all interfaces): reach it on the loopback
            host = "::1" if ip.version == 6 else "127.0.0.1"
    if host in ("", "*"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _detail(response: httpx.Response) -> str:
    """The problem's ``detail`` (RFC 9457), else the status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"]:
        return str(body["detail"])
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


class NodeClient:
    """JSON calls to the node's ``/api``; every failure is a :class:`ClientError`."""

    def __init__(self, base_url: str, token: str = "", *, timeout: float = _TIMEOUT_S) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url + "/api", headers=self.headers, timeout=timeout)

    def unreachable(self) -> ClientError:
        return ClientError(
            f"cannot reach the node at {self.base_url} (is `vk-node serve` running?)"
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ClientError(f"the node at {self.base_url} did not answer in time") from None
        except httpx.TransportError:
            raise self.unreachable() from None
        if not response.is_success:
            raise ClientError(_detail(response))
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PATCH", path, json=body)

    def close(self) -> None:
        self.http.close()


# --- names ---------------------------------------------------------------------------------------


def _pick(ref: str, items: Iterable[dict[str, Any]], kind: str, *, by_name: bool = False) -> str:
    """The id of the one item that ``ref`` names: its id, a unique id prefix, or its name."""
    items = list(items)
    if by_name:
        named = [item for item in items if item.get("name") == ref]
        if len(named) == 1:
            return str(named[0]["id"])
    prefix = ref.lower().replace("-", "")
    found = [item for item in items if str(item["id"]).replace("-", "").startswith(prefix)]
    if not found:
        raise ClientError(f"no {kind} matches {ref!r}")
    if len(found) > 1:
        raise ClientError(f"{ref!r} matches {len(found)} {kind}s; give more of the id")
    return str(found[0]["id"])


def _as_uuid(ref: str) -> str | None:
    """``ref`` in the canonical UUID spelling when it is one (``{...}``, ``urn:uuid:`` and bare
    hex forms included, so they reach the API as a plain id), else ``None``."""
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        return None


def project_id_of(client: NodeClient, ref: str) -> str:
    """The project ``ref`` names: its id, a unique id prefix or its name."""
    if (canonical := _as_uuid(ref)) is not None:
        return canonical
    return _pick(ref, client.get("/projects"), "project", by_name=True)


def _all_tasks(client: NodeClient, projects: list[dict[str, Any]], **params: Any) -> list[Any]:
    tasks: list[Any] = []
    for project in projects:
        tasks.extend(client.get("/tasks", project_id=project["id"], **params))
    return tasks


def task_id_of(client: NodeClient, ref: str) -> str:
    """The task ``ref`` names: its id or a unique id prefix (4+ characters)."""
    if (canonical := _as_uuid(ref)) is not None:
        return canonical
    if len(ref) < 4:
        raise ClientError(f"{ref!r} is too short for a task id (give at least 4 characters)")
    projects = client.get("/projects")
    return _pick(ref, _all_tasks(client, projects, include_archived="true"), "task")


# --- output --------------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _short(value: str, width: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= width else value[: width - 1] + "…"


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def _attempt_status(client: NodeClient, attempt_id: str) -> str:
    processes = client.get(f"/task-attempts/{attempt_id}/processes")
    return str(processes[-1]["status"]) if processes else "pending"


# --- commands ------------------------------------------------------------------------------------


def _list(client: NodeClient, args: argparse.Namespace) -> None:
    if args.project is not None:
        pid = project_id_of(client, args.project)
        projects = [client.get(f"/projects/{pid}")]
    else:
        projects = client.get("/projects")
    tasks = _all_tasks(client, projects)
    if args.status is not None:
        tasks = [t for t in tasks if t["status"] == args.status]
    if args.json:
        _print_json(tasks)
        return
    if not tasks:
        print("no tasks")
        return
    names = {p["id"]: p["name"] for p in projects}
    rows = [
        [t["id"][:8], t["status"], _short(t["title"], _TITLE_WIDTH), names.get(t["project_id"], "")]
        for t in tasks
    ]
    print(_table(rows, ["ID", "STATUS", "TITLE", "PROJECT"]))


def _show(client: NodeClient, args: argparse.Namespace) -> None:
    task = client.get(f"/tasks/{task_id_of(client, args.id)}")
    attempts = client.get("/task-attempts", task_id=task["id"])
    if args.json:
        _print_json({**task, "attempts": attempts})
        return
    project = client.get(f"/projects/{task['project_id']}")
    print(f"id:       {task['id']}")
    print(f"title:    {task['title']}")
    print(f"status:   {task['status']}")
    print(f"project:  {project['name']} ({project['id']})")
    description = task.get("description") or ""
    if description:
        print("description:")
        for line in description.splitlines():
            print(f"  {line}")
    if not attempts:
        print("attempts: none")
        return
    print("attempts:")
    rows = [
        [a["id"][:8], a.get("executor") or "", a["branch"], _attempt_status(client, a["id"])]
        for a in attempts
    ]
    table = _table(rows, ["ID", "EXECUTOR", "BRANCH", "STATUS"])
    print("\n".join(f"  {line}" for line in table.splitlines()))


def _create(client: NodeClient, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"project_id": project_id_of(client, args.project), "title": args.title}
    if args.description is not None:
        body["description"] = args.description
    task = client.post("/tasks", body)
    if args.json:
        _print_json(task)
    else:
        print(task["id"])


def _start(client: NodeClient, args: argparse.Namespace, settings: NodeSettings) -> None:
    executor = args.executor or (settings.executors[0] if settings.executors else None)
    if not executor:
        raise ClientError("name the executor with --executor (VK_NODE_EXECUTORS is empty)")
    body = {
        "task_id": task_id_of(client, args.id),
        "executor": executor,
        "base_branch": args.base_branch,
    }
    attempt = client.post("/task-attempts", body)
    if args.json:
        _print_json(attempt)
    else:
        print(attempt["id"])


def _emit(entry: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(entry), flush=True)
    elif entry.get("output_type") in _LOG_STREAMS:
        print(entry["content"], flush=True)


def _latest_process(client: NodeClient, attempt_id: str, wait_s: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + wait_s
    while True:
        processes = client.get(f"/task-attempts/{attempt_id}/processes")
        if processes:
            return dict(processes[-1])
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def _next_process(
    client: NodeClient, task_id: str, attempt_id: str, after_id: str
) -> dict[str, Any] | None:
    """The attempt's process that started after ``after_id`` (setup → agent → cleanup). While
    the task is still ``inprogress`` its run goes on (the node moves it to ``inreview`` when the
    chain ends), so wait for the next process a little."""
    deadline = time.monotonic() + _NEXT_PROCESS_WAIT_S
    while True:
        processes = client.get(f"/task-attempts/{attempt_id}/processes")  # oldest first
        ids = [p["id"] for p in processes]
        if after_id in ids and ids[-1] != after_id:
            return dict(processes[ids.index(after_id) + 1])
        if (
            time.monotonic() >= deadline
            or client.get(f"/tasks/{task_id}")["status"] != "inprogress"
        ):
            return None
        time.sleep(0.1)


def _print_history(client: NodeClient, process_id: str, as_json: bool) -> None:
    after = 0
    while True:
        page = client.get(f"/execution-processes/{process_id}/logs", after=after, limit=_LOG_PAGE)
        for entry in page["entries"]:
            _emit(entry, as_json)
        if not page["has_more"] or page["next_cursor"] is None:
            return
        after = page["next_cursor"]


def _follow(client: NodeClient, process_id: str, as_json: bool) -> dict[str, Any]:
    """Print the process's log from the WebSocket until its ``finished`` frame, which is
    returned."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    url = client.base_url.replace("http", "ws", 1)
    url += f"/api/execution-processes/{process_id}/logs/ws"
    try:
        with connect(
            url, additional_headers=client.headers, open_timeout=_TIMEOUT_S, close_timeout=1
        ) as socket:
            while True:
                frame = json.loads(socket.recv())
                if frame.get("type") == "finished":
                    return dict(frame)
                _emit(frame, as_json)
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise ClientError(
            _detail(httpx.Response(status, content=bytes(exc.response.body)))
        ) from None
    except ConnectionClosed as exc:
        reason = exc.rcvd.reason if exc.rcvd is not None else ""
        raise ClientError(reason or "the node closed the log stream") from None
    except OSError:
        raise client.unreachable() from None


def _logs(client: NodeClient, args: argparse.Namespace) -> None:
    task_id = task_id_of(client, args.id)
    attempts = client.get("/task-attempts", task_id=task_id)
    if not attempts:
        raise ClientError(f"task {task_id} has no attempts (start one with `vk-node tasks start`)")
    attempt_id = attempts[0]["id"]  # newest first
    process = _latest_process(client, attempt_id, _PROCESS_WAIT_S if args.follow else 0)
    if process is None:
        raise ClientError(f"attempt {attempt_id} has no execution process yet")
    if not args.follow:
        _print_history(client, process["id"], args.json)
        return
    while True:
        finished = _follow(client, process["id"], args.json)
        following = _next_process(client, task_id, attempt_id, process["id"])
        if following is None:
            break
        process = following
    code = finished.get("exit_code")
    print(
        f"vk-node: process {finished.get('status')}"
        + ("" if code is None else f" (exit code {code})"),
        file=sys.stderr,
    )


_TASK_COMMANDS: dict[str, Callable[[NodeClient, argparse.Namespace], None]] = {
    "list": _list,
    "show": _show,
    "create": _create,
    "logs": _logs,
}


def run_tasks(args: argparse.Namespace, settings: NodeSettings) -> None:
    """Run ``vk-node tasks <args.tasks_command>`` against the node of ``settings``."""
    client = NodeClient(node_url(settings), settings.api_token)
    try:
        if args.tasks_command == "start":
            _start(client, args, settings)
        else:
            _TASK_COMMANDS[args.tasks_command](client, args)
    finally:
        client.close()


def has_display(env: dict[str, str] | None = None) -> bool:
    """Whether a browser window can be opened: macOS, or an X11/Wayland display."""
    env = dict(os.environ) if env is None else env
    return sys.platform == "darwin" or bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def run_open(settings: NodeSettings) -> None:
    """Print the board's URL; open it in a browser when there is a display."""
    url = node_url(settings) + "/"
    print(url)
    if has_display():
        webbrowser.open(url)


# --- argparse ------------------------------------------------------------------------------------


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """``tasks list|show|create|start|logs`` and ``open`` (``--host``/``--port`` name the node)."""
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--host", default=argparse.SUPPRESS, help="the node's address")
    client.add_argument("--port", default=argparse.SUPPRESS, help="the node's TCP port")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print the API's JSON")
    parents = [common, client, output]

    tasks = sub.add_parser(
        "tasks", parents=[common, client], help="list, create, start and follow tasks"
    )
    tasks_sub = tasks.add_subparsers(dest="tasks_command", metavar="SUBCOMMAND")
    statuses = [s.value for s in NodeTaskStatus]

    ls = tasks_sub.add_parser("list", parents=parents, help="tasks of one or every project")
    ls.add_argument("--project", metavar="ID", help="project id, id prefix or name")
    ls.add_argument("--status", choices=statuses, help="only tasks with this status")

    show = tasks_sub.add_parser("show", parents=parents, help="one task and its attempts")
    show.add_argument("id", metavar="ID", help="task id or id prefix")

    create = tasks_sub.add_parser("create", parents=parents, help="create a task; prints its id")
    create.add_argument("--project", metavar="ID", required=True, help="project id, prefix or name")
    create.add_argument("--title", required=True)
    create.add_argument("--description", help="what to do (the SCRIPT executor runs it)")

    start = tasks_sub.add_parser(
        "start", parents=parents, help="start an attempt of a task; prints its id"
    )
    start.add_argument("id", metavar="ID", help="task id or id prefix")
    start.add_argument(
        "--executor", metavar="PROFILE", help="e.g. SCRIPT (default: first of VK_NODE_EXECUTORS)"
    )
    start.add_argument("--base-branch", default="main", help="branch to start from (main)")

    logs = tasks_sub.add_parser("logs", parents=parents, help="log lines of the task's latest run")
    logs.add_argument("id", metavar="ID", help="task id or id prefix")
    logs.add_argument(
        "--follow", "-f", action="store_true", help="keep printing until the process ends"
    )

    sub.add_parser("open", parents=[common, client], help="print the node board's URL and open it")
