"""Checks of a project's repository path against real git (the node never trusts a path it was
given), through the node's one git runner (:mod:`vk_node.executor.git`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from vk_node.errors import Unprocessable
from vk_node.executor.git import GitRunner

__all__ = ["validate_repo_path"]

_PATH_CHECKS = GitRunner(timeout_s=10.0)
"""A path check answers an API request: it gets a short, fixed timeout."""


def _not_a_repository_root(raw: str) -> Unprocessable:
    # One answer for a missing path, a file, a plain directory and a directory inside a
    # repository: the API must not tell a caller which paths exist on this machine.
    return Unprocessable(f"git_repo_path is not the root of a git repository on this node: {raw!r}")


def _existing_dir(raw: str) -> Path:
    if not raw.strip():
        raise Unprocessable("git_repo_path must not be empty")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise Unprocessable(f"git_repo_path must be absolute: {raw!r}")
    try:
        is_dir = path.is_dir()
    except (OSError, ValueError):
        is_dir = False
    if not is_dir:
        raise _not_a_repository_root(raw)
    return path.resolve()


async def validate_repo_path(raw: str, git: GitRunner = _PATH_CHECKS) -> str:
    """The normalized absolute path of the root of an existing git work tree.

    Raises :class:`Unprocessable` (422) otherwise: "must not be empty", "must be absolute", or
    else one message whatever the path is (missing, a file, a plain directory, inside a
    repository), so the answer does not reveal what exists on the machine.
    """
    path = await asyncio.to_thread(_existing_dir, raw)
    found = await git.run(path, "rev-parse", "--show-toplevel")
    if not found.ok or not found.out:
        raise _not_a_repository_root(raw)
    root = await asyncio.to_thread(lambda: Path(found.out).resolve())
    if root != path:
        raise _not_a_repository_root(raw)
    return str(root)
