"""The node's one runner of git (and of the GitHub CLI, which opens pull requests): every such
command of the node — worktrees, commits, merges, pushes, checks of a project's path — goes
through :class:`GitRunner`.

Invariants:

- Every command has a timeout (``VK_NODE_GIT_TIMEOUT_S`` for git; longer for ``gh``, which talks
  to GitHub); one that does not finish is killed with everything it started (its own process
  group: hooks, credential helpers, ssh) and reported.
- Every command runs in a clean environment: a few variables of the node's own (``PATH``,
  ``HOME``, locale, ``SSH_AUTH_SOCK``, proxies) and nothing else — no ``GIT_DIR``,
  ``GIT_WORK_TREE``, ``GIT_INDEX_FILE`` or other ``GIT_*`` override of the user's, and none of
  the node's settings or secrets. git never prompts and speaks the C locale; ``gh`` gets its own
  ``GH_*`` variables and ``GITHUB_TOKEN``.
- Every failure is a :class:`GitError` (422) naming the command, with its exit status and its
  stderr; :meth:`GitRunner.run` returns non-zero exits to callers that decide themselves.
- Commits made for a run get a committer identity when the repository has none configured, so
  they never fail on a bare machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec

from vk_node.errors import Conflict, Unprocessable

__all__ = ["GH_TIMEOUT_S", "GitError", "GitResult", "GitRunner", "command_env"]

_IDENTITY = ("-c", "user.name=vk-node", "-c", "user.email=vk-node@localhost")

GH_TIMEOUT_S = 60.0
"""Timeout of one ``gh`` command (it talks to GitHub)."""

_KEEP = (
    "PATH",
    "HOME",
    "LANG",
    "TMPDIR",
    "USER",
    "LOGNAME",
    "SSH_AUTH_SOCK",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}
_GH_KEEP = ("GITHUB_TOKEN", "XDG_CONFIG_HOME")
_GH_ENV = {"GH_PROMPT_DISABLED": "1"}


class GitError(Unprocessable):
    """A git or ``gh`` command that failed, did not finish or could not start (422); the detail
    names the command and carries its own words."""

    def __init__(
        self,
        detail: str,
        *,
        command: Sequence[str] = (),
        exit_code: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(detail)
        self.command = tuple(command)
        self.exit_code = exit_code
        """The exit status; ``None`` when the command did not run to its end."""
        self.stderr = stderr


class GitResult(msgspec.Struct, frozen=True):
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def command_env(program: str, source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment ``program`` (``git`` or ``gh``) runs with, from the node's own
    (``source``, default ``os.environ``): see the module's invariants."""
    environ = os.environ if source is None else source
    env = {name: environ[name] for name in _KEEP if name in environ}
    if program == "gh":
        env.update((k, v) for k, v in environ.items() if k.startswith("GH_") or k in _GH_KEEP)
        env.update(_GH_ENV)
    else:
        env.update(_GIT_ENV)
    return env


class GitRunner:
    """Runs git (and ``gh``) with one timeout (a setting) in a clean environment."""

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
        return await self._exec(("git", *args), cwd, command_env("git"), env, stdin, self.timeout_s)

    async def check(
        self,
        cwd: str | Path,
        *args: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Run git and return its stdout; :class:`GitError` on a non-zero exit."""
        return self._checked(("git", *args), await self.run(cwd, *args, env=env, stdin=stdin))

    async def gh(self, cwd: str | Path, program: str, *args: str, check: bool = False) -> GitResult:
        """Run the GitHub CLI (``program``, its path) in ``cwd``; with ``check`` a non-zero exit
        is a :class:`GitError`."""
        argv = (program, *args)
        result = await self._exec(argv, cwd, command_env("gh"), None, None, GH_TIMEOUT_S)
        if check:
            self._checked(argv, result)
        return result

    @staticmethod
    def _checked(argv: Sequence[str], result: GitResult) -> str:
        if not result.ok:
            detail = result.err or result.out or f"exit code {result.code}"
            name = Path(argv[0]).name
            raise GitError(
                f"{name} {' '.join(argv[1:3])} failed: {detail}",
                command=argv,
                exit_code=result.code,
                stderr=result.err,
            )
        return result.out

    @staticmethod
    async def _spawn(
        argv: Sequence[str], cwd: str | Path, env: Mapping[str, str], *, stdin: bool
    ) -> asyncio.subprocess.Process:
        name = Path(argv[0]).name
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                cwd=str(cwd),
                env=dict(env),
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise GitError(f"{name} is not installed on this node", command=argv) from None
        except NotADirectoryError:
            raise GitError(f"not a directory: {cwd}", command=argv) from None

    @staticmethod
    async def _timed_out(
        proc: asyncio.subprocess.Process, argv: Sequence[str], cwd: str | Path, timeout_s: float
    ) -> GitError:
        """Kill ``proc`` with everything it started; the error that reports it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        name = Path(argv[0]).name
        return GitError(
            f"{name} {argv[1]} did not finish within {timeout_s:g} s in {cwd}", command=argv
        )

    @classmethod
    async def _exec(
        cls,
        argv: Sequence[str],
        cwd: str | Path,
        base_env: dict[str, str],
        env: Mapping[str, str] | None,
        stdin: bytes | None,
        timeout_s: float,
    ) -> GitResult:
        proc = await cls._spawn(argv, cwd, {**base_env, **(env or {})}, stdin=stdin is not None)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout_s)
        except TimeoutError:
            raise await cls._timed_out(proc, argv, cwd, timeout_s) from None
        return GitResult(
            code=proc.returncode or 0,
            out=out.decode("utf-8", "replace").strip(),
            err=err.decode("utf-8", "replace").strip(),
        )

    async def check_head(
        self,
        cwd: str | Path,
        *args: str,
        limit_bytes: int,
        env: Mapping[str, str] | None = None,
    ) -> tuple[bytes, int]:
        """Run git and return the first ``limit_bytes`` of its stdout (bytes as git wrote them)
        and the size of all of it. The rest is read and dropped as it arrives, so memory stays
        bounded whatever git prints; :class:`GitError` on a non-zero exit."""
        argv = ("git", *args)
        proc = await self._spawn(argv, cwd, {**command_env("git"), **(env or {})}, stdin=False)
        stdout, stderr = proc.stdout, proc.stderr
        assert stdout is not None
        assert stderr is not None

        async def head_and_size() -> tuple[bytes, int]:
            head = bytearray()
            total = 0
            while chunk := await stdout.read(1 << 16):
                total += len(chunk)
                head += chunk[: max(0, limit_bytes - len(head))]
            return bytes(head), total

        async def finish() -> tuple[tuple[bytes, int], bytes]:
            read = await asyncio.gather(head_and_size(), stderr.read())
            await proc.wait()
            return read[0], read[1]

        try:
            (head, total), err = await asyncio.wait_for(finish(), self.timeout_s)
        except TimeoutError:
            raise await self._timed_out(proc, argv, cwd, self.timeout_s) from None
        result = GitResult(proc.returncode or 0, "", err.decode("utf-8", "replace").strip())
        self._checked(argv, result)
        return head, total

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
        argv = ("git", "merge-base", "--is-ancestor", ancestor, descendant)
        result = await self.run(cwd, *argv[1:])
        if result.code not in (0, 1):
            self._checked(argv, result)
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
