"""Real ``vk-node`` processes for end-to-end tests.

``node_process`` starts ``vk-node serve`` as a subprocess on a free port with a temp data dir and
no ``VK_HIVE_URL`` (standalone), waits until ``GET /api/health`` answers, and stops it at the end.
``run_cli`` runs one ``vk-node`` command to completion.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

_START_TIMEOUT_S = 20.0


def _vk_node() -> list[str]:
    script = Path(sys.executable).parent / "vk-node"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vk_node.cli"]


def node_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a node: no inherited VK_* settings, JSON logs, given data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_NODE_", "VK_HIVE_"))}
    env.update({"VK_NODE_DATA_DIR": str(data_dir), "VK_NODE_LOG_FORMAT": "json"})
    env.update(extra or {})
    return env


def run_cli(
    args: list[str], data_dir: Path, extra_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``vk-node ARGS`` to completion and capture its output."""
    return subprocess.run(
        [*_vk_node(), *args],
        env=node_env(data_dir, extra_env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def make_git_repo(path: Path) -> Path:
    """A real repository with one empty commit on ``main`` (same recipe as the API tests)."""
    path.mkdir(parents=True, exist_ok=True)
    ident = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env = {**os.environ, **ident, "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, env=env, check=True)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=path, env=env, check=True
    )
    return path


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real ``git init`` repository with one commit on ``main``."""
    return make_git_repo(tmp_path / "repo")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NodeProcess:
    """One ``vk-node serve`` subprocess."""

    def __init__(self, data_dir: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_env = dict(extra_env or {})
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-node.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NodeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a free port can be taken by someone else before we bind it
            self.port = free_port()
            env = node_env(self.data_dir, {"VK_NODE_PORT": str(self.port), **self.extra_env})
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [*_vk_node(), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            if self._wait_healthy():
                return self
        raise AssertionError(f"vk-node serve did not start:\n{self.log()}")

    def _wait_healthy(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(self.url + "/api/health", timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        return False

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def terminate(self) -> int:
        """SIGTERM and wait: the exit status of a graceful shutdown."""
        self.signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[NodeProcess]:
    """A started standalone ``vk-node serve`` on a free port; killed at the end if still alive."""
    node = NodeProcess(tmp_path / "node").start()
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture
def vk_node_cli():
    """``run_cli`` as a fixture (test modules cannot import this conftest)."""
    return run_cli


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator:
    """Factory: ``start_node(data_dir, extra_env)`` starts a node; all are killed at the end."""
    started: list[NodeProcess] = []

    def start(data_dir: Path, extra_env: Mapping[str, str] | None = None) -> NodeProcess:
        node = NodeProcess(data_dir, extra_env).start()
        started.append(node)
        return node

    try:
        yield start
    finally:
        for node in started:
            node.kill()
