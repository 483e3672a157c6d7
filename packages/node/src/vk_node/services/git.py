"""Checks against real git repositories (the node never trusts a path it was given)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from vk_node.errors import Unprocessable

__all__ = ["branch_exists", "validate_repo_path"]

_GIT_TIMEOUT_S = 10.0


async def _git(cwd: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise Unprocessable("git is not installed on this node") from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), _GIT_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise Unprocessable(f"git did not answer within {_GIT_TIMEOUT_S:.0f} s in {cwd}") from None
    return proc.returncode or 0, out.decode("utf-8", "replace").strip()


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


async def validate_repo_path(raw: str) -> str:
    """The normalized absolute path of the root of an existing git work tree.

    Raises :class:`Unprocessable` (422) otherwise: "must not be empty", "must be absolute", or
    else one message whatever the path is (missing, a file, a plain directory, inside a
    repository), so the answer does not reveal what exists on the machine.
    """
    path = await asyncio.to_thread(_existing_dir, raw)
    code, top = await _git(path, "rev-parse", "--show-toplevel")
    if code != 0 or not top:
        raise _not_a_repository_root(raw)
    root = await asyncio.to_thread(lambda: Path(top).resolve())
    if root != path:
        raise _not_a_repository_root(raw)
    return str(root)


async def branch_exists(repo: str, branch: str) -> bool:
    """Whether ``branch`` names a local branch of ``repo`` (an unborn HEAD branch counts)."""
    code, _ = await _git(Path(repo), "check-ref-format", "--branch", branch)
    if code != 0:
        return False
    code, _ = await _git(Path(repo), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
    if code == 0:
        return True
    code, head = await _git(Path(repo), "symbolic-ref", "--short", "HEAD")
    return code == 0 and head == branch
