"""An attempt's changes as one unified diff: its worktree against the branch it started from.

Invariants:

- The diff covers everything the attempt changed: its commits, staged and unstaged edits and new
  untracked files (ignored files excepted), compared with the merge base of the worktree's
  ``HEAD`` and the attempt's base branch — so commits added to the base branch since the attempt
  started do not show up as reverse changes.
- Reading it changes nothing the user or the agent can see: untracked files are staged into a
  throwaway copy of the worktree's index (``GIT_INDEX_FILE`` in a temporary directory; a copy, so
  git reuses its file stat cache instead of hashing every file), never into the index itself;
  git takes no optional locks (the runner's environment), so a running agent is never blocked.
  The one trace it leaves is the blobs of changed and new files in the repository's object store,
  unreachable, which ``git gc`` prunes like any others.
- Only git runs, through the node's one runner (:mod:`vk_node.executor.git`), without external
  diff drivers or text conversion filters.
- The text is capped at :data:`DIFF_LIMIT_BYTES`: past it the diff is cut at the last whole line
  before the cap and ``truncated`` is true; ``diff_bytes`` still says how large the whole diff is
  and ``files`` still lists every changed file with its line counts. Only the first
  :data:`DIFF_LIMIT_BYTES` of git's output are ever held in memory (the rest is counted and
  dropped as git writes it), however large the changes are.
- A worktree that is gone (removed by cleanup or by hand) or a base branch that no longer exists
  is a :class:`~vk_node.errors.Conflict` (409) naming what is missing — never an empty diff.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from uuid import UUID

import msgspec

from vk_node.errors import Conflict
from vk_node.executor.git import GitRunner
from vk_node.store.models import TaskAttempt

__all__ = [
    "DIFF_LIMIT_BYTES",
    "AttemptDiff",
    "DiffFile",
    "WorktreeGone",
    "attempt_diff",
    "live_worktree",
]

DIFF_LIMIT_BYTES = 1024 * 1024
"""Largest diff text an answer carries (1 MiB); a longer diff is cut at a line boundary."""

_DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "--no-textconv", "--no-renames")


class WorktreeGone(Conflict):
    """The attempt's worktree (or the branch it started from) is not there any more."""

    code = "worktree_gone"


class DiffFile(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    additions: int | None
    """Lines added; ``None`` for a binary file."""
    deletions: int | None
    """Lines removed; ``None`` for a binary file."""


class AttemptDiff(msgspec.Struct, frozen=True, kw_only=True):
    attempt_id: UUID
    base_branch: str
    base_commit: str
    """The merge base of the worktree's HEAD and ``base_branch``: what the diff compares with."""
    head_commit: str
    """The worktree's HEAD; uncommitted changes and untracked files come on top of it."""
    files: list[DiffFile]
    diff: str
    """Unified diff (``git diff`` format), at most ``limit_bytes`` of it."""
    diff_bytes: int
    """Size in bytes of the whole diff, also when ``diff`` was cut."""
    truncated: bool
    limit_bytes: int


def live_worktree(attempt: TaskAttempt) -> Path:
    """The attempt's worktree; :class:`WorktreeGone` (409) when it was never made or is gone."""
    if attempt.container_ref is None:
        raise WorktreeGone(f"attempt {attempt.id} has no worktree (it was never created)")
    path = Path(attempt.container_ref)
    if attempt.worktree_deleted or not (path / ".git").exists():
        raise WorktreeGone(
            f"the worktree of attempt {attempt.id} is gone (removed by cleanup or by hand); "
            f"its branch {attempt.branch!r} is kept in the project's repository"
        )
    return path


def _cut(head: bytes, total: int) -> tuple[str, bool]:
    """The diff text from the first bytes of git's output (``total`` bytes in all): whole when
    it all fits, else cut after the last line ending it holds."""
    truncated = total > len(head)
    if truncated:
        end = head.rfind(b"\n")
        head = head[: end + 1] if end >= 0 else b""
    return head.decode("utf-8", "replace"), truncated


async def _copy_index(git: GitRunner, worktree: Path, target: Path, head: str) -> None:
    """``target`` becomes a copy of the worktree's index, or the index of ``head`` when the
    worktree has none."""
    found = await git.check(worktree, "rev-parse", "--git-path", "index")
    index = worktree / found  # relative to the worktree unless absolute
    try:
        await asyncio.to_thread(shutil.copyfile, index, target)
    except FileNotFoundError:
        await git.check(worktree, "read-tree", head, env={"GIT_INDEX_FILE": str(target)})


def _files(numstat: str) -> list[DiffFile]:
    """``git diff --numstat -z`` (renames off): ``added<TAB>deleted<TAB>path<NUL>`` per file."""
    files: list[DiffFile] = []
    for record in numstat.split("\0"):
        added, _, rest = record.partition("\t")
        deleted, _, path = rest.partition("\t")
        if not path:
            continue
        binary = added == "-" or deleted == "-"
        files.append(
            DiffFile(
                path=path,
                additions=None if binary else int(added),
                deletions=None if binary else int(deleted),
            )
        )
    return files


async def attempt_diff(
    git: GitRunner, attempt: TaskAttempt, *, limit_bytes: int = DIFF_LIMIT_BYTES
) -> AttemptDiff:
    """The attempt's changes against its base branch (see the module's invariants)."""
    worktree = await asyncio.to_thread(live_worktree, attempt)
    head = await git.head(worktree)
    if head is None:
        raise WorktreeGone(f"the worktree of attempt {attempt.id} has no commit checked out")
    base_ref = await git.rev(worktree, f"refs/heads/{attempt.target_branch}")
    if base_ref is None:
        raise WorktreeGone(
            f"the base branch {attempt.target_branch!r} of attempt {attempt.id} no longer exists"
        )
    base = await git.check(worktree, "merge-base", base_ref, head)
    scratch = await asyncio.to_thread(tempfile.mkdtemp, prefix="vk-diff-")
    try:
        index = Path(scratch) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        await _copy_index(git, worktree, index, head)
        await git.check(worktree, "add", "--all", env=env)
        raw, size = await git.check_head(
            worktree,
            "diff",
            "--cached",
            *_DIFF_OPTIONS,
            base,
            "--",
            limit_bytes=limit_bytes,
            env=env,
        )
        numstat = await git.check(
            worktree, "diff", "--cached", "--numstat", "-z", *_DIFF_OPTIONS, base, "--", env=env
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    diff, truncated = _cut(raw, size)
    return AttemptDiff(
        attempt_id=attempt.id,
        base_branch=attempt.target_branch,
        base_commit=base,
        head_commit=head,
        files=_files(numstat),
        diff=diff,
        diff_bytes=size,
        truncated=truncated,
        limit_bytes=limit_bytes,
    )
