"""Command line of the hive server: ``vk-hive``.

Exit codes: 0 success, 1 a runtime failure (database unreachable, port in use), 2 bad usage or
invalid settings (one line on stderr naming the setting's variable). The settings options
(``--config``, ``--database-url``, ``--log-format``) may stand before or after the subcommand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import structlog

from vk_hive import __version__
from vk_hive.settings import SPEC, HiveSettings, LoadedSettings
from vk_shared.settings import cli as shared_cli

__all__ = ["build_parser", "main"]


class CliError(Exception):
    """A failure reported as one line on stderr with exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    common = shared_cli.common_options(
        ("--database-url", {"metavar": "URL", "help": "PostgreSQL URL"})
    )
    parser, sub = shared_cli.command_parser(
        "vk-hive",
        "vk-swarm hive: organizations, auth, node registry, shared tasks and leases.",
        __version__,
        common,
    )

    serve = shared_cli.add_serve_command(
        sub, common, help="run the hive server (migrates the database first)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="serve with N worker processes sharing the port (default 1: this process)",
    )
    sub.add_parser("migrate", parents=[common], help="apply pending PostgreSQL migrations and exit")

    admin = sub.add_parser("admin", parents=[common], help="administrative commands")
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="SUBCOMMAND")
    boot = admin_sub.add_parser(
        "bootstrap",
        parents=[common],
        help="create or find a user with a personal organization; print a token",
    )
    boot.add_argument("--email", required=True)
    boot.add_argument("--name", help="username of a new user")
    boot.add_argument("--json", action="store_true", help="print JSON")
    key = admin_sub.add_parser(
        "create-api-key", parents=[common], help="create a node API key for an organization"
    )
    key.add_argument("--organization-id", required=True)
    key.add_argument("--name", required=True)
    key.add_argument("--json", action="store_true", help="print JSON")
    link = admin_sub.add_parser(
        "login-link",
        parents=[common],
        help="print a single-use browser sign-in link for an existing user (valid 15 minutes)",
    )
    link.add_argument("--email", required=True)
    link.add_argument("--json", action="store_true", help="print JSON")

    export = sub.add_parser(
        "export", parents=[common], help="write one organization as JSON Lines (stdout or --out)"
    )
    export.add_argument("--organization-id", required=True)
    export.add_argument("--out", metavar="FILE", help="the file to write (default: stdout)")
    imp = sub.add_parser(
        "import",
        parents=[common],
        help="read an organization written by `vk-hive export` into this database",
    )
    imp.add_argument("file", metavar="FILE", help="a JSON Lines file from `vk-hive export`")
    imp.add_argument("--json", action="store_true", help="print JSON")

    shared_cli.add_config_command(sub, common)
    return parser


_FLAG_SETTINGS = ("database_url", "log_format", "host", "port", "workers")


def _load(args: argparse.Namespace) -> LoadedSettings:
    return SPEC.load(
        config_file=getattr(args, "config", None),
        overrides=shared_cli.flag_overrides(args, _FLAG_SETTINGS),
    )


async def _connect(settings: HiveSettings) -> asyncpg.Connection:
    from vk_hive.store.db import init_connection

    try:
        conn = await asyncpg.connect(settings.database_url, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise CliError(f"cannot connect to the database: {exc}") from None
    await init_connection(conn)
    return conn


async def _migrate(settings: HiveSettings) -> list[str]:
    from vk_hive.store.migrate import migrate

    conn = await _connect(settings)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data))
    else:
        for key, value in data.items():
            print(f"{key}: {value}")


async def _bootstrap(settings: HiveSettings, email: str, name: str | None, as_json: bool) -> None:
    from vk_hive.auth import repository as auth_repo
    from vk_hive.auth.pat import issue_pat
    from vk_hive.tenancy.repository import ensure_personal_organization

    if "@" not in email or len(email) > 320 or "\x00" in email:
        raise CliError(f"not an email address: {email!r}")
    await _migrate(settings)
    conn = await _connect(settings)
    try:
        async with conn.transaction():
            user = await auth_repo.upsert_user(conn, email=email, username=name)
            display = user.username or email.partition("@")[0] or str(user.id)
            org = await ensure_personal_organization(conn, user.id, display)
            pat = await issue_pat(conn, user.id, "bootstrap")
    finally:
        await conn.close()
    _print({"user_id": str(user.id), "organization_id": str(org.id), "token": pat.token}, as_json)


async def _create_api_key(settings: HiveSettings, org: str, name: str, as_json: bool) -> None:
    from vk_hive.auth.api_keys import create_api_key
    from vk_hive.tenancy.repository import get_organization

    try:
        org_id = uuid.UUID(org)
    except ValueError:
        raise CliError(f"not an organization id: {org!r}") from None
    if not name.strip() or len(name) > 200 or "\x00" in name:
        raise CliError("the key name must be 1-200 characters")
    conn = await _connect(settings)
    try:
        async with conn.transaction():
            if await get_organization(conn, org_id) is None:
                raise CliError(f"organization {org_id} does not exist")
            created = await create_api_key(conn, org_id, name, created_by=None)
    finally:
        await conn.close()
    _print(
        {"id": str(created.id), "key_prefix": created.key_prefix, "secret": created.secret}, as_json
    )


async def _login_link(settings: HiveSettings, email: str, as_json: bool) -> None:
    from vk_hive.auth import repository as auth_repo
    from vk_hive.auth.browser import issue_login_link

    conn = await _connect(settings)
    try:
        async with conn.transaction():
            user = await auth_repo.find_user_by_email(conn, email)
            if user is None:
                raise CliError(f"no user with the email {email!r} (see `vk-hive admin bootstrap`)")
            link = await issue_login_link(conn, user.id)
    finally:
        await conn.close()
    url = f"{settings.base_url}/login/{link.token}"
    if as_json:
        print(json.dumps({"url": url, "expires_at": link.expires_at.isoformat()}))
    else:
        print(url)


def _serve(settings: HiveSettings) -> None:
    import uvicorn

    from vk_hive.app import create_app
    from vk_hive.logging import configure_logging
    from vk_hive.server import uvicorn_config

    configure_logging(settings.log_format, settings.log_level)
    applied = asyncio.run(_migrate(settings))
    if applied:
        structlog.get_logger("vk_hive.cli").info("hive.migrated", applied=applied)
    if settings.workers > 1:
        _serve_workers(settings)
        return
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise CliError(f"the server did not start on {settings.host}:{settings.port} (see above)")


def _serve_workers(settings: HiveSettings) -> None:
    import socket

    import uvicorn

    from vk_hive.app import create_app
    from vk_hive.server import uvicorn_config
    from vk_hive.workers import serve_workers

    try:
        sock = uvicorn_config(create_app(settings), settings).bind_socket()
    except SystemExit:  # uvicorn reports a port in use, then exits
        raise CliError(f"cannot listen on {settings.host}:{settings.port} (see above)") from None

    def run(shared: socket.socket) -> None:
        server = uvicorn.Server(uvicorn_config(create_app(settings), settings))
        server.run(sockets=[shared])

    serve_workers(settings.workers, sock, run)


def _run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async def runner() -> None:
        await coro_fn()

    asyncio.run(runner())


def _command(args: argparse.Namespace, loaded: LoadedSettings) -> None:
    settings = loaded.settings
    if args.command == "serve":
        _serve(settings)
    elif args.command == "migrate":
        applied = asyncio.run(_migrate(settings))
        print("\n".join(f"applied {name}" for name in applied) or "database is up to date")
    elif args.command in ("export", "import"):
        from vk_hive import cli_transfer

        _run(lambda: cli_transfer.run(args, settings, _connect))
    elif args.admin_command == "bootstrap":
        _run(lambda: _bootstrap(settings, args.email, args.name, args.json))
    elif args.admin_command == "login-link":
        _run(lambda: _login_link(settings, args.email, args.json))
    else:
        _run(lambda: _create_api_key(settings, args.organization_id, args.name, args.json))


def _failure(exc: Exception) -> str | None:
    from vk_hive.store.transfer import TransferError

    if isinstance(exc, CliError | ValueError | TransferError):
        return str(exc)
    if isinstance(exc, asyncpg.UndefinedTableError):
        return f"{exc} (run `vk-hive migrate` first)"
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
        return f"database error: {exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    return shared_cli.run_main(
        "vk-hive", build_parser(), argv, load=_load, run=_command, failure=_failure
    )


if __name__ == "__main__":
    sys.exit(main())
