"""Merging an attempt (spec §9): a squash merge into the target branch (pull requests:
:mod:`vk_node.executor.pull_requests`).

The squash commit is built without touching any checkout (``git merge-tree --write-tree`` +
``git commit-tree``). The target branch then moves by ``git update-ref`` with the old value as a
guard, or — when the target is checked out somewhere — by ``git merge --ff-only`` in that
checkout, which keeps unrelated local edits and refuses instead of overwriting them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

import structlog

from vk_node.errors import Conflict, Unprocessable
from vk_node.executor.branches import load_attempt
from vk_node.store.models import Merge
from vk_node.store.repositories import merges as merges_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.status import NodeTaskStatus

if TYPE_CHECKING:
    from vk_node.executor.service import ExecutorService

__all__ = ["merge_attempt"]

log = structlog.get_logger("vk_node.executor.merge")


async def _checked_out_at(service: ExecutorService, repo: str, branch: str) -> str | None:
    """The worktree (main checkout included) that has ``branch`` checked out, if any."""
    listing = await service.git.check(repo, "worktree", "list", "--porcelain")
    path: str | None = None
    for line in listing.splitlines():
        if line.startswith("worktree "):
            path = line[len("worktree ") :]
        elif line == f"branch refs/heads/{branch}":
            return path
    return None


async def merge_attempt(service: ExecutorService, attempt_id: UUID) -> Merge:
    """Squash-merge the attempt branch into its target branch; the task becomes ``done``.

    409 when the attempt is running, when the target has commits the attempt branch lacks
    (rebase first; a conflict is named), or when the target's checkout has staged changes."""
    git = service.git
    attempt, task, project = await load_attempt(service, attempt_id)
    if service.has_running_chain(attempt_id):
        raise Conflict("the attempt is still running; stop it or wait for it to finish")
    repo = project.git_repo_path
    branch, target = attempt.branch, attempt.target_branch
    branch_sha = await git.rev(repo, f"refs/heads/{branch}")
    target_sha = await git.rev(repo, f"refs/heads/{target}")
    if branch_sha is None:
        raise Unprocessable(f"the attempt branch {branch!r} does not exist")
    if target_sha is None:
        raise Unprocessable(f"the target branch {target!r} does not exist")
    worktree = attempt.container_ref if not attempt.worktree_deleted else None
    if worktree is not None and await git.is_dirty(worktree):
        raise Conflict(
            "the attempt's worktree has uncommitted changes; commit or discard them first"
        )
    if branch_sha == target_sha or await git.is_ancestor(repo, branch_sha, target_sha):
        raise Conflict(f"nothing to merge: {branch!r} has no commits that {target!r} lacks")
    if not await git.is_ancestor(repo, target_sha, branch_sha):
        merged = await git.run(repo, "merge-tree", "--write-tree", "--name-only", target, branch)
        if merged.code == 1:
            files = merged.out.split("\n\n")[0].splitlines()[1:]
            names = ", ".join(files[:10]) or "unknown files"
            raise Conflict(
                f"merge conflict between {branch!r} and {target!r} in: {names}; "
                f"rebase the attempt branch onto {target!r} and resolve them"
            )
        raise Conflict(
            f"{target!r} has commits that {branch!r} lacks; rebase the attempt branch first"
        )
    tree = await git.check(repo, "rev-parse", f"{branch_sha}^{{tree}}")
    message = f"{task.title} (vibe-kanban {task.id.hex[:8]})"
    if (task.description or "").strip():
        message += f"\n\n{task.description}"
    ident = await git.identity(repo)
    commit = await git.check(
        repo, *ident, "commit-tree", tree, "-p", target_sha, "-F", "-", stdin=message.encode()
    )
    checkout = await _checked_out_at(service, repo, target)
    if checkout is not None:
        staged = await git.run(checkout, "diff", "--cached", "--quiet")
        if staged.code != 0:
            raise Conflict(f"{target!r} is checked out at {checkout} with staged changes")
        moved = await git.run(checkout, "merge", "--ff-only", "--quiet", commit)
        if not moved.ok:
            raise Conflict(f"could not update the checkout of {target!r}: {moved.err}")
    else:
        await git.check(repo, "update-ref", f"refs/heads/{target}", commit, target_sha)
    # Follow-ups continue from the squash commit (same tree as the branch tip).
    if attempt.container_ref and not attempt.worktree_deleted:
        await git.run(attempt.container_ref, "reset", "--keep", "--quiet", commit)
    else:
        await git.run(repo, "update-ref", f"refs/heads/{branch}", commit, branch_sha)
    async with service.store.transaction() as conn:
        merge = await merges_repo.create_direct(conn, attempt_id, target, commit)
        await tasks_repo.update_status(conn, task.id, NodeTaskStatus.DONE)
    await service.stop_dev_servers(attempt_id)
    log.info("attempt.merged", attempt_id=str(attempt_id), target=target, commit=commit)
    return merge
