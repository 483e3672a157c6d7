"""What the ``vk-node`` and ``vk-hive`` command lines share: the options every subcommand accepts
(before or after its name), the flags as overrides, ``config show``, and the exit codes.

Exit codes (both commands): 0 success; 1 a runtime failure, one line ``PROG: error: ...``;
2 bad usage or invalid settings, one line ``PROG: invalid settings: ...`` naming the setting's
variable, before the command does anything; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from vk_shared.logkit import is_secret_key, mask_secret, mask_url_password
from vk_shared.settings.spec import Loaded, SettingsError

__all__ = [
    "RUNTIME_FAILURE",
    "SETTINGS_INVALID",
    "add_config_command",
    "add_serve_command",
    "command_parser",
    "common_options",
    "config_show",
    "flag_overrides",
    "run_main",
    "shown_settings",
]

RUNTIME_FAILURE = 1
SETTINGS_INVALID = 2


def common_options(*extra: tuple[str, dict[str, Any]]) -> argparse.ArgumentParser:
    """A parent parser with ``--config``, ``--log-format`` and ``extra`` (flag, ``add_argument``
    keywords); give it to the top-level parser and to every subcommand, so the options may
    stand before or after the subcommand name. Unset options leave no attribute behind, so one
    given before the subcommand is not reset after it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML settings file"
    )
    common.add_argument("--log-format", choices=["json", "console"], default=argparse.SUPPRESS)
    for flag, options in extra:
        common.add_argument(flag, default=argparse.SUPPRESS, **options)
    return common


def command_parser(
    prog: str, description: str, version: str, common: argparse.ArgumentParser
) -> tuple[argparse.ArgumentParser, Any]:
    """The top-level parser (``--version``, the common options) and its subcommands
    (``command``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description, parents=[common])
    parser.add_argument("--version", action="version", version=f"{prog} {version}")
    return parser, parser.add_subparsers(dest="command", metavar="COMMAND")


def add_serve_command(sub: Any, common: argparse.ArgumentParser, help: str) -> Any:
    """``serve [--host H] [--port P]``; returns its parser for more flags."""
    serve = sub.add_parser("serve", parents=[common], help=help)
    serve.add_argument("--host", default=argparse.SUPPRESS, help="interface to listen on")
    serve.add_argument("--port", default=argparse.SUPPRESS, help="TCP port")
    return serve


def add_config_command(sub: Any, common: argparse.ArgumentParser) -> None:
    """``config show [--json]`` (``config_command``)."""
    config = sub.add_parser("config", parents=[common], help="inspect settings")
    config_sub = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    show = config_sub.add_parser(
        "show", parents=[common], help="print the effective settings and where each came from"
    )
    show.add_argument("--json", action="store_true", help="print JSON")


def flag_overrides(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The settings the command line sets (by setting name)."""
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def _masked(name: str, value: Any) -> Any:
    if is_secret_key(name):
        return mask_secret(value)
    if isinstance(value, str):
        return mask_url_password(value)
    if isinstance(value, dict):
        return {key: _masked(key, item) for key, item in value.items()}
    return value


def shown_settings(loaded: Loaded[Any]) -> dict[str, Any]:
    """The settings as plain data, secrets masked (and passwords inside URLs)."""
    values: dict[str, Any] = msgspec.to_builtins(loaded.settings)
    return {name: _masked(name, value) for name, value in values.items()}


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{name}."))
        else:
            out[prefix + name] = value
    return out


def config_show(loaded: Loaded[Any], *, as_json: bool) -> str:
    """``config show``: every effective setting and where its value came from, secrets masked;
    as JSON ``{"settings": ..., "sources": ...}`` for scripts (a nested section's sources are
    named ``section.name``)."""
    values = shown_settings(loaded)
    if as_json:
        return json.dumps({"settings": values, "sources": loaded.sources}, indent=2)
    flat = _flat(values)
    width = max(len(name) for name in flat)
    lines = []
    for name, value in flat.items():
        shown = ",".join(map(str, value)) if isinstance(value, list | tuple) else value
        lines.append(f"{name:<{width}} = {shown!s:<40} ({loaded.sources[name]})")
    return "\n".join(lines)


def run_main(
    prog: str,
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    *,
    load: Callable[[argparse.Namespace], Loaded[Any]],
    run: Callable[[argparse.Namespace, Loaded[Any]], None],
    failure: Callable[[Exception], str | None],
) -> int:
    """Parse ``argv``, load the settings (``load``; a :class:`SettingsError` exits 2), then run
    the command (``config show`` here, anything else by ``run``). ``failure`` turns a runtime
    exception into the line to print (exit 1), or ``None`` for one it does not expect."""
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if any(name.endswith("_command") and value is None for name, value in vars(args).items()):
        parser.parse_args([args.command, "--help"])  # a command group without its subcommand
    try:
        loaded = load(args)
    except SettingsError as exc:
        print(f"{prog}: invalid settings: {exc}", file=sys.stderr)
        return SETTINGS_INVALID
    try:
        if args.command == "config":
            print(config_show(loaded, as_json=args.json))
        else:
            run(args, loaded)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read stdout went away (``| head``): nothing to report, and nothing more to
        # flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return RUNTIME_FAILURE
    except Exception as exc:
        message = failure(exc)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return RUNTIME_FAILURE
    return 0
