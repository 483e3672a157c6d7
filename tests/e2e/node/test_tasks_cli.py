"""``vk-node tasks ...`` and ``vk-node open`` as real processes against a real ``vk-node serve``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

_SCRIPT = {"VK_NODE_EXECUTORS": "SCRIPT"}
_NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY")


def _env(data_dir: Path, port: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment: the node's settings (data dir, port), nothing else inherited from
    VK_*, and no display (``open`` must not start a browser here)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VK_NODE_", "VK_HIVE_")) and k not in _NO_DISPLAY
    }
    env.update({"VK_NODE_DATA_DIR": str(data_dir), "VK_NODE_PORT": str(port)})
    env.update(extra or {})
    return env


def _argv(args: list[str]) -> list[str]:
    return [str(Path(sys.executable).parent / "vk-node"), *args]


def _cli(node: Any, *args: str, extra: Mapping[str, str] | None = None) -> Any:
    """Run ``vk-node ARGS`` against ``node`` (same data dir and port) to completion."""
    return subprocess.run(
        _argv(list(args)),
        env=_env(node.data_dir, node.port, extra),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _ok(result: Any) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert result.stderr == "" or "Traceback" not in result.stderr
    return str(result.stdout)


def _project(node: Any, repo: Path, name: str = "demo", **fields: str) -> dict[str, Any]:
    body = {"name": name, "git_repo_path": str(repo), **fields}
    with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
        response = http.post("/projects", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


def _started_task(node: Any, project_id: str, title: str, script: str) -> str:
    """A task created and started (SCRIPT) by the CLI; its id."""
    create = ["tasks", "create", "--project", project_id, "--title", title]
    task_id = _ok(_cli(node, *create, "--description", script)).strip()
    _ok(_cli(node, "tasks", "start", task_id, "--executor", "SCRIPT"))
    return task_id


def _follow_after(
    node: Any, task_id: str, first_line: str, act: Callable[[subprocess.Popen[str]], None]
) -> tuple[int, str, str]:
    """Run ``tasks logs --follow``, wait for ``first_line``, ``act`` on the process, then its
    exit status, the rest of its stdout and its stderr."""
    follow = subprocess.Popen(
        _argv(["tasks", "logs", task_id, "--follow"]),
        env=_env(node.data_dir, node.port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline() == first_line
        act(follow)
        out, err = follow.communicate(timeout=20)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    return follow.returncode, out, err


def test_create_list_show_start_and_follow_the_logs(
    start_node: Any, git_repo: Path, tmp_path: Path
) -> None:
    """A task made by the CLI is listed (table and JSON), shown, started as a SCRIPT attempt, and
    ``logs --follow`` prints the script's lines and exits 0 when the run ends; ``show`` then
    lists the attempt and ``logs`` prints the same lines again."""
    node = start_node(tmp_path / "node", _SCRIPT)
    project = _project(node, git_repo)
    script = "echo first-line\necho second-line\nsleep 0.5\necho third-line"
    task_id = _ok(
        _cli(
            node,
            "tasks",
            "create",
            "--project",
            project["id"],
            "--title",
            "Say three things",
            "--description",
            script,
        )
    ).strip()
    assert len(task_id) == 36

    table = _ok(_cli(node, "tasks", "list", extra=_SCRIPT)).splitlines()
    assert table[0].split() == ["ID", "STATUS", "TITLE", "PROJECT"]
    assert table[1].split() == [task_id[:8], "todo", "Say", "three", "things", "demo"]
    listed = json.loads(_ok(_cli(node, "tasks", "list", "--project", "demo", "--json")))
    assert [(t["id"], t["title"], t["status"]) for t in listed] == [
        (task_id, "Say three things", "todo")
    ]
    assert json.loads(_ok(_cli(node, "tasks", "list", "--status", "done", "--json"))) == []

    shown = _ok(_cli(node, "tasks", "show", task_id[:8]))
    assert "title:    Say three things" in shown
    assert "status:   todo" in shown
    assert "  echo second-line" in shown
    assert "attempts: none" in shown

    attempt_id = _ok(_cli(node, "tasks", "start", task_id, extra=_SCRIPT)).strip()
    assert len(attempt_id) == 36
    follow = _cli(node, "tasks", "logs", task_id, "--follow")
    assert _ok(follow).splitlines() == ["first-line", "second-line", "third-line"]
    assert "process completed (exit code 0)" in follow.stderr

    shown = _ok(_cli(node, "tasks", "show", task_id))
    assert "status:   inreview" in shown
    attempt_line = next(line for line in shown.splitlines() if attempt_id[:8] in line)
    assert attempt_line.split()[1] == "SCRIPT"
    assert attempt_line.split()[2].startswith("vk/")
    assert attempt_line.split()[3] == "completed"
    as_json = json.loads(_ok(_cli(node, "tasks", "show", task_id, "--json")))
    assert as_json["id"] == task_id
    assert [a["id"] for a in as_json["attempts"]] == [attempt_id]
    history = _ok(_cli(node, "tasks", "logs", task_id)).splitlines()
    assert history == ["first-line", "second-line", "third-line"]


def test_follow_goes_on_from_the_setup_script_to_the_agent(
    start_node: Any, git_repo: Path, tmp_path: Path
) -> None:
    """Following while the project's setup script runs prints its lines, then the lines of the
    SCRIPT run that comes after it, and exits 0 when that one ends."""
    node = start_node(tmp_path / "node", _SCRIPT)
    gate = tmp_path / "gate"
    setup = f"echo setup-line\nwhile [ ! -e {gate} ]; do sleep 0.02; done"
    project = _project(node, git_repo, "with-setup", setup_script=setup)
    task_id = _started_task(node, project["id"], "after setup", "echo agent-line")
    code, out, err = _follow_after(node, task_id, "setup-line\n", lambda _: gate.touch())
    assert code == 0, err
    assert out == "agent-line\n"


def test_unknown_task_id_answers_the_apis_404_detail(
    start_node: Any, git_repo: Path, tmp_path: Path
) -> None:
    """An unknown id is one line with the API's 404 detail and exit 1; so is a bad create."""
    node = start_node(tmp_path / "node", _SCRIPT)
    _project(node, git_repo)
    missing = "00000000-0000-4000-8000-000000000000"
    for command in ("show", "logs", "start"):
        executor = ["--executor", "SCRIPT"] if command == "start" else []
        result = _cli(node, "tasks", command, missing, *executor)
        assert result.returncode == 1, result
        assert result.stderr == f"vk-node: error: task {missing} not found\n", command
        assert result.stdout == ""
    no_project = _cli(node, "tasks", "create", "--project", missing, "--title", "t")
    assert no_project.returncode == 1
    assert no_project.stderr.count("\n") == 1
    assert missing in no_project.stderr


def test_node_not_running_is_one_clear_line(tmp_path: Path) -> None:
    """Without a node on the port every client command fails with one line and exit 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = _env(tmp_path / "node", port)
    for args in (["tasks", "list"], ["tasks", "show", "abcd1234"], ["tasks", "logs", "abcd"]):
        result = subprocess.run(
            _argv(args), env=env, capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 1, result
        assert result.stderr == (
            f"vk-node: error: cannot reach the node at http://127.0.0.1:{port} "
            "(is `vk-node serve` running?)\n"
        )


def test_follow_stops_on_ctrl_c_with_130(start_node: Any, git_repo: Path, tmp_path: Path) -> None:
    """Ctrl-C while following a run that goes on: exit 130, the lines so far, no traceback."""
    node = start_node(tmp_path / "node", _SCRIPT)
    project = _project(node, git_repo)
    task_id = _started_task(node, project["id"], "slow", "echo started\nsleep 30")
    code, out, err = _follow_after(
        node, task_id, "started\n", lambda follow: follow.send_signal(signal.SIGINT)
    )
    assert code == 130
    assert out == ""
    assert "Traceback" not in err
    with httpx.Client(base_url=node.url + "/api", timeout=10) as http:  # stop the run
        [attempt] = http.get("/task-attempts", params={"task_id": task_id}).json()
        assert http.post(f"/task-attempts/{attempt['id']}/stop").status_code == 200
        processes = f"/task-attempts/{attempt['id']}/processes"
        deadline = time.monotonic() + 15
        while http.get(processes).json()[0]["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_token_is_sent_when_the_node_requires_one(start_node: Any, tmp_path: Path) -> None:
    """With VK_NODE_API_TOKEN the CLI sends it; a wrong one is the API's 401 detail, exit 1."""
    token = {"VK_NODE_API_TOKEN": "t" * 32}
    node = start_node(tmp_path / "node", token)
    assert _ok(_cli(node, "tasks", "list", extra=token)) == "no tasks\n"
    wrong = _cli(node, "tasks", "list", extra={"VK_NODE_API_TOKEN": "w" * 32})
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("vk-node: error: ")
    assert wrong.stderr.count("\n") == 1


def test_open_without_a_display_prints_the_url(tmp_path: Path) -> None:
    """``open`` prints the node's board URL; without DISPLAY/WAYLAND_DISPLAY it opens nothing."""
    result = subprocess.run(
        _argv(["open"]),
        env=_env(tmp_path / "node", 4321),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "http://127.0.0.1:4321/\n"
    assert result.stderr == ""
