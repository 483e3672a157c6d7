"""Webhook deliveries and their tries (migration 0007; docs/operations.md "Webhooks").

A delivery is written ``pending`` with ``next_attempt_at`` = now in the transaction of the event
that fires it; the delivery worker reads the due ones and records each try with
:func:`record_attempt`, which also moves the delivery on (delivered, failed, or pending again at
its next time) in the same statement batch.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import aiosqlite
import msgspec

from vk_node.store.codec import decode_row, now_db, ts_from_db, ts_to_db, uuid_to_db
from vk_node.store.models import WebhookDelivery, WebhookDeliveryAttempt
from vk_node.store.sql import execute, fetch_all, fetch_models, fetch_value, run

__all__ = [
    "create",
    "delete_settled_before",
    "find_by_id",
    "find_due",
    "find_for_webhook",
    "next_due_at",
    "record_attempt",
]

_COLUMNS = """id, webhook_id, event, body, status, attempt_count, next_attempt_at, created_at,
    updated_at"""


async def create(
    conn: aiosqlite.Connection,
    delivery_id: UUID,
    *,
    webhook_id: UUID,
    event: str,
    body: str,
    next_attempt_at: datetime | None,
) -> None:
    """A pending delivery, due at ``next_attempt_at`` (``None``: never picked up by the worker;
    a test delivery, recorded at once with :func:`record_attempt`)."""
    now = now_db()
    await run(
        conn,
        """INSERT INTO webhook_deliveries (id, webhook_id, event, body, status, attempt_count,
               next_attempt_at, created_at, updated_at)
           VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)""",
        (
            uuid_to_db(delivery_id),
            uuid_to_db(webhook_id),
            event,
            body,
            None if next_attempt_at is None else ts_to_db(next_attempt_at),
            now,
            now,
        ),
    )


async def _with_attempts(
    conn: aiosqlite.Connection, deliveries: list[WebhookDelivery]
) -> list[WebhookDelivery]:
    if not deliveries:
        return []
    marks = ", ".join("?" for _ in deliveries)
    rows = await fetch_all(
        conn,
        f"""SELECT delivery_id, attempt, status_code, duration_ms, error, attempted_at
            FROM webhook_delivery_attempts WHERE delivery_id IN ({marks})
            ORDER BY delivery_id, attempt""",  # noqa: S608 - placeholders only
        [uuid_to_db(d.id) for d in deliveries],
    )
    by_delivery: dict[bytes, list[WebhookDeliveryAttempt]] = {}
    for row in rows:
        data = dict(row)
        key = bytes(data.pop("delivery_id"))
        by_delivery.setdefault(key, []).append(decode_row(WebhookDeliveryAttempt, data))
    return [
        msgspec.structs.replace(d, attempts=by_delivery.get(d.id.bytes, [])) for d in deliveries
    ]


async def find_by_id(conn: aiosqlite.Connection, delivery_id: UUID) -> WebhookDelivery | None:
    """One delivery with its tries."""
    found = await fetch_models(
        conn,
        WebhookDelivery,
        f"SELECT {_COLUMNS} FROM webhook_deliveries WHERE id = ?",  # noqa: S608 - constant
        (uuid_to_db(delivery_id),),
    )
    with_attempts = await _with_attempts(conn, found)
    return with_attempts[0] if with_attempts else None


async def find_for_webhook(
    conn: aiosqlite.Connection, webhook_id: UUID, *, limit: int
) -> list[WebhookDelivery]:
    """The webhook's newest ``limit`` deliveries (newest first), each with its tries."""
    found = await fetch_models(
        conn,
        WebhookDelivery,
        f"""SELECT {_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ?
            ORDER BY created_at DESC, rowid DESC LIMIT ?""",  # noqa: S608 - constant
        (uuid_to_db(webhook_id), limit),
    )
    return await _with_attempts(conn, found)


async def find_due(
    conn: aiosqlite.Connection, now: datetime, *, limit: int
) -> list[WebhookDelivery]:
    """Pending deliveries whose time has come, oldest due first (without their tries)."""
    return await fetch_models(
        conn,
        WebhookDelivery,
        f"""SELECT {_COLUMNS} FROM webhook_deliveries
            WHERE status = 'pending' AND next_attempt_at <= ?
            ORDER BY next_attempt_at, rowid LIMIT ?""",  # noqa: S608 - constant
        (ts_to_db(now), limit),
    )


async def next_due_at(conn: aiosqlite.Connection) -> datetime | None:
    """When the earliest pending delivery is due (``None``: nothing pending)."""
    value = await fetch_value(
        conn,
        "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'",
    )
    return None if value is None else ts_from_db(value)


async def record_attempt(
    conn: aiosqlite.Connection,
    delivery_id: UUID,
    *,
    attempt: int,
    status_code: int | None,
    duration_ms: int,
    error: str | None,
    attempted_at: datetime,
    status: str,
    next_attempt_at: datetime | None,
) -> bool:
    """Record try number ``attempt`` and set the delivery's ``status`` (``pending`` with its
    ``next_attempt_at``, ``delivered`` or ``failed``); ``False`` (nothing written) when the
    delivery is gone (its webhook was deleted meanwhile). Run inside a transaction."""
    changed = await execute(
        conn,
        """UPDATE webhook_deliveries SET status = ?, attempt_count = ?, next_attempt_at = ?,
               updated_at = ?
           WHERE id = ?""",
        (
            status,
            attempt,
            None if next_attempt_at is None else ts_to_db(next_attempt_at),
            now_db(),
            uuid_to_db(delivery_id),
        ),
    )
    if not changed:
        return False
    await run(
        conn,
        """INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code,
               duration_ms, error, attempted_at)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (uuid_to_db(delivery_id), attempt, status_code, duration_ms, error, ts_to_db(attempted_at)),
    )
    return True


async def delete_settled_before(conn: aiosqlite.Connection, cutoff: datetime) -> int:
    """Delete delivered and failed deliveries last changed before ``cutoff`` (their tries go
    with them); the number deleted."""
    return await execute(
        conn,
        "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < ?",
        (ts_to_db(cutoff),),
    )
