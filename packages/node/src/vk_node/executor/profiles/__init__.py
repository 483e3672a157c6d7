"""The registry of executor profiles.

``SCRIPT`` is built in; the coding-agent profiles live in :mod:`vk_node.executor.profiles.agents`,
whose package import registers them (the import is optional so the registry works without it).
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterable

from vk_node.errors import Unprocessable
from vk_node.executor.profiles.base import (
    CommandSpec,
    ExecutorProfile,
    NormalizedEntry,
    OutputParser,
)
from vk_node.executor.profiles.script import ScriptProfile

__all__ = [
    "AGENT_EXECUTORS",
    "CommandSpec",
    "ExecutorProfile",
    "NormalizedEntry",
    "OutputParser",
    "UnknownExecutor",
    "all_profiles",
    "available_executors",
    "get_profile",
    "register",
]


AGENT_EXECUTORS = frozenset(
    {"CLAUDE_CODE", "CODEX", "GEMINI", "AMP", "OPENCODE", "CURSOR_AGENT", "QWEN_CODE", "COPILOT"}
)
"""The coding agents of DESIGN.md §7 (their profiles live in ``profiles.agents``)."""


class UnknownExecutor(Unprocessable):
    """No profile of that name is registered (422)."""


_REGISTRY: dict[str, ExecutorProfile] = {}


def register(profile: ExecutorProfile) -> ExecutorProfile:
    """Add (or replace) a profile under its ``name``; returns it."""
    _REGISTRY[profile.name] = profile
    return profile


def get_profile(name: str) -> ExecutorProfile:
    """The profile called ``name``; :class:`UnknownExecutor` when none is registered."""
    _load_agents()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownExecutor(f"unknown executor {name!r} (known: {known})") from None


def all_profiles() -> list[ExecutorProfile]:
    """Every registered profile, by name."""
    _load_agents()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def available_executors(enabled: Iterable[str], path: str | None) -> list[str]:
    """Names this node can run: profiles whose CLI is on ``path``, plus built-in ones
    (``SCRIPT``) listed in ``enabled`` (the node's ``VK_NODE_EXECUTORS``)."""
    wanted = set(enabled)
    names: list[str] = []
    for profile in all_profiles():
        if profile.executable is None:
            if profile.name in wanted:
                names.append(profile.name)
        elif shutil.which(profile.executable, path=path) is not None and profile.is_available(path):
            names.append(profile.name)
    return names


_agents_loaded = False


def _load_agents() -> None:
    global _agents_loaded
    if _agents_loaded:
        return
    _agents_loaded = True
    try:
        importlib.import_module("vk_node.executor.profiles.agents")
    except ModuleNotFoundError as exc:
        if exc.name != "vk_node.executor.profiles.agents":
            raise


register(ScriptProfile())
