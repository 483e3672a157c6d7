"""Drafts of follow-up / retry prompts, one per (attempt, type), with optimistic versions and a
queued → sending hand-off. ``updated_at`` is maintained by a trigger."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import aiosqlite

from vk_node.store.codec import uuid_or_none, uuid_to_db
from vk_node.store.models import Draft
from vk_node.store.sql import execute, fetch_model

__all__ = [
    "clear_after_send",
    "delete",
    "find_by_task_attempt_and_type",
    "set_queued",
    "try_mark_sending",
    "update_partial",
    "upsert",
]

_JSON = ("image_ids",)


def _check_type(draft_type: str) -> None:
    if draft_type not in ("follow_up", "retry"):
        raise ValueError(f"not a draft type: {draft_type!r}")


async def find_by_task_attempt_and_type(
    conn: aiosqlite.Connection, attempt_id: UUID, draft_type: str
) -> Draft | None:
    return await fetch_model(
        conn,
        Draft,
        "SELECT * FROM drafts WHERE task_attempt_id = ? AND draft_type = ?",
        (uuid_to_db(attempt_id), draft_type),
        json=_JSON,
    )


async def _get(conn: aiosqlite.Connection, attempt_id: UUID, draft_type: str) -> Draft:
    draft = await find_by_task_attempt_and_type(conn, attempt_id, draft_type)
    assert draft is not None
    return draft


def _images(image_ids: list[UUID] | None) -> str | None:
    return None if image_ids is None else json.dumps([str(i) for i in image_ids])


async def upsert(
    conn: aiosqlite.Connection,
    attempt_id: UUID,
    draft_type: str,
    *,
    prompt: str,
    retry_process_id: UUID | None = None,
    variant: str | None = None,
    image_ids: list[UUID] | None = None,
) -> Draft:
    """Create or overwrite the draft; every write bumps ``version``."""
    _check_type(draft_type)
    await execute(
        conn,
        """INSERT INTO drafts (id, task_attempt_id, draft_type, retry_process_id, prompt,
               variant, image_ids, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)
           ON CONFLICT (task_attempt_id, draft_type) DO UPDATE SET
               retry_process_id = excluded.retry_process_id, prompt = excluded.prompt,
               variant = excluded.variant, image_ids = excluded.image_ids,
               version = drafts.version + 1""",
        (
            str(uuid4()),
            uuid_to_db(attempt_id),
            draft_type,
            uuid_or_none(retry_process_id),
            prompt,
            variant,
            _images(image_ids),
        ),
    )
    return await _get(conn, attempt_id, draft_type)


_FIELDS = ("prompt", "variant", "image_ids", "retry_process_id")


async def update_partial(
    conn: aiosqlite.Connection, attempt_id: UUID, draft_type: str, **changes: Any
) -> Draft | None:
    """Change only the given fields (``prompt``, ``variant``, ``image_ids``,
    ``retry_process_id``); bumps ``version``. ``None`` when there is no such draft."""
    current = await find_by_task_attempt_and_type(conn, attempt_id, draft_type)
    if current is None:
        return None
    unknown = set(changes) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown draft fields: {sorted(unknown)}")
    prompt = changes.get("prompt", current.prompt)
    variant = changes.get("variant", current.variant)
    images = changes.get("image_ids", current.image_ids)
    retry = changes.get("retry_process_id", current.retry_process_id)
    await execute(
        conn,
        """UPDATE drafts SET prompt = ?, variant = ?, image_ids = ?, retry_process_id = ?,
               version = version + 1 WHERE task_attempt_id = ? AND draft_type = ?""",
        (prompt, variant, _images(images), uuid_or_none(retry), uuid_to_db(attempt_id), draft_type),
    )
    return await _get(conn, attempt_id, draft_type)


async def set_queued(
    conn: aiosqlite.Connection,
    attempt_id: UUID,
    draft_type: str,
    queued: bool,
    *,
    expected_queued: bool | None = None,
    expected_version: int | None = None,
) -> bool:
    """Queue (only with a non-blank prompt) or unqueue; optional compare-and-set on the current
    ``queued`` flag and ``version``. Returns whether the draft changed."""
    return bool(
        await execute(
            conn,
            """UPDATE drafts SET queued = ?, version = version + 1
               WHERE task_attempt_id = ? AND draft_type = ?
                 AND (? = 0 OR TRIM(prompt) <> '')
                 AND (? IS NULL OR queued = ?) AND (? IS NULL OR version = ?)""",
            (
                int(queued),
                uuid_to_db(attempt_id),
                draft_type,
                int(queued),
                None if expected_queued is None else int(expected_queued),
                None if expected_queued is None else int(expected_queued),
                expected_version,
                expected_version,
            ),
        )
    )


async def try_mark_sending(conn: aiosqlite.Connection, attempt_id: UUID, draft_type: str) -> bool:
    """Claim a queued, not-yet-sending, non-blank draft for sending (one winner)."""
    return bool(
        await execute(
            conn,
            """UPDATE drafts SET sending = 1
               WHERE task_attempt_id = ? AND draft_type = ? AND queued = 1 AND sending = 0
                 AND TRIM(prompt) <> ''""",
            (uuid_to_db(attempt_id), draft_type),
        )
    )


async def clear_after_send(conn: aiosqlite.Connection, attempt_id: UUID, draft_type: str) -> None:
    """Reset the draft after its prompt was sent."""
    await execute(
        conn,
        """UPDATE drafts SET prompt = '', queued = 0, sending = 0, image_ids = NULL,
               version = version + 1 WHERE task_attempt_id = ? AND draft_type = ?""",
        (uuid_to_db(attempt_id), draft_type),
    )


async def delete(conn: aiosqlite.Connection, attempt_id: UUID, draft_type: str) -> bool:
    return bool(
        await execute(
            conn,
            "DELETE FROM drafts WHERE task_attempt_id = ? AND draft_type = ?",
            (uuid_to_db(attempt_id), draft_type),
        )
    )
