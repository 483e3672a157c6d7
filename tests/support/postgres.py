"""Find a PostgreSQL server for tests and the demo (DESIGN.md §9).

The chain, first match wins:

1. ``VK_TEST_DATABASE_URL`` — a server URL given by the operator;
2. a server answering on 127.0.0.1:5432 (trust auth as ``postgres``);
3. testcontainers, when a Docker engine answers;
4. a throwaway cluster made with the local ``initdb``/``pg_ctl`` (run as the ``postgres`` user when
   we are root), removed again when the run ends.

Each run then creates uniquely named databases on that server and drops them at the end.
Nothing here is imported by the packages themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ENV_URL = "VK_TEST_DATABASE_URL"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432


class NoPostgresError(RuntimeError):
    """No source in the chain produced a usable server."""


@dataclass
class PostgresServer:
    """A reachable server: an admin URL (a maintenance database) and where it came from."""

    admin_url: str
    source: str
    _cleanup: list[object] = field(default_factory=list, repr=False)

    def url_for(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


async def _can_connect(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3.0)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    return True


def _probe(url: str) -> bool:
    return asyncio.run(_can_connect(url))


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def _pg_bindir() -> str | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return os.path.dirname(on_path)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return os.path.dirname(candidates[0]) if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((DEFAULT_HOST, 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """A PostgreSQL server this process owns: a cluster made with the local ``initdb`` in a
    temporary directory, run with ``pg_ctl`` (as the ``postgres`` user when we are root) on a
    port of its own.

    Unlike a shared server, it may be stopped, crashed and restarted on the same port and data
    directory (:meth:`stop`, :meth:`start`, :meth:`restart`; ``mode`` is ``pg_ctl -m``: ``fast``
    ends the sessions cleanly, ``immediate`` is a crash followed by recovery at the next start).
    :meth:`create` makes and starts it; :meth:`destroy` stops it and removes the directory.
    """

    def __init__(self) -> None:
        bindir = _pg_bindir()
        if bindir is None:
            raise NoPostgresError("initdb/pg_ctl not found (install the PostgreSQL server package)")
        self.bindir = bindir
        self.root = tempfile.mkdtemp(prefix="vk-pg-")
        self.datadir = os.path.join(self.root, "data")
        self.logfile = os.path.join(self.root, "server.log")
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        self.user = "postgres"

    @property
    def admin_url(self) -> str:
        return f"postgresql://{self.user}@{DEFAULT_HOST}:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        # The server inherits no pipe of ours (pg_ctl -l), so waiting for the command cannot hang.
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise NoPostgresError(f"{args[0]} failed: {result.stderr.decode(errors='replace')}")

    def _pg_ctl(self, action: str, *args: str) -> None:
        opts = f"-c listen_addresses={DEFAULT_HOST} -p {self.port} -k {self.root} -c fsync=off"
        common = ["-D", self.datadir, "-o", opts, "-l", self.logfile, "-w", "-t", "60"]
        self._run("pg_ctl", *common, *args, action)

    def create(self) -> str:
        """initdb, then start; the admin URL."""
        if self.as_postgres:
            shutil.chown(self.root, user="postgres")
        self._run("initdb", "-D", self.datadir, "-U", self.user, "-A", "trust", "--no-sync")
        self.start()
        return self.admin_url

    def start(self) -> None:
        """Start on the same port and data directory; returns once it accepts connections."""
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m mode``: every connection is lost; returns once it accepts
        connections again."""
        self._pg_ctl("restart", "-m", mode)

    def destroy(self) -> None:
        """Stop it if it runs (immediately) and remove its directory."""
        with contextlib.suppress(NoPostgresError, subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def local_postgres() -> Iterator[LocalPostgres]:
    """A :class:`LocalPostgres` created for the block and destroyed after it."""
    server = LocalPostgres()
    try:
        server.create()
        yield server
    finally:
        server.destroy()


def find_server(
    *,
    env: dict[str, str] | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_docker: bool = True,
) -> PostgresServer:
    """Walk the chain and return the first server that answers.

    ``host``/``port`` exist so a test can point step 2 at a closed port and watch the fallback.
    """
    env = os.environ if env is None else env
    tried: list[str] = []

    url = env.get(ENV_URL)
    if url:
        admin = url if urlsplit(url).path not in ("", "/") else _with_database(url, "postgres")
        if _probe(admin):
            return PostgresServer(admin, f"{ENV_URL} ({_redact(admin)})")
        raise NoPostgresError(f"{ENV_URL} is set but {_redact(admin)} does not answer")

    local = f"postgresql://postgres@{host}:{port}/postgres"
    if _port_open(host, port) and _probe(local):
        return PostgresServer(local, f"local server at {host}:{port}")
    tried.append(f"{host}:{port} (no answer)")

    if allow_docker and _docker_answers():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:15-alpine", driver=None)
        container.start()
        server = PostgresServer(
            _with_database(container.get_connection_url(), "postgres"), "testcontainers"
        )
        server._cleanup.append(container.stop)
        return server
    tried.append("testcontainers (no Docker engine)")

    try:
        cluster = LocalPostgres()
        admin = cluster.create()
    except (NoPostgresError, subprocess.SubprocessError, OSError) as exc:
        tried.append(f"initdb/pg_ctl ({exc})")
        raise NoPostgresError(
            "no PostgreSQL available; tried: " + "; ".join(tried) + f". Set {ENV_URL}."
        ) from exc
    server = PostgresServer(admin, f"throwaway initdb cluster on port {cluster.port}")
    server._cleanup.append(cluster.destroy)
    return server


def release_server(server: PostgresServer) -> None:
    for cleanup in reversed(server._cleanup):
        cleanup()  # type: ignore[operator]
    server._cleanup.clear()


@contextlib.contextmanager
def postgres_server(**kwargs: object) -> Iterator[PostgresServer]:
    server = find_server(**kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        release_server(server)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return url


class DatabaseFactory:
    """Creates uniquely named databases on one server and drops them all at the end."""

    def __init__(self, server: PostgresServer, prefix: str = "vk_test") -> None:
        self.server = server
        self.run_id = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self._created: list[str] = []
        self._counter = 0

    async def create(self, label: str = "db", *, template: str | None = None) -> str:
        """Create a database (a copy of database ``template`` if given); return its URL."""
        self._counter += 1
        safe = "".join(ch for ch in label.lower() if ch.isalnum() or ch == "_")[:20] or "db"
        name = f"{self.run_id}_{self._counter}_{safe}"
        conn = await asyncpg.connect(self.server.admin_url)
        try:
            if template is None:
                await conn.execute(f'CREATE DATABASE "{name}"')
            else:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await conn.close()
        self._created.append(name)
        return self.server.url_for(name)

    async def drop(self, url: str) -> None:
        """Drop the database at ``url`` (one this factory created)."""
        name = urlsplit(url).path.lstrip("/")
        self._created.remove(name)
        conn = await asyncpg.connect(self.server.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def drop_all(self) -> None:
        if not self._created:
            return
        conn = await asyncpg.connect(self.server.admin_url)
        try:
            for name in self._created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._created.clear()
