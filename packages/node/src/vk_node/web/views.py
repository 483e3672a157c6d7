"""What each board page shows, read through the same repositories and services as the REST API.

Every function returns plain view structs for one page; templates only lay them out (they never
reach the store). An unknown id is :class:`~vk_node.errors.NotFound`, as in the API.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from vk_node.context import NodeContext
from vk_node.executor.git import GitError
from vk_node.store.models import (
    ExecutionProcess,
    Image,
    Project,
    ProjectWithStats,
    Task,
    TaskAttempt,
    TaskWithAttemptStatus,
)
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import images as images_repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.status import NodeTaskStatus

__all__ = [
    "COLUMNS",
    "STATUS_LABELS",
    "AttemptView",
    "BoardColumn",
    "ProjectBoard",
    "TaskPage",
    "attempt_state",
    "project_board",
    "projects",
    "task_page",
]

COLUMNS: tuple[tuple[NodeTaskStatus, str], ...] = (
    (NodeTaskStatus.TODO, "To do"),
    (NodeTaskStatus.INPROGRESS, "In progress"),
    (NodeTaskStatus.INREVIEW, "In review"),
    (NodeTaskStatus.DONE, "Done"),
    (NodeTaskStatus.CANCELLED, "Cancelled"),
)
"""The kanban columns: every status of the node's state machine, in its order."""
STATUS_LABELS: dict[str, str] = {status.value: label for status, label in COLUMNS}

_MAX_BRANCHES = 200


class BoardColumn(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    label: str
    tasks: list[TaskWithAttemptStatus]


class ProjectBoard(msgspec.Struct, frozen=True, kw_only=True):
    project: Project
    columns: list[BoardColumn]


class AttemptView(msgspec.Struct, frozen=True, kw_only=True):
    attempt: TaskAttempt
    processes: list[ExecutionProcess]

    @property
    def running(self) -> bool:
        return any(p.status == "running" for p in self.processes)


class TaskPage(msgspec.Struct, frozen=True, kw_only=True):
    task: Task
    project: Project
    attempts: list[AttemptView]
    executors: list[str]
    branches: list[str]
    default_branch: str
    images: list[Image] = []


def attempt_state(task: TaskWithAttemptStatus) -> str:
    """One word for the task's latest attempt: ``running``, ``failed``, ``finished``,
    ``started`` or ``none``."""
    if task.has_in_progress_attempt:
        return "running"
    if task.last_attempt_failed:
        return "failed"
    if task.latest_agent_completed_at is not None:
        return "finished"
    return "started" if task.executor is not None else "none"


async def projects(ctx: NodeContext) -> list[ProjectWithStats]:
    """The node's local projects with their task counts (as ``GET /api/projects``)."""
    async with ctx.store.read() as conn:
        return await projects_repo.find_local_projects_with_stats(conn)


async def project_board(ctx: NodeContext, project_id: UUID) -> ProjectBoard:
    """The project and its unarchived tasks in one column per status."""
    async with ctx.store.read() as conn:
        project = await projects_repo.get(conn, project_id)
        tasks = await tasks_repo.find_by_project_id_with_attempt_status(conn, project_id)
    columns = [
        BoardColumn(
            status=status.value, label=label, tasks=[t for t in tasks if t.status == status]
        )
        for status, label in COLUMNS
    ]
    return ProjectBoard(project=project, columns=columns)


async def _branches(ctx: NodeContext, repo: str) -> list[str]:
    """The repository's local branches (at most 200); none when the repository is gone."""
    try:
        found = await ctx.executor.git.run(
            repo,
            "for-each-ref",
            "--format=%(refname:short)",
            f"--count={_MAX_BRANCHES}",
            "refs/heads",
        )
    except GitError:  # the project's directory no longer exists
        return []
    return found.out.splitlines() if found.ok else []


async def task_page(ctx: NodeContext, task_id: UUID) -> TaskPage:
    """The task, its attempts (newest first) with their processes, and what a new attempt may
    use: the executors this node can run now and the repository's branches."""
    async with ctx.store.read() as conn:
        task = await tasks_repo.get(conn, task_id)
        project = await projects_repo.get(conn, task.project_id)
        attempts = [
            AttemptView(
                attempt=attempt,
                processes=await processes_repo.find_by_task_attempt_id(conn, attempt.id),
            )
            for attempt in await attempts_repo.fetch_all_attempts(conn, task_id)
        ]
        images = await images_repo.find_by_task_id(conn, task_id)
    branches = await _branches(ctx, project.git_repo_path)
    if attempts:
        default = attempts[0].attempt.target_branch
    else:
        default = "main" if "main" in branches or not branches else branches[0]
    return TaskPage(
        task=task,
        project=project,
        attempts=attempts,
        executors=ctx.executor.available(),
        branches=branches,
        default_branch=default,
        images=images,
    )
