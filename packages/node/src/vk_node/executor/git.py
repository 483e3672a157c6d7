"""The git commands the executor runs, as ``git`` subprocesses with a timeout.

Every command gets a neutral environment (no prompts, C locale) and a committer identity when the
repository has none configured, so commits made for a run never fail on a bare machine.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from vk_node.errors import Conflict, Unprocessable

__all__ = ["GitError", "GitResult", "GitRunner"]

_IDENTITY = ("-c", "user.name=vk-node", "-c", "user.email=vk-node@localhost")


class GitError(Unprocessable):
    """A git command failed (422); the message names the command and git's own words."""


class GitResult(msgspec.Struct, frozen=True):
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "USER", "LOGNAME", "SSH_AUTH_SOCK")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"})
    return env


class GitRunner:
    """Runs git with one timeout (a setting)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    async def run(
        self,
        cwd: str | Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> GitResult:
        """Run ``git ARGS`` in ``cwd``; never raises for a non-zero exit (see :meth:`check`)."""
        try:
            proc = await asyncio.create_subprocess_exec(
                "git",
                *args,
                cwd=str(cwd),
                env={**_base_env(), **(env or {})},
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise GitError("git is not installed on this node") from None
        except NotADirectoryError:
            raise GitError(f"not a directory: {cwd}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), self.timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise GitError(
                f"git {args[0]} did not finish within {self.timeout_s:g} s in {cwd}"
            ) from None
        return GitResult(
            code=proc.returncode or 0,
            out=out.decode("utf-8", "replace").strip(),
            err=err.decode("utf-8", "replace").strip(),
        )

    async def check(self, cwd: str | Path, *args: str, stdin: bytes | None = None) -> str:
        """Run git and return its stdout; :class:`GitError` on a non-zero exit."""
        result = await self.run(cwd, *args, stdin=stdin)
        if not result.ok:
            detail = result.err or result.out or f"exit code {result.code}"
            raise GitError(f"git {' '.join(args[:2])} failed: {detail}")
        return result.out

    async def identity(self, cwd: str | Path) -> tuple[str, ...]:
        """``-c user.name=… -c user.email=…`` when the repository has no identity configured."""
        result = await self.run(cwd, "config", "user.email")
        return () if result.ok and result.out else _IDENTITY

    # --- queries ---------------------------------------------------------------------------

    async def head(self, cwd: str | Path) -> str | None:
        result = await self.run(cwd, "rev-parse", "--verify", "--quiet", "HEAD")
        return result.out if result.ok and result.out else None

    async def rev(self, cwd: str | Path, ref: str) -> str | None:
        result = await self.run(cwd, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return result.out if result.ok and result.out else None

    async def is_dirty(self, cwd: str | Path) -> bool:
        return bool(await self.check(cwd, "status", "--porcelain", "--untracked-files=all"))

    async def is_ancestor(self, cwd: str | Path, ancestor: str, descendant: str) -> bool:
        result = await self.run(cwd, "merge-base", "--is-ancestor", ancestor, descendant)
        if result.code not in (0, 1):
            raise GitError(f"git merge-base failed: {result.err}")
        return result.code == 0

    # --- worktree changes ------------------------------------------------------------------

    async def commit_all(self, cwd: str | Path, message: str) -> str | None:
        """Stage everything and commit; the new commit, or ``None`` when nothing changed."""
        if not await self.is_dirty(cwd):
            return None
        await self.check(cwd, "add", "--all")
        ident = await self.identity(cwd)
        await self.check(
            cwd, *ident, "commit", "--quiet", "--no-verify", "-F", "-", stdin=message.encode()
        )
        return await self.head(cwd)

    async def reset_hard(self, cwd: str | Path, commit: str, *, force_when_dirty: bool) -> None:
        """Move the worktree to ``commit`` (discarding changes only with ``force_when_dirty``)."""
        if not force_when_dirty and await self.is_dirty(cwd):
            raise Conflict(
                "the worktree has uncommitted changes; retry with force_when_dirty to discard them"
            )
        await self.check(cwd, "reset", "--hard", "--quiet", commit)
        await self.check(cwd, "clean", "-fdq")
