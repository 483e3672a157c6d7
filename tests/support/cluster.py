"""A hive and N nodes as REAL PROCESSES on this machine, for end-to-end tests, ``make demo``,
benchmarks and chaos runs.

Everything here is synchronous (subprocesses, ``httpx.Client``), so it works from a plain pytest
test and from a script that puts ``tests/`` on ``sys.path``::

    from support.cluster import Cluster

    with Cluster(workdir, nodes=2) as cluster:          # fresh database from the PostgreSQL chain
        a, b = cluster.nodes
        task = cluster.api.post("/tasks", json={...})   # hive REST as the bootstrapped admin
        a.api.get("/tasks", params={"project_id": a.project_id})  # node REST (``/api``)
        cluster.hive.kill(); cluster.hive.start()   # SIGKILL, then serve on the same port

Pieces:

- :class:`HiveProcess` — ``vk-hive serve`` (which migrates its database as it starts) on a free
  port (kept across restarts) with short lease/heartbeat/sweep durations; ``bootstrap()`` and
  ``create_api_key()`` run the ``vk-hive admin`` commands; ``api(token)`` is a REST client of
  ``/v1``.
- :class:`NodeProcess` — ``vk-node serve`` with its own data dir, port and API key (machine id:
  the node's default unless given),
  ``VK_NODE_EXECUTORS=SCRIPT`` and short link durations; ``api`` is a REST client of ``/api``;
  ``status()`` runs ``vk-node status --json``; ``wait_connected()`` returns its hive node id.
- :class:`Cluster` — a context manager: hive, admin token, one swarm project, N nodes each with a
  demo git repository and a local project linked to the swarm project (in order, so the first
  node is the first dispatch target), waits until the hive lists every node online and linked.
  On exit it stops everything and fails if any process it started (or their children: every
  process carries ``VK_CLUSTER_ID`` in its environment) is still alive.

Each process logs to ``<workdir>/<name>.log``; every wait is a bounded poll whose timeout message
ends with the tail of the relevant logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx

from support.postgres import DatabaseFactory, find_server, release_server

__all__ = [
    "CLUSTER_ENV",
    "HIVE_TEST_ENV",
    "NODE_TEST_ENV",
    "ApiError",
    "ApiKey",
    "Bootstrap",
    "Cluster",
    "ClusterNode",
    "HiveProcess",
    "NodeProcess",
    "RestClient",
    "free_port",
    "hive_with_keys",
    "leftover_processes",
    "make_demo_repo",
    "wait_until",
]

T = TypeVar("T")

CLUSTER_ENV = "VK_CLUSTER_ID"
"""Every process of a cluster (and every child it starts) carries this variable, so leftovers
can be found in ``/proc`` after shutdown."""

JWT_SECRET = "cluster-jwt-secret-" + "c" * 40

HIVE_TEST_ENV: dict[str, str] = {
    "VK_HIVE_LEASE_TTL_S": "5",
    "VK_HIVE_LEASE_GRACE_S": "1",
    "VK_HIVE_LEASE_SWEEP_INTERVAL_S": "0.5",
    "VK_HIVE_HEARTBEAT_INTERVAL_S": "1",
    "VK_HIVE_HEARTBEAT_TIMEOUT_S": "10",
    "VK_HIVE_AUTH_TIMEOUT_S": "5",
    "VK_HIVE_ACTIVITY_RECONNECT_INITIAL_S": "0.2",
    "VK_HIVE_ACTIVITY_RECONNECT_MAX_S": "1",
    "VK_HIVE_LOG_FORMAT": "json",
    # Per-address limits off: every test node and client connects from 127.0.0.1, with backoffs
    # ten times shorter than a real node's (tests of the limits turn them on).
    "VK_HIVE_AUTH_RATE_LIMIT": "0",
    "VK_HIVE_NODE_AUTH_RATE_LIMIT": "0",
}
"""Short durations for a hive under test (override per cluster with ``hive_env``)."""

NODE_TEST_ENV: dict[str, str] = {
    "VK_NODE_EXECUTORS": "SCRIPT",
    "VK_NODE_MAX_CONCURRENT": "2",
    "VK_NODE_STOP_GRACE_S": "0.5",
    "VK_NODE_EXIT_DRAIN_S": "0.1",
    "VK_NODE_SHUTDOWN_TIMEOUT_S": "3",
    "VK_NODE_LOG_BATCH_INTERVAL_S": "0.02",
    "VK_NODE_LINK_BACKOFF_INITIAL_S": "0.1",
    "VK_NODE_LINK_BACKOFF_MAX_S": "1",
    "VK_NODE_LINK_BACKOFF_JITTER": "0",
    "VK_NODE_LINK_OPEN_TIMEOUT_S": "5",
    "VK_NODE_LINK_AUTH_TIMEOUT_S": "5",
    "VK_NODE_LINK_PING_INTERVAL_S": "5",
    "VK_NODE_OUTBOX_PARK_RETRY_S": "0.2",
    "VK_NODE_OUTBOX_ACK_TIMEOUT_S": "3",
    "VK_NODE_LEASE_RESTORE_GRACE_S": "5",
    "VK_NODE_LOG_FORMAT": "json",
}
"""Short durations for a node under test (override per cluster with ``node_env``)."""

_BIN = Path(sys.executable).parent
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "vk",
    "GIT_AUTHOR_EMAIL": "vk@example.com",
    "GIT_COMMITTER_NAME": "vk",
    "GIT_COMMITTER_EMAIL": "vk@example.com",
}


# --- small helpers -------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log, without per-request access lines (polls would fill it)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    kept = [line for line in text.splitlines() if '"event": "http.request"' not in line]
    return "\n".join(kept[-lines:])


def wait_until(
    probe: Callable[[], T],
    *,
    timeout: float,
    what: str | Callable[[], str],
    logs: Iterable[_Process] = (),
    interval: float = 0.05,
) -> T:
    """Call ``probe`` until it returns something truthy and return that; after ``timeout``
    seconds fail with ``what`` (or what it returns, when it is a function), the last value and
    the tails of ``logs``."""
    deadline = time.monotonic() + timeout
    value: T = probe()
    while not value:
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {p.name} ({p.log_path}) ---\n{p.log_tail()}" for p in logs)
            said = what() if callable(what) else what
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {said} (last value: {value!r}){tails}"
            )
        time.sleep(interval)
        value = probe()
    return value


def make_demo_repo(path: Path) -> Path:
    """A real git repository on ``main`` with one commit holding ``README.md`` and
    ``notes.txt`` (scripts edit files in it)."""
    path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **_GIT_IDENTITY}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (path / "README.md").write_text("# demo\n")
    (path / "notes.txt").write_text("first line\n")
    git("add", "README.md", "notes.txt")
    git("commit", "-q", "-m", "init")
    return path


def leftover_processes(cluster_id: str) -> list[int]:
    """Live processes (not zombies) whose environment carries ``VK_CLUSTER_ID=cluster_id``."""
    marker = f"{CLUSTER_ENV}={cluster_id}".encode()
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
        if state != "Z" and marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


# --- REST ----------------------------------------------------------------------------------------


class ApiError(AssertionError):
    """A REST call answered with an unexpected status."""

    def __init__(self, response: httpx.Response, expected: Iterable[int] | None) -> None:
        self.response = response
        self.status_code = response.status_code
        req = response.request
        wanted = "2xx" if expected is None else ", ".join(map(str, sorted(expected)))
        super().__init__(
            f"{req.method} {req.url} -> {response.status_code} (expected {wanted}): "
            f"{response.text[:2000]}"
        )


class RestClient:
    """A JSON REST client of one base URL (keep-alive with TCP_NODELAY, so loopback requests
    take a millisecond or two, not the 40 ms of Nagle + delayed ACK)."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 15.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        self.base_url = base_url
        self.http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    def request(
        self, method: str, path: str, *, expect: Iterable[int] | None = None, **kwargs: Any
    ) -> Any:
        """The decoded JSON body (``None`` when empty); raises :class:`ApiError` when the status
        is not in ``expect`` (default: any 2xx)."""
        response = self.http.request(method, path, **kwargs)
        ok = response.is_success if expect is None else response.status_code in set(expect)
        if not ok:
            raise ApiError(response, expect)
        return response.json() if response.content else None

    def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.http.close()


# --- processes -----------------------------------------------------------------------------------


class _Process:
    """One long-running subprocess: log file, health wait, stop/kill/restart on the same port."""

    health_path = "/"

    def __init__(self, name: str, workdir: Path, env: Mapping[str, str], port: int = 0) -> None:
        self.name = name
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.env = dict(env)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_timeout = 30.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def start(self) -> None:
        """Spawn and wait until the health endpoint answers 200."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"=== {self.name}: start on port {self.port} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv(),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            try:
                r = httpx.get(self.url + self.health_path, timeout=1.0)
            except httpx.TransportError:
                return False
            return r.status_code == 200

        wait_until(healthy, timeout=self.start_timeout, what=f"{self.name} health", logs=[self])

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; the exit status (``None`` if it was
        not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL (no shutdown at all) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        """Graceful stop, then start again on the same port."""
        self.stop()
        self.start()


class HiveProcess(_Process):
    """``vk-hive serve`` on ``dsn`` (empty or migrated: serve applies the missing migrations
    before it answers its health check, so no separate ``vk-hive migrate`` runs first)."""

    health_path = "/v1/health"

    def __init__(
        self,
        dsn: str,
        workdir: Path,
        *,
        name: str = "hive",
        port: int = 0,
        env: Mapping[str, str] | None = None,
        cluster_id: str = "",
        bin_dir: Path | None = None,
        test_env: bool = True,
    ) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("VK_HIVE_", "VK_NODE_"))}
        if test_env:
            base.update(HIVE_TEST_ENV)
        base.update(
            {
                "VK_HIVE_DATABASE_URL": dsn,
                "VK_HIVE_HOST": "127.0.0.1",
                "VK_HIVE_JWT_SECRET": JWT_SECRET,
                CLUSTER_ENV: cluster_id,
            }
        )
        base.update(env or {})
        super().__init__(name, workdir, base, port)
        self.env["VK_HIVE_PORT"] = str(self.port)
        self.dsn = dsn
        self.bin_dir = bin_dir or _BIN

    def argv(self) -> list[str]:
        return [str(self.bin_dir / "vk-hive"), "serve"]

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``vk-hive ARGS`` with this hive's settings; fails on a non-zero exit."""
        result = subprocess.run(
            [str(self.bin_dir / "vk-hive"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"vk-hive {' '.join(args)} exited with {result.returncode}:\n{result.stderr}"
            )
        return result

    def bootstrap(self, email: str = "admin@example.com", name: str | None = None) -> Bootstrap:
        """``vk-hive admin bootstrap --json``: a user, a personal organization and a token."""
        args = ["admin", "bootstrap", "--email", email, "--json"]
        if name:
            args += ["--name", name]
        data = json.loads(self.cli(*args).stdout)
        return Bootstrap(data["user_id"], data["organization_id"], data["token"])

    def create_api_key(self, organization_id: str, name: str) -> ApiKey:
        """``vk-hive admin create-api-key --json``: a node API key (the secret is shown once)."""
        args = ["--organization-id", organization_id, "--name", name, "--json"]
        data = json.loads(self.cli("admin", "create-api-key", *args).stdout)
        return ApiKey(data["id"], data["key_prefix"], data["secret"])

    def login_link(self, email: str) -> str:
        """``vk-hive admin login-link --email E --json``: a one-time browser sign-in URL."""
        data = json.loads(self.cli("admin", "login-link", "--email", email, "--json").stdout)
        url: str = data["url"]
        return url

    def api(self, token: str) -> RestClient:
        """A REST client of ``/v1`` with ``token`` as Bearer (close it, or let a Cluster)."""
        return RestClient(self.url + "/v1", token)

    def sql(self, query: str, *args: Any) -> list[dict[str, Any]]:
        """Run one query on the hive's database (for checks REST does not expose)."""

        async def run() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self.dsn)
            try:
                return [dict(row) for row in await conn.fetch(query, *args)]
            finally:
                await conn.close()

        return asyncio.run(run())


class NodeProcess(_Process):
    """``vk-node serve`` with its own data dir under ``workdir/<name>``."""

    health_path = "/api/health"

    def __init__(
        self,
        workdir: Path,
        *,
        name: str,
        hive_url: str = "",
        api_key: str = "",
        machine_id: str | None = None,
        port: int = 0,
        env: Mapping[str, str] | None = None,
        cluster_id: str = "",
        bin_dir: Path | None = None,
        test_env: bool = True,
    ) -> None:
        from vk_node.settings import NodeSettings

        base = {k: v for k, v in os.environ.items() if not k.startswith(("VK_HIVE_", "VK_NODE_"))}
        if test_env:
            base.update(NODE_TEST_ENV)
        self.data_dir = workdir / name
        passthrough = [*NodeSettings().env_passthrough, CLUSTER_ENV]
        base.update(
            {
                "VK_NODE_DATA_DIR": str(self.data_dir),
                "VK_NODE_HOST": "127.0.0.1",
                "VK_NODE_NAME": name,
                "VK_HIVE_URL": hive_url,
                "VK_NODE_API_KEY": api_key,
                "VK_NODE_ENV_PASSTHROUGH": ",".join(passthrough),
                CLUSTER_ENV: cluster_id,
            }
        )
        if machine_id:  # default: the id the node generates in its data dir
            base["VK_NODE_MACHINE_ID"] = machine_id
        base.update(env or {})
        super().__init__(name, workdir, base, port)
        self.env["VK_NODE_PORT"] = str(self.port)
        self.bin_dir = bin_dir or _BIN
        self._api: RestClient | None = None

    def argv(self) -> list[str]:
        return [str(self.bin_dir / "vk-node"), "serve"]

    @property
    def db_path(self) -> Path:
        return self.data_dir / "db.sqlite"

    @property
    def api(self) -> RestClient:
        """A REST client of this node's ``/api`` (kept until :meth:`close`)."""
        if self._api is None:
            self._api = RestClient(self.url + "/api")
        return self._api

    def status(self) -> dict[str, Any]:
        """``vk-node status --json`` (reads only the store file; works while stopped too)."""
        result = subprocess.run(
            [str(self.bin_dir / "vk-node"), "status", "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"vk-node status failed ({result.returncode}): {result.stderr}")
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def sql(self, query: str, *args: Any) -> list[dict[str, Any]]:
        """Read the node's SQLite store (read-only, safe while it runs). UUID arguments are
        passed in their stored 16-byte form; 16-byte BLOB columns come back as UUID strings."""
        params = [a.bytes if isinstance(a, uuid.UUID) else a for a in args]
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(query, params).fetchall()
        finally:
            conn.close()

        def value(v: Any) -> Any:
            return str(uuid.UUID(bytes=v)) if isinstance(v, bytes) and len(v) == 16 else v

        return [{k: value(row[k]) for k in row.keys()} for row in rows]  # noqa: SIM118

    def local_tasks(self, shared_task_id: str) -> list[dict[str, Any]]:
        """The local tasks holding the hive task ``shared_task_id`` (one when synced). From the
        store: ``GET /api/tasks`` lists only local tasks and those with an attempt here."""
        return self.sql("SELECT * FROM tasks WHERE shared_task_id = ?", uuid.UUID(shared_task_id))

    def link_status(self) -> dict[str, Any]:
        """``GET /api/link/status``."""
        data: dict[str, Any] = self.api.get("/link/status")
        return data

    def wait_connected(self, timeout: float = 20.0) -> str:
        """Wait until the link is ``connected``; the node's id on the hive."""

        def connected() -> str:
            status = self.link_status()
            return str(status["node_id"]) if status["state"] == "connected" else ""

        return wait_until(connected, timeout=timeout, what=f"{self.name} to connect", logs=[self])

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None


# --- cluster -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bootstrap:
    user_id: str
    organization_id: str
    token: str


@dataclass(frozen=True)
class ApiKey:
    id: str
    key_prefix: str
    secret: str


@contextlib.contextmanager
def hive_with_keys(
    server: Any,
    template: str,
    workdir: Path,
    *key_names: str,
    prefix: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[tuple[HiveProcess, list[ApiKey]]]:
    """A started ``vk-hive serve`` on a fresh copy of the migrated ``template`` database (of the
    PostgreSQL ``server``), with a bootstrapped organization and one node API key per name;
    stopped and its database dropped at the end."""
    factory = DatabaseFactory(server, prefix=prefix)
    dsn = asyncio.run(factory.create(prefix, template=template))
    process = HiveProcess(dsn, workdir, env=env)
    try:
        process.start()
        boot = process.bootstrap()
        yield process, [process.create_api_key(boot.organization_id, name) for name in key_names]
    finally:
        process.stop()
        asyncio.run(factory.drop_all())


@dataclass
class ClusterNode:
    """A node process with its API key, demo repository and local project (linked or not)."""

    process: NodeProcess
    key: ApiKey
    repo: Path
    project_id: str = ""
    node_id: str = ""
    linked: bool = False

    @property
    def name(self) -> str:
        return self.process.name

    @property
    def api(self) -> RestClient:
        return self.process.api


@dataclass
class Cluster:
    """A hive, an admin, a swarm project and ``nodes`` linked nodes; see the module docstring.

    ``dsn``: a migrated or empty database to use (else a fresh one from the PostgreSQL chain,
    dropped at exit). ``hive_env``/``node_env`` override the short test durations; with
    ``test_env=False`` the processes run with the defaults users get (plus those overrides).
    ``hive_bin``/``node_bin``: where ``vk-hive``/``vk-node`` are (default: this interpreter's).
    """

    workdir: Path
    nodes_count: int = 2
    dsn: str | None = None
    hive_env: Mapping[str, str] = field(default_factory=dict)
    node_env: Mapping[str, str] = field(default_factory=dict)
    email: str = "admin@example.com"
    project_name: str = "swarm"
    ready_timeout: float = 30.0
    test_env: bool = True
    hive_bin: Path | None = None
    node_bin: Path | None = None

    cluster_id: str = field(init=False, default_factory=lambda: uuid.uuid4().hex)
    hive: HiveProcess = field(init=False)
    admin: Bootstrap = field(init=False)
    api: RestClient = field(init=False)
    swarm_project_id: str = field(init=False, default="")
    nodes: list[ClusterNode] = field(init=False, default_factory=list)
    _release: list[Callable[[], None]] = field(init=False, default_factory=list)

    # -- lifecycle --

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.close(check=False)
            raise
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.close(check=exc_type is None)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        dsn = self.dsn or self._fresh_database()
        self.hive = HiveProcess(
            dsn,
            self.workdir,
            env=self.hive_env,
            cluster_id=self.cluster_id,
            bin_dir=self.hive_bin,
            test_env=self.test_env,
        )
        self.hive.start()
        self.admin = self.hive.bootstrap(self.email)
        self.api = self.hive.api(self.admin.token)
        self._release.append(self.api.close)
        project = self.api.post(
            "/swarm/projects",
            json={"organization_id": self.admin.organization_id, "name": self.project_name},
        )
        self.swarm_project_id = project["id"]
        for i in range(self.nodes_count):
            self.add_node(f"node-{chr(ord('a') + i)}")

    def _fresh_database(self) -> str:
        server = find_server()
        factory = DatabaseFactory(server, prefix="vk_cluster")
        self._release.append(lambda: release_server(server))
        self._release.append(lambda: asyncio.run(factory.drop_all()))
        return asyncio.run(factory.create("hive"))

    @property
    def processes(self) -> list[_Process]:
        procs: list[_Process] = [n.process for n in self.nodes]
        if hasattr(self, "hive"):
            procs.insert(0, self.hive)
        return procs

    def close(self, *, check: bool = True) -> None:
        """Stop nodes, then the hive; release clients and the database; with ``check`` fail if
        any process of this cluster is still alive (they are killed first)."""
        for node in self.nodes:
            node.process.stop()
            node.process.close()
        if hasattr(self, "hive"):
            self.hive.stop()
        leftovers = self._reap()
        for release in reversed(self._release):
            with contextlib.suppress(Exception):
                release()
        self._release.clear()
        if check and leftovers:
            raise AssertionError(f"processes left behind by the cluster: {leftovers}")

    def _reap(self) -> list[str]:
        """Kill what is left; describe it."""
        deadline = time.monotonic() + 5.0
        pids = leftover_processes(self.cluster_id)
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = leftover_processes(self.cluster_id)
        described = []
        for pid in pids:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                cmd = "?"
            described.append(f"{pid}: {cmd.strip()}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return described

    # -- nodes --

    def add_node(
        self,
        name: str,
        *,
        link: bool = True,
        api_key: ApiKey | None = None,
        env: Mapping[str, str] | None = None,
        machine_id: str | None = None,
        wait: bool = True,
        bin_dir: Path | None = None,
    ) -> ClusterNode:
        """Start a node with a new API key (or ``api_key``), create its demo repository and local
        project and (``link``) link it to the swarm project; ``wait`` until the hive lists it
        online (and linked). ``bin_dir``: where this node's ``vk-node`` is (default: the
        cluster's ``node_bin``), for a cluster of nodes of different releases."""
        key = api_key or self.hive.create_api_key(self.admin.organization_id, name)
        process = NodeProcess(
            self.workdir,
            name=name,
            hive_url=self.hive.url,
            api_key=key.secret,
            machine_id=machine_id,
            env={**self.node_env, **(env or {})},
            cluster_id=self.cluster_id,
            bin_dir=bin_dir or self.node_bin,
            test_env=self.test_env,
        )
        node = ClusterNode(process=process, key=key, repo=self.workdir / f"{name}-repo")
        self.nodes.append(node)
        process.start()
        make_demo_repo(node.repo)
        project = process.api.post(
            "/projects", json={"name": f"{name}-project", "git_repo_path": str(node.repo)}
        )
        node.project_id = project["id"]
        if wait:
            node.node_id = process.wait_connected(self.ready_timeout)
        if link:
            self.link(node, wait=wait)
        elif wait:
            self.wait_online(node)
        return node

    def link(self, node: ClusterNode, *, wait: bool = True) -> None:
        """Link the node's local project to the swarm project; ``wait`` until the hive has it."""
        node.api.post(
            f"/projects/{node.project_id}/link", json={"swarm_project_id": self.swarm_project_id}
        )
        node.linked = True
        if wait:
            self.wait_online(node)

    def wait_online(self, node: ClusterNode) -> None:
        """Until the hive lists the node online and, when linked, linking the swarm project."""
        if not node.node_id:
            node.node_id = node.process.wait_connected(self.ready_timeout)

        def ready() -> bool:
            row = self.api.get(f"/nodes/{node.node_id}")
            if row["status"] != "online":
                return False
            if not node.linked:
                return True
            links = self.api.get(f"/nodes/{node.node_id}/projects/linked")
            return any(link["swarm_project_id"] == self.swarm_project_id for link in links)

        wait_until(
            ready,
            timeout=self.ready_timeout,
            what=f"the hive to list {node.name} online and linked",
            logs=[self.hive, node.process],
        )

    def node(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == name)

    # -- hive helpers --

    def hive_tasks(self) -> list[dict[str, Any]]:
        """The swarm project's live tasks on the hive."""
        tasks: list[dict[str, Any]] = self.api.get(
            "/tasks", params={"project_id": self.swarm_project_id}
        )
        return tasks

    def dispatch(self, node: ClusterNode, title: str, script: str) -> dict[str, Any]:
        """Create a hive task with ``start_attempt`` that runs ``script`` (SCRIPT executor) on
        ``node``; check the hive assigned it there; the answer (``task`` and ``assignment``)."""
        created: dict[str, Any] = self.api.post(
            "/tasks",
            json={
                "project_id": self.swarm_project_id,
                "title": title,
                "description": script,
                "executor": "SCRIPT",
                "start_attempt": True,
                "node_id": node.node_id,
            },
        )
        assert created["assignment"] is not None, created
        assert created["assignment"]["node_id"] == node.node_id, created
        return created

    def activity(self, after: int = 0) -> list[dict[str, Any]]:
        """Every activity event of the swarm project after ``after`` (all pages)."""
        events: list[dict[str, Any]] = []
        while True:
            page = self.api.get(
                "/activity",
                params={"project_id": self.swarm_project_id, "after": after, "limit": 500},
            )
            events.extend(page["events"])
            if not page["events"]:
                return events
            after = page["next_after"]

    def wait(
        self, probe: Callable[[], T], *, what: str | Callable[[], str], timeout: float = 20.0
    ) -> T:
        """:func:`wait_until` with the logs of every process of the cluster."""
        return wait_until(probe, timeout=timeout, what=what, logs=self.processes)
