"""Task attempts: thin entry points of the REST API into the executor service.

Creating an attempt first checks the executor (a registered profile this node can run: ``SCRIPT``
only when this node enables it, an agent only when its CLI is on PATH), then unarchives the task,
checks the base branch, records the attempt with its branch, creates its worktree and starts its
run chain (``vk_node.executor.service``).
"""

from __future__ import annotations

from uuid import UUID

from vk_node.executor.diff import AttemptDiff, attempt_diff
from vk_node.executor.merge import merge_attempt
from vk_node.executor.pull_requests import create_pr
from vk_node.executor.service import ExecutorService, FollowUpResult
from vk_node.store.models import Merge, TaskAttempt
from vk_node.store.repositories import task_attempts as attempts_repo

__all__ = [
    "create_attempt",
    "diff",
    "follow_up",
    "merge",
    "open_pr",
    "retry",
    "start_dev_server",
    "stop_attempt",
    "stop_dev_server",
]


async def create_attempt(
    executor: ExecutorService,
    *,
    task_id: UUID,
    executor_name: str,
    base_branch: str,
    variant: str | None = None,
    use_parent_worktree: bool = False,
) -> TaskAttempt:
    return await executor.create_attempt(
        task_id=task_id,
        executor=executor_name,
        base_branch=base_branch,
        variant=variant,
        use_parent_worktree=use_parent_worktree,
    )


async def stop_attempt(executor: ExecutorService, attempt_id: UUID) -> TaskAttempt:
    """Stop the attempt's running processes (a no-op when nothing runs)."""
    return await executor.stop_attempt(attempt_id)


async def follow_up(
    executor: ExecutorService, attempt_id: UUID, prompt: str, variant: str | None
) -> FollowUpResult:
    return await executor.follow_up(attempt_id, prompt, variant=variant)


async def retry(
    executor: ExecutorService,
    attempt_id: UUID,
    process_id: UUID,
    *,
    prompt: str | None,
    force_when_dirty: bool,
    perform_git_reset: bool,
) -> TaskAttempt:
    return await executor.retry(
        attempt_id,
        process_id,
        prompt=prompt,
        force_when_dirty=force_when_dirty,
        perform_git_reset=perform_git_reset,
    )


async def merge(executor: ExecutorService, attempt_id: UUID) -> Merge:
    return await merge_attempt(executor, attempt_id)


async def open_pr(
    executor: ExecutorService, attempt_id: UUID, title: str | None, body: str | None
) -> Merge:
    return await create_pr(executor, attempt_id, title=title, body=body)


async def start_dev_server(executor: ExecutorService, attempt_id: UUID) -> None:
    await executor.start_dev_server(attempt_id)


async def stop_dev_server(executor: ExecutorService, attempt_id: UUID) -> None:
    await executor.stop_dev_servers(attempt_id)


async def diff(executor: ExecutorService, attempt_id: UUID) -> AttemptDiff:
    """The attempt's changes against its base branch (:mod:`vk_node.executor.diff`)."""
    async with executor.store.read() as conn:
        attempt = await attempts_repo.get(conn, attempt_id)
    return await attempt_diff(executor.git, attempt)
