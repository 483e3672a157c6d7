"""What the ``vk-node`` and ``vk-hive`` command lines share about settings: the options every
subcommand accepts (before or after its name), the flags as overrides, and ``config show``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from vk_shared.logkit import is_secret_key, mask_secret, mask_url_password
from vk_shared.settings.spec import Loaded

__all__ = ["common_options", "config_show", "flag_overrides", "shown_settings"]


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
