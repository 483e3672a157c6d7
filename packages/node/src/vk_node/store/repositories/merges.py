"""Merges of an attempt: direct merges and pull requests (with the PR monitor's status)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

import aiosqlite

from vk_node.errors import InvalidTransition, NotFound
from vk_node.store import milestones
from vk_node.store.codec import now_db, ts_to_db, uuid_to_db
from vk_node.store.models import Merge
from vk_node.store.sql import execute, fetch_model, fetch_models

__all__ = [
    "create_direct",
    "create_pr",
    "find_by_task_attempt_id",
    "find_latest_by_task_attempt_id",
    "get_open_prs",
    "update_status",
]


async def _get(conn: aiosqlite.Connection, merge_id: UUID) -> Merge:
    merge = await fetch_model(conn, Merge, "SELECT * FROM merges WHERE id = ?", (merge_id.bytes,))
    if merge is None:
        raise NotFound(f"merge {merge_id} not found")
    return merge


async def create_direct(
    conn: aiosqlite.Connection, attempt_id: UUID, target_branch: str, merge_commit: str
) -> Merge:
    merge_id = uuid4()
    await execute(
        conn,
        """INSERT INTO merges (id, task_attempt_id, merge_type, merge_commit, target_branch_name,
               created_at) VALUES (?, ?, 'direct', ?, ?, ?)""",
        (merge_id.bytes, uuid_to_db(attempt_id), merge_commit, target_branch, now_db()),
    )
    await milestones.merge_recorded(conn, attempt_id, target=target_branch)
    return await _get(conn, merge_id)


async def create_pr(
    conn: aiosqlite.Connection, attempt_id: UUID, target_branch: str, pr_number: int, pr_url: str
) -> Merge:
    merge_id = uuid4()
    await execute(
        conn,
        """INSERT INTO merges (id, task_attempt_id, merge_type, pr_number, pr_url, pr_status,
               target_branch_name, created_at) VALUES (?, ?, 'pr', ?, ?, 'open', ?, ?)""",
        (merge_id.bytes, uuid_to_db(attempt_id), pr_number, pr_url, target_branch, now_db()),
    )
    await milestones.merge_recorded(conn, attempt_id, target=target_branch, pr_url=pr_url)
    return await _get(conn, merge_id)


async def get_open_prs(conn: aiosqlite.Connection) -> list[Merge]:
    return await fetch_models(
        conn,
        Merge,
        """SELECT * FROM merges WHERE merge_type = 'pr' AND pr_status = 'open'
           ORDER BY created_at DESC""",
    )


async def update_status(
    conn: aiosqlite.Connection,
    merge_id: UUID,
    status: str,
    *,
    merge_commit_sha: str | None = None,
    merged_at: datetime | None = None,
) -> Merge:
    """PR monitor: move an open PR to ``merged`` or ``closed``."""
    if status not in ("open", "merged", "closed"):
        raise InvalidTransition(f"not a PR status: {status!r}")
    changed = await execute(
        conn,
        """UPDATE merges SET pr_status = ?, pr_merge_commit_sha = ?, pr_merged_at = ?
           WHERE id = ? AND merge_type = 'pr'""",
        (
            status,
            merge_commit_sha,
            None if merged_at is None else ts_to_db(merged_at),
            merge_id.bytes,
        ),
    )
    if not changed:
        raise NotFound(f"pull request merge {merge_id} not found")
    return await _get(conn, merge_id)


async def find_by_task_attempt_id(conn: aiosqlite.Connection, attempt_id: UUID) -> list[Merge]:
    return await fetch_models(
        conn,
        Merge,
        "SELECT * FROM merges WHERE task_attempt_id = ? ORDER BY created_at DESC, rowid DESC",
        (uuid_to_db(attempt_id),),
    )


async def find_latest_by_task_attempt_id(
    conn: aiosqlite.Connection, attempt_id: UUID
) -> Merge | None:
    return await fetch_model(
        conn,
        Merge,
        """SELECT * FROM merges WHERE task_attempt_id = ?
           ORDER BY created_at DESC, rowid DESC LIMIT 1""",
        (uuid_to_db(attempt_id),),
    )
