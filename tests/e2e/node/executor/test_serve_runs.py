"""A real ``vk-node serve``: the live log WebSocket, and crash recovery after SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

_ENV = {
    "VK_NODE_EXECUTORS": "SCRIPT",
    "VK_NODE_STOP_GRACE_S": "1",
    "VK_NODE_EXIT_DRAIN_S": "0.2",
    "VK_NODE_LOG_BATCH_INTERVAL_S": "0.05",
}


def _repo(path: Path) -> Path:
    path.mkdir(parents=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, env=env, check=True)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=path, env=env, check=True
    )
    return path


def _wait(predicate: Callable[[], Any], what: str, within_s: float = 20.0) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def _start_script(http: httpx.Client, repo: Path, script: str) -> dict[str, Any]:
    project = http.post("/projects", json={"name": "p", "git_repo_path": str(repo)}).json()
    task = http.post(
        "/tasks", json={"project_id": project["id"], "title": "t", "description": script}
    ).json()
    r = http.post(
        "/task-attempts", json={"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"}
    )
    assert r.status_code == 202, r.text
    return r.json()


def _processes(http: httpx.Client, attempt_id: str) -> list[dict[str, Any]]:
    return http.get(f"/task-attempts/{attempt_id}/processes").json()  # type: ignore[no-any-return]


def test_live_log_websocket_streams_lines_while_the_process_runs(
    start_node: Any, tmp_path: Path
) -> None:
    """The WebSocket delivers a line while its process still runs, then the later lines with no
    duplicates or gaps, then a finished frame, and closes when the process ends."""
    node = start_node(tmp_path / "node", _ENV)
    repo = _repo(tmp_path / "repo")
    gate = tmp_path / "gate"
    script = f"for i in 1 2 3; do echo early-$i; done\nwhile [ ! -e {gate} ]; do sleep 0.02; done\n"
    script += "for i in $(seq 1 500); do echo late-$i; done"
    with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
        attempt = _start_script(http, repo, script)
        [proc] = _wait(lambda: _processes(http, attempt["id"]), "the process row")
        ws_url = node.url.replace("http", "ws") + f"/api/execution-processes/{proc['id']}/logs/ws"
        with connect(ws_url, open_timeout=10) as ws:
            first = json.loads(ws.recv(timeout=10))
            assert first["content"] == "early-1"
            assert _processes(http, attempt["id"])[0]["status"] == "running"
            gate.touch()
            frames = [first]
            while True:
                frame = json.loads(ws.recv(timeout=10))
                if frame.get("type") == "finished":
                    break
                frames.append(frame)
            assert frame["status"] == "completed"
            ids = [f["id"] for f in frames]
            assert ids == sorted(set(ids))
            contents = [f["content"] for f in frames if f["output_type"] == "stdout"]
            expected = [f"early-{i}" for i in (1, 2, 3)] + [f"late-{i}" for i in range(1, 501)]
            assert contents == expected
        # history-only replay of an ended process: same rows, then finished
        with connect(ws_url, open_timeout=10) as ws:
            replay = []
            while True:
                frame = json.loads(ws.recv(timeout=10))
                if frame.get("type") == "finished":
                    break
                replay.append(frame["id"])
            assert replay == ids


def test_sigkilled_node_recovers_each_run_exactly_once(start_node: Any, tmp_path: Path) -> None:
    """After the node is SIGKILLed mid-run, the next start kills the orphaned script group and
    fails its row; later restarts change nothing."""
    data = tmp_path / "node"
    repo = _repo(tmp_path / "repo")
    pids = tmp_path / "pids"
    node = start_node(data, _ENV)
    with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
        attempt = _start_script(
            http, repo, f"echo $$ >> {pids}\nsleep 300 & echo $! >> {pids}\necho up\nwait"
        )
        _wait(lambda: pids.exists() and len(pids.read_text().split()) >= 2, "the script's pids")
        _wait(lambda: _processes(http, attempt["id"])[0]["pid"], "the recorded pid")
    script_pids = [int(p) for p in pids.read_text().split()]
    node.signal(signal.SIGKILL)
    node.wait()
    assert all(_alive(p) for p in script_pids)  # a crash leaves the run's group behind

    snapshots = []
    for _ in range(3):
        node = start_node(data, _ENV)
        with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
            procs = _wait(
                lambda: [p for p in _processes(http, attempt["id"]) if p["status"] != "running"],
                "recovery to fail the orphaned row",
            )
            snapshots.append(procs)
            task_id = http.get(f"/task-attempts/{attempt['id']}").json()["task_id"]
            task = http.get(f"/tasks/{task_id}")
            assert task.json()["status"] == "inreview"
        assert node.terminate() == 0, node.log()
    _wait(lambda: not any(_alive(p) for p in script_pids), "the orphaned group to die", 5)
    [row] = snapshots[0]
    assert (row["status"], row["completion_reason"]) == ("failed", "eof")
    assert snapshots[0] == snapshots[1] == snapshots[2]


@pytest.fixture(autouse=True)
def _no_leftover_sleepers(tmp_path: Path) -> Any:
    """Kill any pid a test's scripts recorded, whatever happened."""
    yield
    pids = tmp_path / "pids"
    if pids.exists():
        for pid in pids.read_text().split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
