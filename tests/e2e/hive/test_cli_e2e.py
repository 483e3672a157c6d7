"""The ``vk-hive`` command as a real process: serve, migrate, admin bootstrap, create-api-key,
login-link."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

VK_HIVE = str(Path(sys.executable).with_name("vk-hive"))
SECRET = "e2e-jwt-secret-" + "z" * 40


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VK_HIVE_")}
    env.update({"VK_HIVE_DATABASE_URL": url, "VK_HIVE_JWT_SECRET": SECRET, **extra})
    return env


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        VK_HIVE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A ``vk-hive serve`` process, a client of it and (once stopped) its log lines."""

    process: asyncio.subprocess.Process
    client: httpx.AsyncClient
    logs: str = ""


@contextlib.asynccontextmanager
async def _serving(database_url: str, env: dict[str, str], port: int) -> AsyncIterator[Served]:
    """``vk-hive serve --database-url URL`` (the option after the subcommand) until healthy;
    stopped with SIGTERM on exit."""
    serve_env = {k: v for k, v in env.items() if k != "VK_HIVE_DATABASE_URL"}
    serve = await asyncio.create_subprocess_exec(
        VK_HIVE,
        "serve",
        "--database-url",
        database_url,
        env=serve_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    served: Served | None = None
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            for _ in range(300):
                try:
                    if (await client.get("/v1/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert serve.returncode is None, "vk-hive serve exited early"
                await asyncio.sleep(0.05)
            else:
                pytest.fail("vk-hive serve did not become healthy")
            served = Served(serve, client)
            yield served
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err_bytes = await asyncio.wait_for(serve.communicate(), 15)
        if served is not None:
            served.logs = err_bytes.decode()


@pytest.mark.asyncio
async def test_serve_bootstrap_and_me(pg_database: str) -> None:
    """``vk-hive serve --database-url URL`` (the option after the subcommand) on a fresh
    database, then ``admin bootstrap --json`` prints a token that works for GET /v1/me,
    ``create-api-key`` prints a secret once, and neither secret is logged."""
    port = _free_port()
    env = _env(pg_database, VK_HIVE_PORT=str(port), VK_HIVE_LOG_FORMAT="json")
    async with _serving(pg_database, env, port) as served:
        client = served.client
        code, out, err = await _run(
            "admin", "bootstrap", "--email", "a@example.com", "--json", env=env
        )
        assert code == 0, err
        boot = json.loads(out)
        assert set(boot) == {"user_id", "organization_id", "token"}
        headers = {"Authorization": f"Bearer {boot['token']}"}
        me = await client.get("/v1/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["user"]["email"] == "a@example.com"
        assert me.json()["organizations"][0]["id"] == boot["organization_id"]
        assert me.json()["organizations"][0]["user_role"] == "admin"

        code, out, err = await _run(
            "admin", "bootstrap", "--email", "A@example.com", "--json", env=env
        )
        again = json.loads(out)
        assert (again["user_id"], again["organization_id"]) == (
            boot["user_id"],
            boot["organization_id"],
        )

        code, out, err = await _run(
            "admin",
            "create-api-key",
            "--organization-id",
            boot["organization_id"],
            "--name",
            "laptop",
            "--json",
            env=env,
        )
        assert code == 0, err
        key = json.loads(out)
        assert set(key) == {"id", "key_prefix", "secret"}
        assert len(key["secret"]) == 64
        keys = await client.get(
            "/v1/nodes/api-keys",
            params={"organization_id": boot["organization_id"]},
            headers=headers,
        )
        assert [k["id"] for k in keys.json()] == [key["id"]]
        assert key["secret"] not in keys.text
    logs = served.logs
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
    assert served.process.returncode in (0, -signal.SIGTERM), logs
    assert "hive.stopped" in logs
    assert "hive.started" in logs
    assert boot["token"] not in logs
    assert key["secret"] not in logs


@pytest.mark.asyncio
async def test_login_link_signs_a_browser_in_once(pg_database: str) -> None:
    """``admin login-link --email E`` prints a URL on the hive (``--json``: the URL and its
    expiry, 15 minutes out); opening it sets the session cookie and ``/`` lists the user's
    project; the link works once; an unknown email exits 1 with one line; with a public base URL
    the link is on it. The link's token is not logged."""
    port = _free_port()
    env = _env(pg_database, VK_HIVE_PORT=str(port), VK_HIVE_LOG_FORMAT="json")
    async with _serving(pg_database, env, port) as served:
        code, out, err = await _run(
            "admin", "bootstrap", "--email", "b@example.com", "--json", env=env
        )
        assert code == 0, err
        boot = json.loads(out)
        r = await served.client.post(
            "/v1/swarm/projects",
            json={"organization_id": boot["organization_id"], "name": "e2e-project"},
            headers={"Authorization": f"Bearer {boot['token']}"},
        )
        assert r.status_code == 201, r.text

        code, out, err = await _run("admin", "login-link", "--email", "B@example.com", env=env)
        assert code == 0, err
        url = out.strip()
        assert url.startswith(f"http://127.0.0.1:{port}/login/"), out
        async with httpx.AsyncClient(timeout=5) as browser:
            r = await browser.get(url)
            assert r.status_code == 303, r.text
            assert "httponly" in r.headers["set-cookie"].lower()
            home = await browser.get(f"http://127.0.0.1:{port}/")
            assert home.status_code == 200, home.text
            assert "e2e-project" in home.text
        async with httpx.AsyncClient(timeout=5) as second:
            assert (await second.get(url)).status_code == 400

        code, out, err = await _run(
            "admin", "login-link", "--email", "b@example.com", "--json", env=env
        )
        assert code == 0, err
        link = json.loads(out)
        assert set(link) == {"url", "expires_at"}
        left = dt.datetime.fromisoformat(link["expires_at"]) - dt.datetime.now(dt.UTC)
        assert dt.timedelta(minutes=14) < left <= dt.timedelta(minutes=15, seconds=5)

        code, out, err = await _run("admin", "login-link", "--email", "nobody@example.com", env=env)
        assert (code, out) == (1, "")
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("vk-hive: error:")
        assert "nobody@example.com" in err

        public = _env(pg_database, VK_HIVE_PUBLIC_BASE_URL="https://hive.example.com/")
        code, out, err = await _run("admin", "login-link", "--email", "b@example.com", env=public)
        assert code == 0, err
        assert out.startswith("https://hive.example.com/login/"), out
    assert url.rsplit("/", 1)[1] not in served.logs


@pytest.mark.asyncio
async def test_migrate_is_idempotent_and_reports(pg_database: str) -> None:
    """``vk-hive migrate`` lists what it applied, and a second run applies nothing."""
    code, out, err = await _run("migrate", env=_env(pg_database))
    assert code == 0, err
    assert "applied 0001_" in out
    code, out, _ = await _run("migrate", env=_env(pg_database))
    assert code == 0
    assert out.strip() == "database is up to date"


@pytest.mark.asyncio
async def test_errors_are_one_line_without_traceback(pg_database: str) -> None:
    """An unreachable database and an unknown organization each exit 1, a bad setting (given
    after the subcommand or in the environment) exits 2 naming its variable — each with one line
    on stderr and no traceback."""
    port = _free_port()
    down = f"postgresql://postgres@127.0.0.1:{port}/nope"
    cases = [
        (("migrate",), _env(down)),
        (("serve",), _env(down)),
        (("admin", "bootstrap", "--email", "a@example.com"), _env(down)),
        (
            (
                "admin",
                "create-api-key",
                "--organization-id",
                "7c7b4a1e-0000-4000-8000-000000000000",
                "--name",
                "x",
            ),
            _env(pg_database),
        ),
        (
            ("admin", "create-api-key", "--organization-id", "nope", "--name", "x"),
            _env(pg_database),
        ),
    ]
    for args, env in cases:
        code, out, err = await _run(*args, env=env)
        assert code == 1, (args, out, err)
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("vk-hive: error:")
    settings_cases = [
        (("migrate",), _env(pg_database, VK_HIVE_PORT="many"), "VK_HIVE_PORT"),
        (("serve", "--port", "many"), _env(pg_database), "--port"),
    ]
    for args, env, named in settings_cases:
        code, out, err = await _run(*args, env=env)
        assert code == 2, (args, out, err)
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("vk-hive: invalid settings:")
        assert named in err


@pytest.mark.asyncio
async def test_help_and_version() -> None:
    """``--help`` lists the commands and ``--version`` prints the version."""
    code, out, _ = await _run("--help", env=dict(os.environ))
    assert code == 0
    for word in ("serve", "migrate", "admin"):
        assert word in out
    code, out, _ = await _run("--version", env=dict(os.environ))
    assert out.startswith("vk-hive ")
