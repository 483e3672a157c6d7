"""Normalized log rows (``log_entries``, paging and hive mirroring) and the raw JSONL chunks of a
run (``execution_process_logs``).

:func:`append_many` inserts many lines with one INSERT per chunk of at most
``MAX_LOG_ENTRIES_PER_OP`` lines and appends one ``logs.append`` op per chunk (linked projects
only) naming the id range just inserted; the op carries no content (read at send time).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import aiosqlite

from vk_node.errors import NotFound
from vk_node.store import milestones, outbox
from vk_node.store.codec import now_db, ts_to_db, uuid_to_db
from vk_node.store.models import LogEntry, LogPage, RawLogChunk
from vk_node.store.sql import execute, fetch_all, fetch_model, fetch_models, fetch_value
from vk_shared.protocol import MAX_LOG_CONTENT_BYTES, MAX_LOG_ENTRIES_PER_OP

_OUTPUT = frozenset({"stdout", "stderr"})
"""Output types whose first line is a run's "first output" milestone."""

__all__ = [
    "OUTPUT_TYPES",
    "append_log_line",
    "append_many",
    "contains_session_invalid_error",
    "count_older_than",
    "create",
    "delete_by_execution_id",
    "delete_of_processes_finished_before",
    "delete_older_than",
    "find_after_id",
    "find_by_execution_id",
    "find_by_execution_id_after",
    "find_by_id",
    "find_paginated",
    "find_raw_by_execution_id",
]

OUTPUT_TYPES = frozenset(
    {"stdout", "stderr", "system", "json_patch", "session_id", "finished", "refresh_required"}
)
_SESSION_INVALID_MARKERS = ("session not found", "invalid session", "no conversation found")


def _split(content: str) -> list[str]:
    if len(content) <= MAX_LOG_CONTENT_BYTES:
        return [content]
    return [
        content[i : i + MAX_LOG_CONTENT_BYTES]
        for i in range(0, len(content), MAX_LOG_CONTENT_BYTES)
    ]


async def append_many(
    conn: aiosqlite.Connection,
    execution_id: UUID,
    lines: Sequence[tuple[str, str]],
    *,
    timestamp: datetime | None = None,
) -> list[LogEntry]:
    """Insert ``(output_type, content)`` lines in order; returns the rows with their ids.

    Content longer than the wire limit is split into several rows. One ``logs.append`` op per
    chunk of at most ``MAX_LOG_ENTRIES_PER_OP`` rows.
    """
    ts = now_db() if timestamp is None else ts_to_db(timestamp)
    execution = uuid_to_db(execution_id)
    rows: list[tuple[str, str]] = []
    for output_type, content in lines:
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"not a log output type: {output_type!r}")
        rows.extend((output_type, piece) for piece in _split(content))
    first_output = any(t in _OUTPUT for t, _ in rows) and not await milestones.had_output(
        conn, execution_id
    )
    inserted: list[LogEntry] = []
    for start in range(0, len(rows), MAX_LOG_ENTRIES_PER_OP):
        chunk = rows[start : start + MAX_LOG_ENTRIES_PER_OP]
        values = ", ".join("(?, ?, ?, ?)" for _ in chunk)
        params: list[object] = []
        for output_type, content in chunk:
            params.extend((execution, output_type, content, ts))
        entries = await fetch_models(
            conn,
            LogEntry,
            "INSERT INTO log_entries (execution_id, output_type, content, timestamp) "  # noqa: S608
            f"VALUES {values} RETURNING *",
            params,
        )
        entries.sort(key=lambda e: e.id)
        await outbox.enqueue_logs_append(conn, execution_id, entries[0].id, entries[-1].id)
        inserted.extend(entries)
    if first_output:
        await milestones.output_stored(conn, execution_id)
    return inserted


async def create(
    conn: aiosqlite.Connection, execution_id: UUID, output_type: str, content: str
) -> LogEntry:
    """Insert one line (see :func:`append_many`); returns the row with its new id."""
    return (await append_many(conn, execution_id, [(output_type, content)]))[0]


async def find_by_id(conn: aiosqlite.Connection, log_id: int) -> LogEntry | None:
    return await fetch_model(conn, LogEntry, "SELECT * FROM log_entries WHERE id = ?", (log_id,))


async def find_by_execution_id(conn: aiosqlite.Connection, execution_id: UUID) -> list[LogEntry]:
    return await fetch_models(
        conn,
        LogEntry,
        "SELECT * FROM log_entries WHERE execution_id = ? ORDER BY id",
        (uuid_to_db(execution_id),),
    )


async def find_by_execution_id_after(
    conn: aiosqlite.Connection, execution_id: UUID, after: datetime
) -> list[LogEntry]:
    return await fetch_models(
        conn,
        LogEntry,
        "SELECT * FROM log_entries WHERE execution_id = ? AND timestamp > ? ORDER BY id",
        (uuid_to_db(execution_id), ts_to_db(after)),
    )


async def find_after_id(
    conn: aiosqlite.Connection, execution_id: UUID, after_id: int, limit: int
) -> list[LogEntry]:
    """Entries with ``id > after_id`` in id order (a tailing reader's cursor)."""
    return await fetch_models(
        conn,
        LogEntry,
        "SELECT * FROM log_entries WHERE execution_id = ? AND id > ? ORDER BY id LIMIT ?",
        (uuid_to_db(execution_id), int(after_id), int(limit)),
    )


async def find_paginated(
    conn: aiosqlite.Connection,
    execution_id: UUID,
    *,
    cursor: int | None = None,
    limit: int = 100,
    direction: str = "forward",
) -> LogPage:
    """One page of an execution's entries.

    ``forward``: ``id > cursor`` ascending (from the start when no cursor); ``backward``:
    ``id < cursor`` descending (from the end when no cursor). ``has_more`` says whether entries
    remain beyond this page in that direction; ``next_cursor`` is the id to continue from (the
    last entry's id, or the given cursor on an empty page).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    execution = uuid_to_db(execution_id)
    total = int(
        await fetch_value(
            conn, "SELECT COUNT(*) FROM log_entries WHERE execution_id = ?", (execution,)
        )
    )
    if direction == "forward":
        sql = "SELECT * FROM log_entries WHERE execution_id = ? AND id > ? ORDER BY id LIMIT ?"
        start = 0 if cursor is None else cursor
    elif direction == "backward":
        sql = "SELECT * FROM log_entries WHERE execution_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
        start = 2**63 - 1 if cursor is None else cursor
    else:
        raise ValueError(f"direction must be 'forward' or 'backward', not {direction!r}")
    entries = await fetch_models(conn, LogEntry, sql, (execution, start, limit + 1))
    has_more = len(entries) > limit
    entries = entries[:limit]
    next_cursor = entries[-1].id if entries else cursor
    return LogPage(entries=entries, next_cursor=next_cursor, has_more=has_more, total_count=total)


async def delete_by_execution_id(conn: aiosqlite.Connection, execution_id: UUID) -> int:
    return await execute(
        conn, "DELETE FROM log_entries WHERE execution_id = ?", (uuid_to_db(execution_id),)
    )


async def count_older_than(conn: aiosqlite.Connection, ts: datetime) -> int:
    return int(
        await fetch_value(
            conn, "SELECT COUNT(*) FROM log_entries WHERE timestamp < ?", (ts_to_db(ts),)
        )
    )


async def delete_older_than(conn: aiosqlite.Connection, ts: datetime, batch: int) -> int:
    """Delete at most ``batch`` entries older than ``ts`` (call repeatedly, one tx each)."""
    return await execute(
        conn,
        """DELETE FROM log_entries WHERE id IN
           (SELECT id FROM log_entries WHERE timestamp < ? ORDER BY id LIMIT ?)""",
        (ts_to_db(ts), int(batch)),
    )


# Finished runs whose logs the hive has (no unacknowledged op of the run still reads them).
_FINISHED_BEFORE = """(SELECT p.id FROM execution_processes p
    WHERE p.status <> 'running' AND p.completed_at < ?
      AND NOT EXISTS (SELECT 1 FROM node_outbox o
                      WHERE o.entity_id = p.id AND o.acked_at IS NULL))"""
_PURGE_ENTRIES = "".join(
    (
        "DELETE FROM log_entries WHERE id IN (SELECT l.id FROM log_entries l ",
        "WHERE l.execution_id IN ",
        _FINISHED_BEFORE,
        " LIMIT ?)",
    )
)
_PURGE_CHUNKS = "".join(
    (
        "DELETE FROM execution_process_logs WHERE rowid IN (SELECT r.rowid FROM ",
        "execution_process_logs r WHERE r.execution_id IN ",
        _FINISHED_BEFORE,
        " LIMIT ?)",
    )
)


async def delete_of_processes_finished_before(
    conn: aiosqlite.Connection, ts: datetime, batch: int
) -> tuple[int, int]:
    """Delete at most ``batch`` log entries and ``batch`` raw JSONL chunks of processes that
    finished (not running) before ``ts`` and have no op waiting for the hive (a ``logs.append``
    reads its entries when it is sent); returns both counts (call repeatedly, one tx each, until
    both are 0). The processes themselves stay."""
    params = (ts_to_db(ts), int(batch))
    entries = await execute(conn, _PURGE_ENTRIES, params)
    chunks = await execute(conn, _PURGE_CHUNKS, params)
    return entries, chunks


# --- raw JSONL chunks -------------------------------------------------------------------------


async def append_log_line(conn: aiosqlite.Connection, execution_id: UUID, line: str) -> None:
    """Append one JSONL line (a newline is added when missing)."""
    text = line if line.endswith("\n") else line + "\n"
    changed = await execute(
        conn,
        """INSERT INTO execution_process_logs (execution_id, logs, byte_size, inserted_at)
           SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM execution_processes WHERE id = ?)""",
        (
            uuid_to_db(execution_id),
            text,
            len(text.encode()),
            now_db(),
            uuid_to_db(execution_id),
        ),
    )
    if not changed:
        raise NotFound(f"execution process {execution_id} not found")


async def find_raw_by_execution_id(
    conn: aiosqlite.Connection, execution_id: UUID
) -> list[RawLogChunk]:
    return await fetch_models(
        conn,
        RawLogChunk,
        """SELECT * FROM execution_process_logs WHERE execution_id = ?
           ORDER BY inserted_at, rowid""",
        (uuid_to_db(execution_id),),
    )


async def contains_session_invalid_error(conn: aiosqlite.Connection, execution_id: UUID) -> bool:
    """Whether the raw log holds the agent's "session not found/invalid" error."""
    rows = await fetch_all(
        conn,
        "SELECT logs FROM execution_process_logs WHERE execution_id = ?",
        (uuid_to_db(execution_id),),
    )
    return any(marker in str(r[0]).lower() for r in rows for marker in _SESSION_INVALID_MARKERS)
