"""Firing webhook events: one pending delivery per applicable webhook, written on the caller's
transaction — the one that records the state change — so an event and its deliveries commit (or
roll back) together, and a node that stops right after still sends them when it starts again.

The caller wakes the delivery worker after its commit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import aiosqlite

from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_node.store.repositories import webhook_deliveries as deliveries_repo
from vk_node.store.repositories import webhooks as webhooks_repo
from vk_node.webhooks.payload import encode_body, executor_finish_body

__all__ = ["FIRING_RUN_REASONS", "executor_finish"]

FIRING_RUN_REASONS = frozenset({"codingagent"})
"""Runs whose end fires ``executor_finish``: the attempt's coding agent (or its script, for the
``SCRIPT`` executor) — not setup or cleanup scripts, not dev servers."""


async def executor_finish(conn: aiosqlite.Connection, process_id: UUID, *, node_name: str) -> int:
    """Write the deliveries of ``executor_finish`` for the ended process (on the caller's
    transaction); the number written. Nothing for runs other than :data:`FIRING_RUN_REASONS`
    or a process still running."""
    process = await processes_repo.get(conn, process_id)
    if process.run_reason not in FIRING_RUN_REASONS or process.status == "running":
        return 0
    attempt = await attempts_repo.get(conn, process.task_attempt_id)
    task = await tasks_repo.get(conn, attempt.task_id)
    hooks = await webhooks_repo.find_applicable(conn, task.project_id, "executor_finish")
    if not hooks:
        return 0
    project = await projects_repo.get(conn, task.project_id)
    now = datetime.now(UTC)
    for hook in hooks:
        delivery_id = uuid4()
        body = executor_finish_body(
            delivery_id,
            occurred_at=process.completed_at or now,
            node_name=node_name,
            project=project,
            task=task,
            attempt=attempt,
            process=process,
        )
        await deliveries_repo.create(
            conn,
            delivery_id,
            webhook_id=hook.id,
            event="executor_finish",
            body=encode_body(body, hook.payload_template),
            next_attempt_at=now,
        )
    return len(hooks)
