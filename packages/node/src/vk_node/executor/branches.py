"""Git actions on an attempt's branch (spec §9, "other git operations"): push it to ``origin``,
rebase it onto its base branch, rename it, change its base branch, and report how it stands.

Invariants:

- A branch name from a request is one git accepts as a branch name (``git check-ref-format
  --branch`` answers the name itself, so no ``@{-1}`` shorthand) and never starts with ``-``.
  Names reach git as full refs (``refs/heads/<name>``), as commit ids or after ``--``, so
  nothing a caller sends is read as an option.
- Every refusal is a 4xx with git's own error line, never a stack trace: 409 while the attempt
  runs, when its worktree is gone, dirty or in the middle of a rebase, on a rebase conflict and
  on a push the remote rejects; 422 when git fails otherwise, refuses a branch name or a branch
  does not exist.
- A rebase that stops on conflicts is aborted at once (``git rebase --abort``): the branch and
  the worktree are exactly as before, and the 409 names the conflicted files. Resolving them is
  left to the user (in the worktree, by hand) or to a follow-up run of the agent; a rebase left
  in progress that way can be aborted through :func:`abort_rebase`.
- The attempt row changes (branch, target branch) only after git succeeded; they reach the hive
  like any attempt change. Renaming a branch retargets the attempts of child tasks that were
  based on it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from vk_node.errors import Conflict, InvalidInput, Unprocessable
from vk_node.executor.diff import live_worktree
from vk_node.executor.git import GitResult, GitRunner
from vk_node.store.models import Project, Task, TaskAttempt
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import merges as merges_repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo

if TYPE_CHECKING:
    from vk_node.executor.service import ExecutorService

__all__ = [
    "BranchStatus",
    "PushRejected",
    "RebaseConflict",
    "abort_rebase",
    "branch_status",
    "change_target_branch",
    "checked_branch_name",
    "failure_reason",
    "load_attempt",
    "push_branch",
    "push_ref",
    "rebase_branch",
    "rename_branch",
]

_MAX_LISTED = 20
"""Conflicted files named in a rebase's 409 (the count says how many there are in all)."""


class RebaseConflict(Conflict):
    """A rebase stopped on conflicts (it was aborted; nothing changed)."""

    code = "rebase_conflict"


class PushRejected(Conflict):
    """The remote refused the push (its branch has commits this one lacks)."""

    code = "push_rejected"


class BranchStatus(msgspec.Struct, frozen=True, kw_only=True):
    attempt_id: UUID
    branch: str
    target_branch: str
    head_commit: str | None
    """The attempt branch's tip; ``None`` when the branch does not exist any more."""
    ahead: int | None
    """Commits of the branch that the target branch lacks (``None``: a branch is missing)."""
    behind: int | None
    """Commits of the target branch that the branch lacks."""
    remote_ahead: int | None
    """Commits of the branch not yet on ``origin`` (``None`` before the first push)."""
    remote_behind: int | None
    """Commits on ``origin``'s copy of the branch that the local branch lacks."""
    has_uncommitted_changes: bool | None
    """Whether the worktree has changes not committed yet (``None`` when it is gone)."""
    rebase_in_progress: bool


def failure_reason(result: GitResult) -> str:
    """The lines of a failed git command's output that say what went wrong (``fatal:``,
    ``error:``, a rejected ref), else its first line."""
    text = "\n".join(part for part in (result.err, result.out) if part)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    telling = [line for line in lines if line.startswith(("fatal:", "error:", "! ", "CONFLICT"))]
    chosen = telling[:3] or lines[:1]
    return "; ".join(chosen) or f"exit code {result.code}"


async def load_attempt(
    service: ExecutorService, attempt_id: UUID
) -> tuple[TaskAttempt, Task, Project]:
    async with service.store.read() as conn:
        attempt = await attempts_repo.get(conn, attempt_id)
        task = await tasks_repo.get(conn, attempt.task_id)
        project = await projects_repo.get(conn, task.project_id)
    return attempt, task, project


async def _require_idle(
    service: ExecutorService, attempt_id: UUID, action: str, *, dev_servers_too: bool
) -> None:
    """409 while a run of the attempt goes on (and, with ``dev_servers_too``, while its dev
    server runs)."""
    running = service.has_running_chain(attempt_id)
    if not running:
        async with service.store.read() as conn:
            rows = await processes_repo.find_running_by_task_attempt(conn, attempt_id)
        running = any(dev_servers_too or row.run_reason != "devserver" for row in rows)
    if running:
        raise Conflict(f"cannot {action} while a process of the attempt runs; stop it first")


async def checked_branch_name(git: GitRunner, repo: str, name: str) -> str:
    """``name`` when git accepts it as a branch name; 422 otherwise (the request's schema
    already refused names that start with ``-``: 400)."""
    if not name or name.startswith("-"):
        raise InvalidInput(f"not a valid branch name: {name!r}")
    checked = await git.run(repo, "check-ref-format", "--branch", name)
    if not checked.ok or checked.out != name:
        raise Unprocessable(f"git does not accept {name!r} as a branch name")
    return name


def _branch_ref(name: str) -> str:
    return f"refs/heads/{name}"


async def _rebase_in_progress(git: GitRunner, worktree: Path) -> bool:
    for state in ("rebase-merge", "rebase-apply"):
        found = await git.run(worktree, "rev-parse", "--git-path", state)
        if found.ok and await asyncio.to_thread((worktree / found.out).exists):
            return True
    return False


async def _counts(git: GitRunner, repo: str, left: str, right: str) -> tuple[int, int] | None:
    """(commits only in ``left``, commits only in ``right``); ``None`` when either is missing."""
    result = await git.run(repo, "rev-list", "--left-right", "--count", f"{left}...{right}", "--")
    if not result.ok:
        return None
    only_left, only_right = result.out.split()
    return int(only_left), int(only_right)


async def _status(git: GitRunner, attempt: TaskAttempt, project: Project) -> BranchStatus:
    repo = project.git_repo_path
    branch = _branch_ref(attempt.branch)
    head = await git.rev(repo, branch)
    target = await git.rev(repo, _branch_ref(attempt.target_branch))
    counts = None if head is None or target is None else await _counts(git, repo, target, head)
    remote = await git.rev(repo, f"refs/remotes/origin/{attempt.branch}")
    remote_counts = (
        None if head is None or remote is None else await _counts(git, repo, remote, head)
    )
    dirty: bool | None = None
    in_rebase = False
    try:
        worktree = await asyncio.to_thread(live_worktree, attempt)
    except Conflict:
        worktree = None
    if worktree is not None:
        dirty = await git.is_dirty(worktree)
        in_rebase = await _rebase_in_progress(git, worktree)
    return BranchStatus(
        attempt_id=attempt.id,
        branch=attempt.branch,
        target_branch=attempt.target_branch,
        head_commit=head,
        ahead=None if counts is None else counts[1],
        behind=None if counts is None else counts[0],
        remote_ahead=None if remote_counts is None else remote_counts[1],
        remote_behind=None if remote_counts is None else remote_counts[0],
        has_uncommitted_changes=dirty,
        rebase_in_progress=in_rebase,
    )


async def branch_status(service: ExecutorService, attempt_id: UUID) -> BranchStatus:
    """How the attempt branch stands against its target branch and ``origin``."""
    attempt, _, project = await load_attempt(service, attempt_id)
    return await _status(service.git, attempt, project)


async def push_ref(git: GitRunner, repo: str, branch: str, *, force: bool = False) -> None:
    """Push ``branch`` to the same name on ``origin`` and track it there."""
    if await git.rev(repo, _branch_ref(branch)) is None:
        raise Unprocessable(f"the attempt branch {branch!r} does not exist")
    if not (await git.run(repo, "remote", "get-url", "--", "origin")).ok:
        raise Unprocessable("the project's repository has no remote named 'origin' to push to")
    ref = _branch_ref(branch)
    forced = ("--force",) if force else ()
    pushed = await git.run(repo, "push", "--set-upstream", *forced, "--", "origin", f"{ref}:{ref}")
    if pushed.ok:
        return
    reason = failure_reason(pushed)
    if "[rejected]" in pushed.err or "[remote rejected]" in pushed.err:
        raise PushRejected(
            f"origin refused the push of {branch!r}: {reason}"
            + ("" if force else "; rebase onto origin's branch or push with force")
        )
    raise Unprocessable(f"git push of {branch!r} to origin failed: {reason}")


async def push_branch(service: ExecutorService, attempt_id: UUID, *, force: bool) -> BranchStatus:
    """Push the attempt branch to ``origin`` (``force``: overwrite origin's copy)."""
    attempt, _, project = await load_attempt(service, attempt_id)
    await _require_idle(service, attempt_id, "push", dev_servers_too=False)
    await push_ref(service.git, project.git_repo_path, attempt.branch, force=force)
    return await _status(service.git, attempt, project)


async def _conflicted_files(git: GitRunner, worktree: Path) -> list[str]:
    listed = await git.run(worktree, "diff", "--name-only", "--diff-filter=U", "-z")
    return sorted({name for name in listed.out.split("\0") if name})


async def rebase_branch(
    service: ExecutorService, attempt_id: UUID, new_base: str | None
) -> BranchStatus:
    """Rebase the attempt branch onto its base branch (or onto ``new_base``, which then becomes
    its base): the commits the branch has beyond its old base are replayed onto the new one."""
    git = service.git
    attempt, _, project = await load_attempt(service, attempt_id)
    await _require_idle(service, attempt_id, "rebase", dev_servers_too=True)
    repo = project.git_repo_path
    base = attempt.target_branch if new_base is None else new_base
    base = await checked_branch_name(git, repo, base)
    onto = await git.rev(repo, _branch_ref(base))
    if onto is None:
        raise Unprocessable(f"the base branch {base!r} does not exist")
    old = await git.rev(repo, _branch_ref(attempt.target_branch)) or onto
    worktree = await asyncio.to_thread(live_worktree, attempt)
    if await _rebase_in_progress(git, worktree):
        raise Conflict("a rebase is already in progress in the attempt's worktree")
    checked_out = await git.run(worktree, "symbolic-ref", "--quiet", "HEAD")
    if checked_out.out != _branch_ref(attempt.branch):
        raise Conflict(
            f"the worktree does not have the attempt branch {attempt.branch!r} checked out"
        )
    if await git.is_dirty(worktree):
        raise Conflict("the attempt's worktree has uncommitted changes; commit or discard them")
    ident = await git.identity(worktree)
    env = {"GIT_EDITOR": "true", "GIT_SEQUENCE_EDITOR": "true"}
    rebased = await git.run(worktree, *ident, "rebase", "--onto", onto, old, env=env)
    if not rebased.ok:
        conflicted = await _conflicted_files(git, worktree)
        if await _rebase_in_progress(git, worktree):
            await git.check(worktree, "rebase", "--abort")
        if conflicted:
            named = ", ".join(conflicted[:_MAX_LISTED])
            more = len(conflicted) - _MAX_LISTED
            raise RebaseConflict(
                f"rebasing {attempt.branch!r} onto {base!r} stopped on conflicts in "
                f"{len(conflicted)} file(s): {named}{f' and {more} more' if more > 0 else ''}; "
                "the rebase was aborted and the branch is as it was"
            )
        raise Unprocessable(f"git rebase onto {base!r} failed: {failure_reason(rebased)}")
    if base != attempt.target_branch:
        async with service.store.transaction() as conn:
            attempt = await attempts_repo.update_target_branch(conn, attempt_id, base)
    return await _status(git, attempt, project)


async def abort_rebase(service: ExecutorService, attempt_id: UUID) -> BranchStatus:
    """Abort a rebase left in progress in the attempt's worktree (started there by hand or by
    an agent): the branch and the worktree go back to where it started. 409 when none is."""
    git = service.git
    attempt, _, project = await load_attempt(service, attempt_id)
    await _require_idle(service, attempt_id, "abort a rebase", dev_servers_too=False)
    worktree = await asyncio.to_thread(live_worktree, attempt)
    if not await _rebase_in_progress(git, worktree):
        raise Conflict("no rebase is in progress in the attempt's worktree")
    aborted = await git.run(worktree, "rebase", "--abort")
    if not aborted.ok:
        raise Unprocessable(f"git rebase --abort failed: {failure_reason(aborted)}")
    return await _status(git, attempt, project)


async def rename_branch(service: ExecutorService, attempt_id: UUID, new_name: str) -> TaskAttempt:
    """Rename the attempt branch (its worktree follows); attempts of child tasks based on the
    old name are retargeted. 409 while anything of the attempt runs, when the name is taken or
    when a pull request is open from the old name."""
    git = service.git
    attempt, task, project = await load_attempt(service, attempt_id)
    await _require_idle(service, attempt_id, "rename the branch", dev_servers_too=True)
    repo = project.git_repo_path
    name = await checked_branch_name(git, repo, new_name)
    old = attempt.branch
    if name == old:
        return attempt
    if await git.rev(repo, _branch_ref(old)) is None:
        raise Unprocessable(f"the attempt branch {old!r} does not exist")
    if await git.rev(repo, _branch_ref(name)) is not None:
        raise Conflict(f"a branch named {name!r} already exists")
    async with service.store.read() as conn:
        merges = await merges_repo.find_by_task_attempt_id(conn, attempt_id)
    if any(m.merge_type == "pr" and m.pr_status == "open" for m in merges):
        raise Conflict(f"a pull request from {old!r} is open; a renamed branch would leave it")
    ident = await git.identity(repo)
    renamed = await git.run(repo, *ident, "branch", "-m", "--", old, name)
    if not renamed.ok:
        raise Unprocessable(f"git branch -m {old!r} {name!r} failed: {failure_reason(renamed)}")
    async with service.store.transaction() as conn:
        updated = await attempts_repo.update_branch_name(conn, attempt_id, name)
        await attempts_repo.update_target_branch_for_children_of_task(conn, task.id, old, name)
    return updated


async def change_target_branch(
    service: ExecutorService, attempt_id: UUID, target: str
) -> TaskAttempt:
    """Make ``target`` (an existing branch) the attempt's base: what its diff, merge and
    rebase compare with. The branch itself does not move (rebase to move it)."""
    git = service.git
    attempt, _, project = await load_attempt(service, attempt_id)
    await _require_idle(service, attempt_id, "change the base branch", dev_servers_too=False)
    repo = project.git_repo_path
    name = await checked_branch_name(git, repo, target)
    if name == attempt.branch:
        raise Unprocessable("an attempt's branch cannot be its own base branch")
    if await git.rev(repo, _branch_ref(name)) is None:
        raise Unprocessable(f"the branch {name!r} does not exist")
    if name == attempt.target_branch:
        return attempt
    async with service.store.transaction() as conn:
        return await attempts_repo.update_target_branch(conn, attempt_id, name)
