"""The durable node → hive outbox (DESIGN.md §3, protocol.md §4).

Every local write the hive must learn appends one op to ``node_outbox`` **on the same connection,
inside the same transaction** as the write: the enqueue functions refuse to run outside a
transaction, and any failure (including an op that would not be a valid wire payload) propagates
so the write rolls back with it — a write never commits without its op.

Only tasks of projects linked to a swarm project (``projects.remote_project_id IS NOT NULL``)
produce ops, and so do their attempts, execution processes and logs; the task/attempt/execution/
logs enqueue functions return ``None`` for everything else. ``assignment.status`` always enqueues
(an assignment exists only for hive work). ``progress.append`` and ``label.upsert`` are written
only while the hive the node last authenticated with announced them (``auth_result.features``,
kept in ``hive_link_state``): a hive of the previous release never gets an op it cannot decode.

``seq`` is assigned inside the INSERT (``COALESCE(MAX(seq), 0) + 1``) under SQLite's writer lock, so
it is gap-free and monotonic across concurrent writers.

Each payload is built once, validated once (``msgspec.convert`` into its wire type; a value the
hive would refuse raises :class:`InvalidOp`) and stored once as JSON. A row also keeps the local
task its op is about (``task_id``; NULL for ``assignment.status``), so the sender stamps fencing
tokens without looking anything up. ``logs.append`` rows store only the id range;
:func:`peek_to_send` (and :func:`peek_unacked` / :func:`peek_from_seq`) decode each payload once,
read the entries from ``log_entries`` and return ops ready to send as
:class:`vk_shared.wire.ops.OutboxOp`.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import aiosqlite
import msgspec

from vk_node.errors import InvalidOp
from vk_node.store.codec import decode_row, now_db, ts_from_db, uuid_from_db, uuid_to_db
from vk_node.store.models import Label, Task
from vk_node.store.repositories import link_state
from vk_node.store.signals import mark_enqueued
from vk_node.store.sql import execute, fetch_all, fetch_one, fetch_value
from vk_shared.protocol import FEATURE_LABEL_OPS, FEATURE_PROGRESS_OPS
from vk_shared.status import ExecutionStatus
from vk_shared.wire.ops import (
    AssignmentStatus,
    AttemptUpsert,
    ExecutionUpsert,
    LabelUpsert,
    LogEntry,
    LogsAppend,
    OpPayload,
    OpType,
    OutboxOp,
    OutputType,
    ProcessStatus,
    ProgressAppend,
    ProgressEventType,
    TaskUpsert,
)

__all__ = [
    "WIRE_LOG_TYPES",
    "QueuedOp",
    "ack_through",
    "backlog_count",
    "enqueue_assignment_status",
    "enqueue_attempt_upsert",
    "enqueue_execution_upsert",
    "enqueue_label_upsert",
    "enqueue_logs_append",
    "enqueue_progress",
    "enqueue_task",
    "enqueue_task_upsert",
    "has_unacked_for_entity",
    "last_acked_seq",
    "last_seq",
    "oldest_unacked_created_at",
    "peek_from_seq",
    "peek_to_send",
    "peek_unacked",
    "record_rejection",
    "task_ids_of_upserts",
]

WIRE_LOG_TYPES: tuple[str, ...] = tuple(t.value for t in OutputType)
"""Log output types that travel in ``logs.append`` (the others are local UI/session markers)."""

_PAYLOAD_DECODER: msgspec.json.Decoder[OpPayload] = msgspec.json.Decoder(OpPayload)
_ENCODER = msgspec.json.Encoder()

_INSERT = """
INSERT INTO node_outbox
    (id, seq, op_type, entity_type, entity_id, task_id, payload, idempotency_key, fencing_token,
     created_at)
VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM node_outbox), ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING seq
"""


class QueuedOp(NamedTuple):
    """An op ready to send and the local task it is about (``None``: an ``assignment.status``,
    or a task, attempt or execution that no longer exists)."""

    op: OutboxOp
    task_id: UUID | None


def _require_transaction(conn: aiosqlite.Connection) -> None:
    if not conn.in_transaction:
        raise RuntimeError("outbox ops must be enqueued inside the write's transaction")


async def _enqueue(
    conn: aiosqlite.Connection,
    payload_type: type[OpPayload],
    data: dict[str, Any],
    *,
    entity_type: str,
    entity_id: UUID,
    task_id: UUID | None,
    fencing_token: int | None = None,
) -> int:
    """Validate ``data`` as ``payload_type`` and append it. ``data`` holds the payload's fields
    (UUIDs, aware datetimes, enums as they are); it is stored as given, tag included."""
    _require_transaction(conn)
    op_type = str(payload_type.__struct_config__.tag)
    data["op_type"] = op_type
    try:
        msgspec.convert(data, payload_type)
    except msgspec.ValidationError as exc:
        raise InvalidOp(f"{entity_type} {entity_id}: invalid outbox payload: {exc}") from exc
    seq = await fetch_value(
        conn,
        _INSERT,
        (
            uuid_to_db(uuid4()),
            op_type,
            entity_type,
            uuid_to_db(entity_id),
            None if task_id is None else uuid_to_db(task_id),
            _ENCODER.encode(data).decode(),
            f"{entity_type}:{entity_id}:{uuid4()}",
            fencing_token,
            now_db(),
        ),
    )
    mark_enqueued(conn)
    return int(seq)


def _ts(value: str | None) -> datetime | None:
    return None if value is None else ts_from_db(value)


def _uuid(value: bytes | str | None) -> UUID | None:
    return None if value is None else uuid_from_db(value)


# --- enqueue ----------------------------------------------------------------------------------


async def enqueue_task(conn: aiosqlite.Connection, task: Task, *, linked: bool) -> int | None:
    """Append ``task.upsert`` with the whole task as the write left it (``linked``: its project
    is linked to a swarm project; ``None`` is returned otherwise)."""
    if not linked:
        return None
    shared = task.shared_task_id
    data = {
        "id": task.id,
        "project_id": task.project_id,
        "shared_task_id": shared,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "parent_task_id": task.parent_task_id,
        "archived_at": task.archived_at,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "remote_version": task.remote_version if shared is not None else 0,
    }
    return await _enqueue(
        conn, TaskUpsert, data, entity_type="task", entity_id=task.id, task_id=task.id
    )


async def enqueue_task_upsert(conn: aiosqlite.Connection, task_id: UUID) -> int | None:
    """Read the task and :func:`enqueue_task` it (for callers that do not hold the row)."""
    row = await fetch_one(
        conn,
        """SELECT t.*, p.remote_project_id AS linked_remote_project_id
           FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.id = ?""",
        (uuid_to_db(task_id),),
    )
    if row is None:
        raise InvalidOp(f"task {task_id} does not exist")
    linked = row["linked_remote_project_id"] is not None
    return await enqueue_task(conn, decode_row(Task, row), linked=linked)


async def enqueue_attempt_upsert(
    conn: aiosqlite.Connection, attempt_id: UUID, *, fencing_token: int | None = None
) -> int | None:
    """Append ``attempt.upsert``; ``None`` when the attempt's project is not linked."""
    row = await fetch_one(
        conn,
        """SELECT a.*, t.shared_task_id, p.remote_project_id
           FROM task_attempts a JOIN tasks t ON t.id = a.task_id
           JOIN projects p ON p.id = t.project_id WHERE a.id = ?""",
        (uuid_to_db(attempt_id),),
    )
    if row is None:
        raise InvalidOp(f"attempt {attempt_id} does not exist")
    if row["remote_project_id"] is None:
        return None
    task_id = uuid_from_db(row["task_id"])
    data = {
        "id": attempt_id,
        "task_id": task_id,
        "shared_task_id": _uuid(row["shared_task_id"]),
        "assignment_id": _uuid(row["hive_assignment_id"]),
        "executor": row["executor"] or "",
        "branch": row["branch"],
        "target_branch": row["target_branch"],
        "worktree_deleted": bool(row["worktree_deleted"]),
        "setup_completed_at": _ts(row["setup_completed_at"]),
        "created_at": ts_from_db(row["created_at"]),
        "updated_at": ts_from_db(row["updated_at"]),
    }
    return await _enqueue(
        conn,
        AttemptUpsert,
        data,
        entity_type="attempt",
        entity_id=attempt_id,
        task_id=task_id,
        fencing_token=fencing_token,
    )


async def _linked_execution(conn: aiosqlite.Connection, execution_id: UUID) -> sqlite3.Row:
    row = await fetch_one(
        conn,
        """SELECT e.*, a.task_id AS attempt_task_id, p.remote_project_id
           FROM execution_processes e
           JOIN task_attempts a ON a.id = e.task_attempt_id JOIN tasks t ON t.id = a.task_id
           JOIN projects p ON p.id = t.project_id WHERE e.id = ?""",
        (uuid_to_db(execution_id),),
    )
    if row is None:
        raise InvalidOp(f"execution process {execution_id} does not exist")
    return row


async def enqueue_execution_upsert(conn: aiosqlite.Connection, execution_id: UUID) -> int | None:
    """Append ``execution.upsert``; ``None`` when the process's project is not linked."""
    row = await _linked_execution(conn, execution_id)
    if row["remote_project_id"] is None:
        return None
    try:
        action = json.loads(row["executor_action"]) if row["executor_action"] else {}
    except ValueError:
        action = {}
    data = {
        "id": execution_id,
        "attempt_id": uuid_from_db(row["task_attempt_id"]),
        "run_reason": row["run_reason"],
        "executor_action": action if isinstance(action, dict) else {},
        "before_head_commit": row["before_head_commit"],
        "after_head_commit": row["after_head_commit"],
        "status": ProcessStatus(row["status"]),
        "exit_code": row["exit_code"],
        "dropped": bool(row["dropped"]),
        "pid": row["pid"],
        "started_at": ts_from_db(row["started_at"]),
        "completed_at": _ts(row["completed_at"]),
    }
    return await _enqueue(
        conn,
        ExecutionUpsert,
        data,
        entity_type="execution",
        entity_id=execution_id,
        task_id=uuid_from_db(row["attempt_task_id"]),
    )


async def enqueue_logs_append(
    conn: aiosqlite.Connection, execution_id: UUID, first_log_id: int, last_log_id: int
) -> int | None:
    """Append ``logs.append`` for ids ``first..last`` of one execution; ``None`` when unlinked."""
    row = await _linked_execution(conn, execution_id)
    if row["remote_project_id"] is None:
        return None
    data = {"execution_id": execution_id, "first_log_id": first_log_id, "last_log_id": last_log_id}
    return await _enqueue(
        conn,
        LogsAppend,
        data,
        entity_type="execution",
        entity_id=execution_id,
        task_id=uuid_from_db(row["attempt_task_id"]),
    )


async def enqueue_assignment_status(
    conn: aiosqlite.Connection,
    assignment_id: UUID,
    status: ExecutionStatus,
    *,
    local_task_id: UUID | None = None,
    local_attempt_id: UUID | None = None,
    message: str | None = None,
    fencing_token: int | None = None,
) -> int:
    """Append ``assignment.status`` (always: assignments exist only for hive work)."""
    data = {
        "assignment_id": assignment_id,
        "status": status,
        "local_task_id": local_task_id,
        "local_attempt_id": local_attempt_id,
        "message": message,
    }
    return await _enqueue(
        conn,
        AssignmentStatus,
        data,
        entity_type="assignment",
        entity_id=assignment_id,
        task_id=None,
        fencing_token=fencing_token,
    )


async def enqueue_progress(
    conn: aiosqlite.Connection,
    attempt_id: UUID,
    event_type: ProgressEventType,
    *,
    execution_id: UUID | None = None,
    message: str | None = None,
) -> int | None:
    """Append ``progress.append`` (a milestone of a run of the attempt); ``None`` when the
    attempt's project is not linked or the hive does not apply progress ops."""
    row = await fetch_one(
        conn,
        """SELECT a.task_id, p.remote_project_id FROM task_attempts a
           JOIN tasks t ON t.id = a.task_id JOIN projects p ON p.id = t.project_id
           WHERE a.id = ?""",
        (uuid_to_db(attempt_id),),
    )
    if row is None:
        raise InvalidOp(f"attempt {attempt_id} does not exist")
    if row["remote_project_id"] is None:
        return None
    if FEATURE_PROGRESS_OPS not in await link_state.hive_features(conn):
        return None
    event_id = uuid4()
    data = {
        "id": event_id,
        "attempt_id": attempt_id,
        "execution_id": execution_id,
        "event_type": event_type,
        "message": message,
        "timestamp": ts_from_db(now_db()),
    }
    return await _enqueue(
        conn,
        ProgressAppend,
        data,
        entity_type="progress",
        entity_id=event_id,
        task_id=uuid_from_db(row["task_id"]),
    )


async def enqueue_label_upsert(conn: aiosqlite.Connection, label: Label) -> int | None:
    """Append ``label.upsert`` for a label of a linked project; ``None`` for a global label, a
    label of an unlinked project, a hive label's copy, or a hive that does not apply label ops."""
    if label.project_id is None or label.shared_label_id not in (None, label.id):
        return None
    linked = await fetch_value(
        conn, "SELECT remote_project_id FROM projects WHERE id = ?", (uuid_to_db(label.project_id),)
    )
    if linked is None or FEATURE_LABEL_OPS not in await link_state.hive_features(conn):
        return None
    data = {
        "id": label.id,
        "project_id": label.project_id,
        "name": label.name,
        "icon": label.icon,
        "color": label.color,
    }
    return await _enqueue(
        conn, LabelUpsert, data, entity_type="label", entity_id=label.id, task_id=None
    )


# --- send side --------------------------------------------------------------------------------

_SELECT = """SELECT seq, entity_id, task_id, payload, idempotency_key, fencing_token
FROM node_outbox"""


async def _to_ops(conn: aiosqlite.Connection, rows: list[sqlite3.Row]) -> list[QueuedOp]:
    ops: list[QueuedOp] = []
    for row in rows:
        payload = _PAYLOAD_DECODER.decode(row["payload"])
        if isinstance(payload, LogsAppend):
            payload = msgspec.structs.replace(payload, entries=await _log_entries(conn, payload))
        op = OutboxOp(
            seq=int(row["seq"]),
            entity_id=uuid_from_db(row["entity_id"]),
            idempotency_key=row["idempotency_key"],
            fencing_token=row["fencing_token"],
            payload=payload,
        )
        ops.append(QueuedOp(op, _uuid(row["task_id"])))
    return ops


async def _log_entries(conn: aiosqlite.Connection, op: LogsAppend) -> list[LogEntry]:
    rows = await fetch_all(
        conn,
        """SELECT id, output_type, content, timestamp FROM log_entries
           WHERE execution_id = ? AND id BETWEEN ? AND ? AND output_type IN (?, ?, ?)
           ORDER BY id""",
        (uuid_to_db(op.execution_id), op.first_log_id, op.last_log_id, *WIRE_LOG_TYPES),
    )
    return [
        LogEntry(
            id=int(r["id"]),
            output_type=OutputType(r["output_type"]),
            content=r["content"],
            timestamp=ts_from_db(r["timestamp"]),
        )
        for r in rows
    ]


async def peek_unacked(conn: aiosqlite.Connection, limit: int) -> list[OutboxOp]:
    """Up to ``limit`` unacked ops in seq order, ready to send (log entries filled in)."""
    rows = await fetch_all(
        conn, _SELECT + " WHERE acked_at IS NULL ORDER BY seq LIMIT ?", (int(limit),)
    )
    return [q.op for q in await _to_ops(conn, rows)]


async def peek_to_send(conn: aiosqlite.Connection, seq: int, limit: int) -> list[QueuedOp]:
    """Up to ``limit`` ops with ``seq >= seq``, acked or not, excluding rejected ones (resend),
    each with the local task it is about."""
    rows = await fetch_all(
        conn,
        _SELECT + " WHERE seq >= ? AND rejected_at IS NULL ORDER BY seq LIMIT ?",
        (int(seq), int(limit)),
    )
    return await _to_ops(conn, rows)


async def peek_from_seq(conn: aiosqlite.Connection, seq: int, limit: int) -> list[OutboxOp]:
    """The ops of :func:`peek_to_send` alone."""
    return [q.op for q in await peek_to_send(conn, seq, limit)]


async def ack_through(conn: aiosqlite.Connection, seq: int) -> int:
    """Mark every unacked op with ``seq <= seq`` acked; return how many changed."""
    return await execute(
        conn,
        "UPDATE node_outbox SET acked_at = ? WHERE acked_at IS NULL AND seq <= ?",
        (now_db(), int(seq)),
    )


async def record_rejection(
    conn: aiosqlite.Connection, seq: int, idempotency_key: str, code: str, reason: str
) -> bool:
    """Record the hive's ``op_rejected`` for the op ``seq`` with ``idempotency_key``: acked with
    its rejection, so it never blocks the queue. Returns whether such an op exists (a seq whose
    key differs is not this node's op and changes nothing)."""
    now = now_db()
    changed = await execute(
        conn,
        """UPDATE node_outbox SET acked_at = COALESCE(acked_at, ?), rejected_at = ?,
               reject_code = ?, reject_reason = ?
           WHERE seq = ? AND idempotency_key = ?""",
        (now, now, code, reason, int(seq), idempotency_key),
    )
    return changed > 0


async def has_unacked_for_entity(conn: aiosqlite.Connection, entity_id: UUID) -> bool:
    """Whether any op about ``entity_id`` is still unacked (the dirty guard)."""
    value = await fetch_value(
        conn,
        "SELECT EXISTS (SELECT 1 FROM node_outbox WHERE entity_id = ? AND acked_at IS NULL)",
        (uuid_to_db(entity_id),),
    )
    return bool(value)


async def task_ids_of_upserts(conn: aiosqlite.Connection, seqs: list[int]) -> dict[int, UUID]:
    """The local task of each ``task.upsert`` op among ``seqs`` (other ops are left out)."""
    if not seqs:
        return {}
    marks = ",".join("?" * len(seqs))
    rows = await fetch_all(
        conn,
        f"""SELECT seq, task_id FROM node_outbox
            WHERE seq IN ({marks}) AND op_type = ? AND task_id IS NOT NULL""",  # noqa: S608
        (*(int(seq) for seq in seqs), OpType.TASK_UPSERT.value),
    )
    return {int(row["seq"]): uuid_from_db(row["task_id"]) for row in rows}


async def backlog_count(conn: aiosqlite.Connection) -> int:
    """Number of unacked ops."""
    return int(await fetch_value(conn, "SELECT COUNT(*) FROM node_outbox WHERE acked_at IS NULL"))


async def oldest_unacked_created_at(conn: aiosqlite.Connection) -> datetime | None:
    """When the oldest op still waiting for the hive was written (``None`` = nothing waits)."""
    value = await fetch_value(
        conn, "SELECT MIN(created_at) FROM node_outbox WHERE acked_at IS NULL"
    )
    return None if value is None else ts_from_db(value)


async def last_acked_seq(conn: aiosqlite.Connection) -> int:
    """The contiguous ack frontier: every op with ``seq <=`` this is acked (0 = none)."""
    first_unacked = await fetch_value(
        conn, "SELECT MIN(seq) FROM node_outbox WHERE acked_at IS NULL"
    )
    if first_unacked is not None:
        return int(first_unacked) - 1
    return int(await fetch_value(conn, "SELECT COALESCE(MAX(seq), 0) FROM node_outbox"))


async def last_seq(conn: aiosqlite.Connection) -> int:
    """The highest seq ever written (0 = empty outbox), sent as ``digest.last_seq``."""
    return int(await fetch_value(conn, "SELECT COALESCE(MAX(seq), 0) FROM node_outbox"))
