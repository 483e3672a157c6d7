"""The writes of planned node ops (:mod:`.plan`): one op at a time, or together what a batch
collected: the writes of the node's own tasks, and its log lines.

Every write runs inside the batch's transaction after the plan's reads; the store functions lock
task rows after the project counters the batch holds (the hive's lock order) and append the
activity events in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import asyncpg

from vk_hive.gateway.plan import (
    AppendLogs,
    SetAssignmentStatus,
    Write,
    WriteAttempt,
    WriteLabel,
    WriteProcess,
    WriteProgress,
    WriteTask,
)
from vk_hive.store.models import Label, SharedTask
from vk_hive.store.repositories import assignments, executions, labels, progress, shared_tasks
from vk_hive.store.repositories.shared_tasks import NodeTaskData
from vk_hive.webhooks import events as webhook_events
from vk_shared.status import Author, TaskStatus

__all__ = ["Writer"]


class Writer:
    def __init__(self, conn: asyncpg.Connection, node_id: uuid.UUID) -> None:
        self._conn = conn
        self._node_id = node_id
        self.labels: list[Label] = []
        """Labels the ops wrote, in op order (announced to the organization after the commit)."""

    async def write(self, decision: Write) -> SharedTask | None:
        """Apply one op's write; the task a task write left behind."""
        conn, node_id = self._conn, self._node_id
        match decision:
            case WriteTask():
                author = None if decision.owner else Author.NODE
                written, _ = await shared_tasks.upsert_from_node(
                    conn, node_id, decision.data, status_author=author
                )
                return written.task
            case WriteAttempt():
                await executions.upsert_attempt(conn, node_id, decision.data)
            case WriteProcess():
                data = decision.data
                ends = webhook_events.ends_a_run(data.run_reason, data.status)
                before = await executions.process_status(conn, data.id) if ends else None
                process = await executions.upsert_process(conn, node_id, data)
                if ends and before not in webhook_events.FINISHED:
                    await webhook_events.task_finished(conn, process)
            case AppendLogs():
                await executions.insert_logs(
                    conn, decision.clearance.assignment_id, decision.execution_id, decision.lines
                )
            case SetAssignmentStatus():
                await assignments.update(
                    conn,
                    decision.assignment_id,
                    local_task_id=decision.local_task_id,
                    local_attempt_id=decision.local_attempt_id,
                    execution_status=decision.status.value,
                )
                if decision.start_task is not None:
                    await shared_tasks.set_status(
                        conn, decision.start_task, TaskStatus.IN_PROGRESS, Author.HIVE
                    )
                if decision.complete:
                    await assignments.complete(conn, decision.assignment_id, decision.status.value)
            case WriteProgress():
                await progress.insert_node_progress(
                    conn,
                    node_id,
                    progress.NodeProgress(
                        event_id=decision.event_id,
                        shared_task_id=decision.shared_task_id,
                        attempt_id=decision.attempt_id,
                        assignment_id=decision.assignment_id,
                        execution_id=decision.execution_id,
                        event_type=decision.event_type,
                        message=decision.message,
                        timestamp=decision.timestamp,
                    ),
                )
            case WriteLabel():
                label = await labels.upsert_from_node(
                    conn,
                    node_id,
                    label_id=decision.label_id,
                    organization_id=decision.organization_id,
                    project_id=decision.project_id,
                    name=decision.name,
                    icon=decision.icon,
                    color=decision.color,
                )
                self.labels.append(label)
        return None

    async def write_tasks(
        self, before: Mapping[uuid.UUID, SharedTask | None], items: list[NodeTaskData]
    ) -> list[SharedTask]:
        """Writes of tasks the node owns (new ones and edits, several of one task too, in op
        order; ``before``: each task by local id as stored, None when new): one statement for
        the tasks, one for their events. The task after each write, in the order of ``items``."""
        return await shared_tasks.write_many_from_node(self._conn, self._node_id, before, items)

    async def append_logs(self, decisions: list[AppendLogs]) -> None:
        """The lines of several ``logs.append`` ops, in order, with one statement."""
        await executions.insert_log_runs(
            self._conn,
            [
                executions.LogRun(d.clearance.assignment_id, d.execution_id, d.lines)
                for d in decisions
            ],
        )
