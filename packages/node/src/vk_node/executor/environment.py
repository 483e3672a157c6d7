"""What a run sees: its controlled environment and its prompt (spec §3)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from vk_node.settings import NodeSettings
from vk_node.store.models import Task

__all__ = ["BASE_ENV", "run_environment", "task_prompt"]

BASE_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "TMPDIR",
    "TZ",
)
"""Variables of the node's own environment every run inherits."""

_NODE_PREFIXES = ("VK_NODE_", "VK_HIVE_")


def run_environment(
    settings: NodeSettings,
    variables: Mapping[str, str],
    extra: Mapping[str, str],
    *,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Base variables and the configured pass-through ones from the node's environment, then the
    task's variables, then the profile's own; never the node's settings or secrets."""
    environ = os.environ if source is None else source
    env: dict[str, str] = {}
    for name in (*BASE_ENV, *settings.env_passthrough):
        if name in environ and not name.startswith(_NODE_PREFIXES):
            env[name] = environ[name]
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    for name, value in variables.items():
        if name not in ("PATH", "HOME") and not name.startswith(_NODE_PREFIXES):
            env[name] = value
    for name, value in extra.items():
        if not name.startswith(_NODE_PREFIXES):
            env[name] = value
    return env


def task_prompt(task: Task) -> str:
    """Title, then a blank line and the description when it is not blank."""
    description = (task.description or "").strip()
    return f"{task.title}\n\n{description}" if description else task.title


def script_of(task: Task) -> str:
    """What ``SCRIPT`` runs: the description (the title when there is none)."""
    description = task.description or ""
    return description if description.strip() else task.title
