"""Builders of rows for node store tests (real inserts through the repositories)."""

from __future__ import annotations

from uuid import UUID, uuid4

import aiosqlite

from vk_node.store.models import ExecutionProcess, Project, Task, TaskAttempt
from vk_node.store.repositories import execution_processes, projects, task_attempts, tasks

AGENT_ACTION = {
    "typ": {
        "type": "CodingAgentInitialRequest",
        "prompt": "do it",
        "executor_profile_id": {"executor": "SCRIPT"},
    },
    "next_action": None,
}


async def project(conn: aiosqlite.Connection, *, linked: bool = True, name: str = "p") -> Project:
    """A local project; linked to a fresh swarm project unless ``linked=False``."""
    created = await projects.create(
        conn, uuid4(), name=name, git_repo_path=f"/repos/{name}-{uuid4().hex[:8]}"
    )
    if linked:
        created = await projects.set_remote_project_id(conn, created.id, uuid4())
    return created


async def task(
    conn: aiosqlite.Connection, proj: Project, *, title: str = "t", parent: UUID | None = None
) -> Task:
    return await tasks.create(conn, uuid4(), project_id=proj.id, title=title, parent_task_id=parent)


async def attempt(conn: aiosqlite.Connection, t: Task) -> TaskAttempt:
    attempt_id = uuid4()
    return await task_attempts.create(
        conn,
        attempt_id,
        task_id=t.id,
        executor="SCRIPT",
        base_branch="main",
        branch=f"vk/{attempt_id.hex[:8]}",
    )


async def process(
    conn: aiosqlite.Connection, a: TaskAttempt, *, run_reason: str = "codingagent"
) -> ExecutionProcess:
    return await execution_processes.create(
        conn, uuid4(), task_attempt_id=a.id, run_reason=run_reason, executor_action=AGENT_ACTION
    )


async def world(
    conn: aiosqlite.Connection, *, linked: bool = True
) -> tuple[Project, Task, TaskAttempt, ExecutionProcess]:
    """A project with one task, one attempt and one running coding-agent process."""
    p = await project(conn, linked=linked)
    t = await task(conn, p)
    a = await attempt(conn, t)
    e = await process(conn, a)
    return p, t, a, e
