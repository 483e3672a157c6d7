"""Task attempts: recording one (the executor that runs it is a later part).

An attempt is one git worktree and branch for a task. Creating one checks that the executor is a
known profile (``SCRIPT`` only when this node enables it), that the task is not archived and that
the base branch exists in the project's repository, then records the row (and, for a linked
project, its ``attempt.upsert`` op) in one transaction.
"""

from __future__ import annotations

import re
import secrets
from uuid import UUID, uuid4

from vk_node.errors import Conflict, NotImplementedYet, Unprocessable
from vk_node.services.git import branch_exists
from vk_node.settings import NodeSettings
from vk_node.store import Store
from vk_node.store.models import TaskAttempt
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo

__all__ = ["AGENT_EXECUTORS", "attempt_branch_name", "create_attempt", "stop_attempt"]

AGENT_EXECUTORS = frozenset(
    {"CLAUDE_CODE", "CODEX", "GEMINI", "AMP", "OPENCODE", "CURSOR_AGENT", "QWEN_CODE", "COPILOT"}
)
"""Coding-agent profiles (DESIGN.md §7); ``SCRIPT`` must be enabled in the node's settings."""

_BRANCH_PREFIX = "vk"


def attempt_branch_name(title: str) -> str:
    """``vk/<4 hex>-<slug of the title, at most 16 chars>`` (spec E-01)."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:16].strip("-") or "task"
    return f"{_BRANCH_PREFIX}/{secrets.token_hex(2)}-{slug}"


def _check_executor(settings: NodeSettings, executor: str) -> None:
    if executor == "SCRIPT":
        if "SCRIPT" not in settings.executors:
            raise Unprocessable("executor SCRIPT is not enabled on this node (VK_NODE_EXECUTORS)")
        return
    if executor not in AGENT_EXECUTORS:
        known = ", ".join(sorted({"SCRIPT", *AGENT_EXECUTORS}))
        raise Unprocessable(f"unknown executor {executor!r} (known: {known})")


async def create_attempt(
    store: Store, settings: NodeSettings, *, task_id: UUID, executor: str, base_branch: str
) -> TaskAttempt:
    _check_executor(settings, executor)
    async with store.read() as conn:
        task = await tasks_repo.get(conn, task_id)
        project = await projects_repo.get(conn, task.project_id)
    if task.archived_at is not None:
        raise Conflict("the task is archived; unarchive it first")
    if not await branch_exists(project.git_repo_path, base_branch):
        raise Unprocessable(
            f"base branch {base_branch!r} does not exist in {project.git_repo_path}"
        )
    async with store.transaction() as conn:
        await tasks_repo.get(conn, task_id)  # still there
        return await attempts_repo.create(
            conn,
            uuid4(),
            task_id=task_id,
            executor=executor,
            base_branch=base_branch,
            branch=attempt_branch_name(task.title),
        )


async def stop_attempt(store: Store, attempt_id: UUID) -> TaskAttempt:
    """Nothing running: a no-op. Something running: stopping processes is not built yet (501)."""
    async with store.read() as conn:
        attempt = await attempts_repo.get(conn, attempt_id)
        processes = await processes_repo.find_by_task_attempt_id(conn, attempt_id)
    if any(p.status == "running" for p in processes):
        raise NotImplementedYet("stopping a running attempt is not available in this version")
    return attempt
