"""Progress events of tasks' runs, written by nodes (``progress.append``) and read across nodes
per task (``GET /v1/tasks/{id}/progress``)."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import msgspec

from vk_hive.store.models import TaskProgressEvent, from_rows
from vk_hive.store.repositories.executions import strip_nul

__all__ = ["NodeProgress", "insert_node_progress", "list_task_progress"]


class NodeProgress(msgspec.Struct, kw_only=True):
    """A milestone a node reported (``progress.append``), with the task and assignment the hive
    took from its copy of the attempt."""

    event_id: uuid.UUID
    shared_task_id: uuid.UUID
    attempt_id: uuid.UUID
    assignment_id: uuid.UUID | None
    execution_id: uuid.UUID | None
    event_type: str
    message: str | None
    timestamp: dt.datetime


async def insert_node_progress(
    conn: asyncpg.Connection, node_id: uuid.UUID, event: NodeProgress
) -> bool:
    """Store one milestone; False when the node's event id is stored already (a resend). An
    execution the hive does not have is not named."""
    status = await conn.execute(
        """
        INSERT INTO node_task_progress_events (assignment_id, event_type, message, "timestamp",
            shared_task_id, node_id, attempt_id, execution_process_id, event_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7,
            (SELECT id FROM node_execution_processes WHERE id = $8 AND node_id = $6), $9)
        ON CONFLICT (node_id, event_id) DO NOTHING
        """,
        event.assignment_id,
        event.event_type,
        None if event.message is None else strip_nul(event.message),
        event.timestamp,
        event.shared_task_id,
        node_id,
        event.attempt_id,
        event.execution_id,
        event.event_id,
    )
    return str(status).endswith(" 1")


async def list_task_progress(
    conn: asyncpg.Connection, shared_task_id: uuid.UUID, *, after: int | None, limit: int
) -> list[TaskProgressEvent]:
    """The task's progress events across nodes, oldest first (time, then id); ``after``: the id
    of the last event of the previous page."""
    rows = await conn.fetch(
        """
        SELECT e.id, e.node_id, n.name AS node_name, e.assignment_id, e.attempt_id,
            e.execution_process_id, e.event_type, e.message, e."timestamp"
        FROM node_task_progress_events e
        LEFT JOIN node_task_assignments a ON a.id = e.assignment_id
        LEFT JOIN nodes n ON n.id = COALESCE(e.node_id, a.node_id)
        WHERE (e.shared_task_id = $1 OR (e.shared_task_id IS NULL AND a.task_id = $1))
          AND ($2::bigint IS NULL OR (e."timestamp", e.id) > (
              SELECT p."timestamp", p.id FROM node_task_progress_events p WHERE p.id = $2))
        ORDER BY e."timestamp", e.id
        LIMIT $3
        """,
        shared_task_id,
        after,
        limit,
    )
    return from_rows(TaskProgressEvent, rows)
