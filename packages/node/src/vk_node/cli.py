"""Command line of the node daemon: ``vk-node``.

Exit codes: 0 success, 1 a runtime failure (store unreadable, port in use, the node not reachable
by ``tasks``, an API error, a failed ``doctor`` check), 2 bad usage or invalid settings (one line
on stderr naming the setting), 130 interrupted. ``tasks`` and ``open`` live in
:mod:`vk_node.cli_tasks`, ``mcp`` in :mod:`vk_node.mcp_server`, ``doctor`` in
:mod:`vk_node.doctor`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import structlog

from vk_node import __version__, cli_tasks
from vk_node.settings import LoadedSettings, NodeSettings, load_settings
from vk_shared.settings import cli as shared_cli

__all__ = ["build_parser", "main"]


class CliError(Exception):
    """A runtime failure reported as one line on stderr with exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    common = shared_cli.common_options(
        ("--data-dir", {"metavar": "DIR", "help": "holds db.sqlite, worktrees/"})
    )
    parser, sub = shared_cli.command_parser(
        "vk-node",
        "vk-swarm node: runs coding agents in git worktrees, keeps a local SQLite store and "
        "syncs with a hive when one is configured.",
        __version__,
        common,
    )

    serve = shared_cli.add_serve_command(
        sub, common, help="run the node daemon (migrates the store first)"
    )
    serve.add_argument("--name", default=argparse.SUPPRESS, help="node name shown on the hive")
    serve.add_argument("--hive-url", default=argparse.SUPPRESS, help="hive URL (unset: standalone)")
    serve.add_argument(
        "--executors", default=argparse.SUPPRESS, help="comma list of enabled executors"
    )
    serve.add_argument("--max-concurrent", default=argparse.SUPPRESS)

    sub.add_parser("migrate", parents=[common], help="apply pending SQLite migrations and exit")
    status = sub.add_parser(
        "status", parents=[common], help="show the store, outbox backlog and hive link state"
    )
    status.add_argument("--json", action="store_true", help="print JSON")

    backup = sub.add_parser(
        "backup", parents=[common], help="copy the store to PATH (the node may be running)"
    )
    backup.add_argument("path", metavar="PATH", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="overwrite an existing file")
    backup.add_argument("--json", action="store_true", help="print JSON")
    restore = sub.add_parser(
        "restore",
        parents=[common],
        help="put the backup at PATH in place as the store (the node must be stopped)",
    )
    restore.add_argument("path", metavar="PATH", help="a file written by `vk-node backup`")
    restore.add_argument("--json", action="store_true", help="print JSON")

    shared_cli.add_config_command(sub, common)
    cli_tasks.add_commands(sub, common)
    mcp = sub.add_parser(
        "mcp", parents=[common], help="serve the node's tasks as MCP tools over stdio"
    )
    mcp.add_argument("--host", default=argparse.SUPPRESS, help="the node's address")
    mcp.add_argument("--port", default=argparse.SUPPRESS, help="the node's TCP port")
    doctor = sub.add_parser(
        "doctor", parents=[common], help="check git, gh, agent CLIs, the data dir and the hive"
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    return parser


_FLAG_SETTINGS = (
    "data_dir",
    "log_format",
    "host",
    "port",
    "name",
    "hive_url",
    "executors",
    "max_concurrent",
)


def _load(args: argparse.Namespace) -> LoadedSettings:
    return load_settings(
        config_file=getattr(args, "config", None),
        overrides=shared_cli.flag_overrides(args, _FLAG_SETTINGS),
    )


# --- migrate / status ----------------------------------------------------------------------------


def _migrate(loaded: LoadedSettings) -> None:
    from vk_node.services.status import migrate_store

    try:
        applied = asyncio.run(migrate_store(loaded.settings))
    except OSError as exc:
        raise CliError(f"cannot open the store at {loaded.settings.db_path}: {exc}") from None
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print(f"store is up to date ({loaded.settings.db_path})")


def _status(loaded: LoadedSettings, as_json: bool) -> None:
    from vk_node.services.status import collect_status, render_status

    try:
        report = asyncio.run(collect_status(loaded.settings))
    except OSError as exc:
        raise CliError(f"cannot read the store at {loaded.settings.db_path}: {exc}") from None
    if as_json:
        print(json.dumps(msgspec.to_builtins(report), indent=2))
    else:
        print(render_status(report))


# --- serve ---------------------------------------------------------------------------------------


def _graceful_server(settings: NodeSettings) -> Any:
    """A uvicorn server where SIGTERM/SIGINT mean "shut down gracefully and exit 0".

    uvicorn stops accepting, waits for in-flight requests (up to ``shutdown_timeout_s``) and runs
    the lifespan shutdown (which checkpoints the WAL and closes the store). Unlike plain
    ``uvicorn.run`` it does not re-raise the signal afterwards, so the exit status is 0. A second
    SIGINT forces the exit.
    """
    import uvicorn

    from vk_node.app import create_app

    class GracefulServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            signals = (signal.SIGTERM, signal.SIGINT)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s)),
        # uvloop and httptools (vk-node dependencies where they exist): the REST write path waits
        # on the store's writer thread, and uvloop's thread-to-loop wake-ups make it ~1.6x faster
        # than asyncio's; httptools parses and writes HTTP/1.1 in C — a PATCH of a task costs
        # ~40% less server CPU than with the pure-Python h11, which remains the fallback where
        # httptools cannot be installed.
        loop="auto",
        http="auto",
    )
    return GracefulServer(config)


def _serve(loaded: LoadedSettings) -> None:
    from vk_node.logging import configure_logging
    from vk_node.services.status import migrate_store

    settings = loaded.settings
    configure_logging(settings.log_format, settings.log_level)
    log = structlog.get_logger("vk_node.cli")
    # The data dir's lock, held until exit: one node per data dir, and no restore under it.
    with _serve_lock(settings):
        try:
            applied = asyncio.run(migrate_store(settings))
        except OSError as exc:
            raise CliError(f"cannot open the store at {settings.db_path}: {exc}") from None
        log.info("node.migrated", applied=applied, db=str(settings.db_path))
        server = _graceful_server(settings)
        server.run()
    if not server.started:
        raise CliError(f"the server did not start on {settings.host}:{settings.port}")
    log.info("node.exited")


@contextlib.contextmanager
def _serve_lock(settings: NodeSettings) -> Iterator[None]:
    from vk_node.services.backup import NodeRunning, serve_lock

    try:
        with serve_lock(settings.data_path):
            yield
    except NodeRunning as exc:
        raise CliError(str(exc)) from None


def _load_for(args: argparse.Namespace) -> LoadedSettings:
    loaded = _load(args)
    if args.command == "serve":
        from vk_node.api.guard import require_token_when_exposed

        require_token_when_exposed(loaded.settings)
    return loaded


def _command(args: argparse.Namespace, loaded: LoadedSettings) -> None:
    if args.command == "serve":
        _serve(loaded)
    elif args.command == "migrate":
        _migrate(loaded)
    elif args.command == "tasks":
        cli_tasks.run_tasks(args, loaded.settings)
    elif args.command == "open":
        cli_tasks.run_open(loaded.settings)
    elif args.command == "mcp":
        from vk_node.mcp_server import run_mcp

        run_mcp(loaded.settings)
    elif args.command == "doctor":
        from vk_node.doctor import run_doctor

        failed = run_doctor(loaded.settings, as_json=args.json)
        if failed:
            raise CliError(f"{failed} check{'s' if failed > 1 else ''} failed")
    elif args.command in ("backup", "restore"):
        from vk_node import cli_backup

        cli_backup.run(args, loaded.settings)
    else:
        _status(loaded, args.json)


def _failure(exc: Exception) -> str | None:
    from vk_node.services.backup import RestoreError

    if isinstance(exc, CliError | cli_tasks.ClientError | RestoreError):
        return str(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    return shared_cli.run_main(
        "vk-node", build_parser(), argv, load=_load_for, run=_command, failure=_failure
    )


if __name__ == "__main__":
    sys.exit(main())
