"""Mirrors of node execution data: attempts, execution processes, output logs, progress events."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import asyncpg
import msgspec

from vk_hive.errors import AttemptNotFound, NotFound
from vk_hive.store.models import (
    ExecutionProcess,
    NewOutputLog,
    OutputLog,
    ProgressEvent,
    TaskAttempt,
    from_row,
    from_rows,
)

_ATTEMPT_COLUMNS = """id, assignment_id, shared_task_id, node_id, executor, executor_variant,
    branch, target_branch, container_ref, worktree_deleted, setup_completed_at, created_at,
    updated_at, sync_state, sync_requested_at, last_full_sync_at, backfill_request_id"""

_PROCESS_COLUMNS = """id, attempt_id, node_id, run_reason, executor_action, before_head_commit,
    after_head_commit, status, exit_code, dropped, pid, started_at, completed_at, created_at"""

_LOG_COLUMNS = """id, assignment_id, output_type, content, "timestamp", created_at,
    execution_process_id, local_log_id"""

_EVENT_COLUMNS = (
    'id, assignment_id, event_type, message, metadata, "timestamp", created_at, shared_task_id, '
    "node_id, attempt_id, execution_process_id, event_id"
)


class AttemptData(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    shared_task_id: uuid.UUID
    executor: str
    branch: str
    target_branch: str
    assignment_id: uuid.UUID | None = None
    executor_variant: str | None = None
    container_ref: str | None = None
    worktree_deleted: bool = False
    setup_completed_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class ProcessData(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    attempt_id: uuid.UUID
    run_reason: str
    status: str
    started_at: dt.datetime
    executor_action: Any = None
    before_head_commit: str | None = None
    after_head_commit: str | None = None
    exit_code: int | None = None
    dropped: bool = False
    pid: int | None = None
    completed_at: dt.datetime | None = None


def strip_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL bytes; drop them."""
    return text.replace("\x00", "")


# --- attempts ------------------------------------------------------------------------------------


async def upsert_attempt(
    conn: asyncpg.Connection, node_id: uuid.UUID, data: AttemptData
) -> TaskAttempt:
    """Insert (``sync_state='partial'``) or update an attempt mirror; sync_state is untouched."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO node_task_attempts (id, assignment_id, shared_task_id, node_id, executor,
            executor_variant, branch, target_branch, container_ref, worktree_deleted,
            setup_completed_at, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, COALESCE($12, now()),
                COALESCE($13, now()))
        ON CONFLICT (id) DO UPDATE SET assignment_id = EXCLUDED.assignment_id,
            executor = EXCLUDED.executor, executor_variant = EXCLUDED.executor_variant,
            branch = EXCLUDED.branch, target_branch = EXCLUDED.target_branch,
            container_ref = EXCLUDED.container_ref, worktree_deleted = EXCLUDED.worktree_deleted,
            setup_completed_at = EXCLUDED.setup_completed_at
        WHERE node_task_attempts.node_id = EXCLUDED.node_id
        RETURNING {_ATTEMPT_COLUMNS}
        """,
        data.id,
        data.assignment_id,
        data.shared_task_id,
        node_id,
        data.executor,
        data.executor_variant,
        data.branch,
        data.target_branch,
        data.container_ref,
        data.worktree_deleted,
        data.setup_completed_at,
        data.created_at,
        data.updated_at,
    )
    if row is None:
        raise NotFound(f"attempt {data.id} belongs to another node")
    return from_row(TaskAttempt, row)


async def find_attempt(conn: asyncpg.Connection, attempt_id: uuid.UUID) -> TaskAttempt | None:
    row = await conn.fetchrow(
        f"SELECT {_ATTEMPT_COLUMNS} FROM node_task_attempts WHERE id = $1", attempt_id
    )
    return None if row is None else from_row(TaskAttempt, row)


async def find_attempts_by_shared_task_id(
    conn: asyncpg.Connection, shared_task_id: uuid.UUID
) -> list[TaskAttempt]:
    rows = await conn.fetch(
        f"SELECT {_ATTEMPT_COLUMNS} FROM node_task_attempts WHERE shared_task_id = $1 "
        "ORDER BY created_at DESC, id",
        shared_task_id,
    )
    return from_rows(TaskAttempt, rows)


async def find_attempts_by_node_id(
    conn: asyncpg.Connection, node_id: uuid.UUID
) -> list[TaskAttempt]:
    rows = await conn.fetch(
        f"SELECT {_ATTEMPT_COLUMNS} FROM node_task_attempts WHERE node_id = $1 "
        "ORDER BY created_at DESC, id",
        node_id,
    )
    return from_rows(TaskAttempt, rows)


async def find_incomplete_for_node(
    conn: asyncpg.Connection, node_id: uuid.UUID
) -> list[TaskAttempt]:
    rows = await conn.fetch(
        f"SELECT {_ATTEMPT_COLUMNS} FROM node_task_attempts "
        "WHERE node_id = $1 AND sync_state <> 'complete' ORDER BY created_at DESC, id",
        node_id,
    )
    return from_rows(TaskAttempt, rows)


async def mark_pending_backfill(
    conn: asyncpg.Connection, attempt_ids: Sequence[uuid.UUID], request_id: uuid.UUID
) -> list[uuid.UUID]:
    """Only ``partial`` attempts move to ``pending_backfill``; returns those that did."""
    rows = await conn.fetch(
        """
        UPDATE node_task_attempts SET sync_state = 'pending_backfill', sync_requested_at = now(),
            backfill_request_id = $2
        WHERE id = ANY($1::uuid[]) AND sync_state = 'partial' RETURNING id
        """,
        list(attempt_ids),
        request_id,
    )
    return [r["id"] for r in rows]


async def mark_complete(conn: asyncpg.Connection, attempt_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE node_task_attempts SET sync_state = 'complete', last_full_sync_at = now(), "
        "backfill_request_id = NULL WHERE id = $1",
        attempt_id,
    )


async def reset_attempt_to_partial(conn: asyncpg.Connection, attempt_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE node_task_attempts SET sync_state = 'partial', backfill_request_id = NULL "
        "WHERE id = $1",
        attempt_id,
    )


async def find_incomplete_with_online_nodes(
    conn: asyncpg.Connection,
    limit: int,
    offset: int = 0,
    heartbeat_within: dt.timedelta = dt.timedelta(minutes=5),
) -> list[TaskAttempt]:
    """Partial attempts of nodes that sent a heartbeat recently (backfill reconciliation)."""
    rows = await conn.fetch(
        f"""
        SELECT {", ".join("a." + c.strip() for c in _ATTEMPT_COLUMNS.split(","))}
        FROM node_task_attempts a JOIN nodes n ON n.id = a.node_id
        WHERE a.sync_state = 'partial' AND n.last_heartbeat_at > now() - $3::interval
        ORDER BY a.created_at DESC, a.id LIMIT $1 OFFSET $2
        """,
        limit,
        offset,
        heartbeat_within,
    )
    return from_rows(TaskAttempt, rows)


async def find_by_backfill_request_id(
    conn: asyncpg.Connection, request_id: uuid.UUID
) -> list[TaskAttempt]:
    rows = await conn.fetch(
        f"SELECT {_ATTEMPT_COLUMNS} FROM node_task_attempts WHERE backfill_request_id = $1 "
        "ORDER BY id",
        request_id,
    )
    return from_rows(TaskAttempt, rows)


async def reset_failed_backfill(conn: asyncpg.Connection, node_id: uuid.UUID) -> int:
    """The node's pending backfills go back to partial (e.g. it disconnected); returns how many."""
    result: str = await conn.execute(
        "UPDATE node_task_attempts SET sync_state = 'partial', backfill_request_id = NULL "
        "WHERE node_id = $1 AND sync_state = 'pending_backfill'",
        node_id,
    )
    return int(result.split()[-1])


async def reset_stale_pending_backfill(conn: asyncpg.Connection, older_than: dt.timedelta) -> int:
    """Backfills requested more than ``older_than`` ago and never answered go back to partial."""
    result: str = await conn.execute(
        "UPDATE node_task_attempts SET sync_state = 'partial', backfill_request_id = NULL "
        "WHERE sync_state = 'pending_backfill' AND sync_requested_at < now() - $1::interval",
        older_than,
    )
    return int(result.split()[-1])


# --- execution processes -------------------------------------------------------------------------


async def upsert_process(
    conn: asyncpg.Connection, node_id: uuid.UUID, data: ProcessData
) -> ExecutionProcess:
    """Insert or update a process mirror; AttemptNotFound when its attempt is not mirrored yet."""
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                INSERT INTO node_execution_processes (id, attempt_id, node_id, run_reason,
                    executor_action, before_head_commit, after_head_commit, status, exit_code,
                    dropped, pid, started_at, completed_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
                    exit_code = EXCLUDED.exit_code, dropped = EXCLUDED.dropped,
                    pid = EXCLUDED.pid, completed_at = EXCLUDED.completed_at,
                    after_head_commit = EXCLUDED.after_head_commit,
                    before_head_commit = EXCLUDED.before_head_commit,
                    executor_action = EXCLUDED.executor_action
                WHERE node_execution_processes.node_id = EXCLUDED.node_id
                RETURNING {_PROCESS_COLUMNS}
                """,
                data.id,
                data.attempt_id,
                node_id,
                data.run_reason,
                data.executor_action,
                data.before_head_commit,
                data.after_head_commit,
                data.status,
                data.exit_code,
                data.dropped,
                data.pid,
                data.started_at,
                data.completed_at,
            )
    except asyncpg.ForeignKeyViolationError as exc:
        if "attempt_id" in str(exc.detail or exc):
            raise AttemptNotFound(f"attempt {data.attempt_id} not mirrored") from None
        raise
    if row is None:
        raise NotFound(f"execution process {data.id} belongs to another node")
    return from_row(ExecutionProcess, row)


async def process_status(conn: asyncpg.Connection, process_id: uuid.UUID) -> str | None:
    """The mirrored status of a process (None when not mirrored)."""
    status: str | None = await conn.fetchval(
        "SELECT status FROM node_execution_processes WHERE id = $1", process_id
    )
    return status


async def find_process(conn: asyncpg.Connection, process_id: uuid.UUID) -> ExecutionProcess | None:
    row = await conn.fetchrow(
        f"SELECT {_PROCESS_COLUMNS} FROM node_execution_processes WHERE id = $1", process_id
    )
    return None if row is None else from_row(ExecutionProcess, row)


async def find_processes_by_attempt_id(
    conn: asyncpg.Connection, attempt_id: uuid.UUID
) -> list[ExecutionProcess]:
    rows = await conn.fetch(
        f"SELECT {_PROCESS_COLUMNS} FROM node_execution_processes WHERE attempt_id = $1 "
        "ORDER BY started_at, id",
        attempt_id,
    )
    return from_rows(ExecutionProcess, rows)


async def find_processes_by_attempt_ids(
    conn: asyncpg.Connection, attempt_ids: Sequence[uuid.UUID]
) -> list[ExecutionProcess]:
    """The processes of several attempts, each attempt's in start order."""
    rows = await conn.fetch(
        f"SELECT {_PROCESS_COLUMNS} FROM node_execution_processes "
        "WHERE attempt_id = ANY($1::uuid[]) ORDER BY started_at, id",
        list(attempt_ids),
    )
    return from_rows(ExecutionProcess, rows)


async def find_running_by_node_id(
    conn: asyncpg.Connection, node_id: uuid.UUID
) -> list[ExecutionProcess]:
    rows = await conn.fetch(
        f"SELECT {_PROCESS_COLUMNS} FROM node_execution_processes "
        "WHERE node_id = $1 AND status = 'running' ORDER BY started_at, id",
        node_id,
    )
    return from_rows(ExecutionProcess, rows)


# --- output logs ---------------------------------------------------------------------------------


LOGS_CHANNEL = "logs"
"""NOTIFY channel: the id of an execution process whose new lines a transaction stored."""


class LogRun(msgspec.Struct, frozen=True):
    """Lines of one execution process (one ``logs.append`` op) for :func:`insert_log_runs`."""

    assignment_id: uuid.UUID | None
    execution_process_id: uuid.UUID | None
    lines: Sequence[NewOutputLog]


async def insert_logs(
    conn: asyncpg.Connection,
    assignment_id: uuid.UUID | None,
    execution_process_id: uuid.UUID | None,
    lines: Sequence[NewOutputLog],
) -> int:
    """Bulk insert the log lines of one execution process; see :func:`insert_log_runs`."""
    return await insert_log_runs(conn, [LogRun(assignment_id, execution_process_id, lines)])


async def insert_log_runs(conn: asyncpg.Connection, runs: Sequence[LogRun]) -> int:
    """Insert the lines of several runs (of any execution processes) with one statement, in
    order (ids follow the list); NUL bytes are stripped.

    Lines whose (execution process, local log id) already exist are skipped, so re-sending a
    batch inserts nothing twice. Returns how many rows were inserted. The same statement NOTIFYs
    the id of each execution process that got rows on :data:`LOGS_CHANNEL`, once; it is
    delivered when the caller commits (PostgreSQL sends identical notifications of one
    transaction once), so a follower reads lines that are there.
    """
    rows = [(run, line) for run in runs for line in run.lines]
    if not rows:
        return 0
    counts = await conn.fetchrow(
        """
        WITH inserted AS (
            INSERT INTO node_task_output_logs (assignment_id, execution_process_id, output_type,
                content, "timestamp", local_log_id)
            SELECT u.assignment_id, u.process_id, u.output_type, u.content, COALESCE(u.ts, now()),
                u.local_log_id
            FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                        $6::bigint[]) WITH ORDINALITY
                AS u(assignment_id, process_id, output_type, content, ts, local_log_id, n)
            ORDER BY u.n
            ON CONFLICT (execution_process_id, local_log_id) DO NOTHING
            RETURNING execution_process_id
        )
        SELECT (SELECT count(*) FROM inserted) AS n,
               (SELECT count(pg_notify($7, p.id::text)) FROM (
                    SELECT DISTINCT execution_process_id AS id FROM inserted
                    WHERE execution_process_id IS NOT NULL) AS p) AS notified
        """,
        [run.assignment_id for run, _ in rows],
        [run.execution_process_id for run, _ in rows],
        [strip_nul(line.output_type) for _, line in rows],
        [strip_nul(line.content) for _, line in rows],
        [line.timestamp for _, line in rows],
        [line.local_log_id for _, line in rows],
        LOGS_CHANNEL,
    )
    return int(counts["n"])


async def list_logs(
    conn: asyncpg.Connection,
    *,
    assignment_id: uuid.UUID | None = None,
    execution_process_id: uuid.UUID | None = None,
    after_id: int = 0,
    limit: int = 100,
    direction: Literal["asc", "desc"] = "asc",
) -> list[OutputLog]:
    """Id-cursor paging over one assignment's or one process's logs.

    ``asc``: rows with id > ``after_id`` oldest first; ``desc``: rows with id < ``after_id``
    (0 = from the newest) newest first.
    """
    if (assignment_id is None) == (execution_process_id is None):
        raise ValueError("give exactly one of assignment_id and execution_process_id")
    limit = max(1, min(limit, 500))
    where = "assignment_id = $1" if assignment_id is not None else "execution_process_id = $1"
    key = assignment_id if assignment_id is not None else execution_process_id
    if direction == "asc":
        sql = f"SELECT {_LOG_COLUMNS} FROM node_task_output_logs WHERE {where} AND id > $2 "
        sql += "ORDER BY id LIMIT $3"
    else:
        sql = f"SELECT {_LOG_COLUMNS} FROM node_task_output_logs WHERE {where} "
        sql += "AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3"
    return from_rows(OutputLog, await conn.fetch(sql, key, after_id, limit))


async def organization_of_process(
    conn: asyncpg.Connection, execution_process_id: uuid.UUID
) -> uuid.UUID | None:
    """The organization of the node that ran the execution process (None: no such process)."""
    org: uuid.UUID | None = await conn.fetchval(
        "SELECT n.organization_id FROM node_execution_processes p "
        "JOIN nodes n ON n.id = p.node_id WHERE p.id = $1",
        execution_process_id,
    )
    return org


async def count_logs(conn: asyncpg.Connection, assignment_id: uuid.UUID) -> int:
    value = await conn.fetchval(
        "SELECT count(*) FROM node_task_output_logs WHERE assignment_id = $1", assignment_id
    )
    return int(value)


# --- progress events -----------------------------------------------------------------------------


async def create_progress_event(
    conn: asyncpg.Connection,
    assignment_id: uuid.UUID,
    event_type: str,
    message: str | None = None,
    metadata: Any = None,
) -> ProgressEvent:
    row = await conn.fetchrow(
        f"""
        INSERT INTO node_task_progress_events (assignment_id, event_type, message, metadata)
        VALUES ($1, $2, $3, $4) RETURNING {_EVENT_COLUMNS}
        """,
        assignment_id,
        event_type,
        None if message is None else strip_nul(message),
        metadata,
    )
    return from_row(ProgressEvent, row)


async def list_progress_events(
    conn: asyncpg.Connection, assignment_id: uuid.UUID
) -> list[ProgressEvent]:
    rows = await conn.fetch(
        f"SELECT {_EVENT_COLUMNS} FROM node_task_progress_events WHERE assignment_id = $1 "
        'ORDER BY "timestamp", id',
        assignment_id,
    )
    return from_rows(ProgressEvent, rows)


async def latest_progress_event(
    conn: asyncpg.Connection, assignment_id: uuid.UUID
) -> ProgressEvent | None:
    row = await conn.fetchrow(
        f"SELECT {_EVENT_COLUMNS} FROM node_task_progress_events WHERE assignment_id = $1 "
        'ORDER BY "timestamp" DESC, id DESC LIMIT 1',
        assignment_id,
    )
    return None if row is None else from_row(ProgressEvent, row)
