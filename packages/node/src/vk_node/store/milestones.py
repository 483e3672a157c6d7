"""Milestones of a run, reported to the hive as ``progress.append`` ops (docs/sync-protocol.md,
"Progress and labels from a node").

Each is written by the repository function that records the fact, in its transaction, so a
milestone commits with the write it reports and reaches the hive through the outbox like the
execution data (a disconnect loses nothing; the hive stores each event once). Only the coding
agent's process (``codingagent``: an agent, or a ``SCRIPT`` task's script) reports: setup,
cleanup and dev-server scripts are steps of a run, not its milestones.

- started: the process row is created;
- first output: its first stdout/stderr line is stored;
- finished / failed: its end is recorded (``completed`` / ``failed`` or ``killed``);
- merged / pull request: the attempt's merge is recorded.
"""

from __future__ import annotations

from uuid import UUID

import aiosqlite

from vk_node.store import outbox
from vk_node.store.codec import uuid_from_db, uuid_to_db
from vk_node.store.sql import fetch_one, fetch_value
from vk_shared.wire.ops import ProgressEventType

__all__ = ["had_output", "merge_recorded", "output_stored", "process_ended", "process_started"]

_MAIN_RUN = "codingagent"


async def _main_run(conn: aiosqlite.Connection, execution_id: UUID) -> UUID | None:
    """The attempt of the execution when it is an attempt's main run."""
    row = await fetch_one(
        conn,
        "SELECT task_attempt_id, run_reason FROM execution_processes WHERE id = ?",
        (uuid_to_db(execution_id),),
    )
    if row is None or row["run_reason"] != _MAIN_RUN:
        return None
    return uuid_from_db(row["task_attempt_id"])


async def process_started(conn: aiosqlite.Connection, execution_id: UUID) -> None:
    attempt_id = await _main_run(conn, execution_id)
    if attempt_id is not None:
        await outbox.enqueue_progress(
            conn,
            attempt_id,
            ProgressEventType.AGENT_STARTED,
            execution_id=execution_id,
            message="run started",
        )


async def had_output(conn: aiosqlite.Connection, execution_id: UUID) -> bool:
    """Whether the execution has stored a stdout/stderr line (read before a new insert)."""
    value = await fetch_value(
        conn,
        """SELECT EXISTS (SELECT 1 FROM log_entries WHERE execution_id = ?
               AND output_type IN ('stdout', 'stderr'))""",
        (uuid_to_db(execution_id),),
    )
    return bool(value)


async def output_stored(conn: aiosqlite.Connection, execution_id: UUID) -> None:
    """After the first stdout/stderr line of the execution was stored."""
    attempt_id = await _main_run(conn, execution_id)
    if attempt_id is not None:
        await outbox.enqueue_progress(
            conn,
            attempt_id,
            ProgressEventType.FIRST_OUTPUT,
            execution_id=execution_id,
            message="first output",
        )


async def process_ended(
    conn: aiosqlite.Connection, execution_id: UUID, status: str, exit_code: int | None
) -> None:
    if status == "running":
        return
    attempt_id = await _main_run(conn, execution_id)
    if attempt_id is None:
        return
    finished = status == "completed"
    detail = status if exit_code is None else f"{status}, exit code {exit_code}"
    await outbox.enqueue_progress(
        conn,
        attempt_id,
        ProgressEventType.AGENT_FINISHED if finished else ProgressEventType.AGENT_FAILED,
        execution_id=execution_id,
        message=f"run ended: {detail}",
    )


async def merge_recorded(
    conn: aiosqlite.Connection, attempt_id: UUID, *, target: str, pr_url: str | None = None
) -> None:
    if pr_url is None:
        await outbox.enqueue_progress(
            conn, attempt_id, ProgressEventType.MERGED, message=f"merged into {target}"
        )
    else:
        await outbox.enqueue_progress(
            conn,
            attempt_id,
            ProgressEventType.PULL_REQUEST_CREATED,
            message=f"pull request into {target}: {pr_url}",
        )
