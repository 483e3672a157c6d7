"""Organization webhooks, their deliveries and the tries of each delivery.

Deliveries are claimed by any hive process: :func:`claim_due` locks due rows with
``FOR UPDATE SKIP LOCKED`` and pushes their ``next_attempt_at`` past the try's deadline, so a
process that dies mid-try leaves the delivery to be tried again once that deadline passes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from vk_hive.store.models import (
    OrganizationWebhook,
    WebhookAttempt,
    WebhookDelivery,
    from_row,
    from_rows,
)

__all__ = [
    "claim_due",
    "create",
    "create_delivery",
    "delete",
    "delete_settled_before",
    "find",
    "find_applicable",
    "list_deliveries",
    "list_deliveries_by_ids",
    "list_for_organization",
    "record_try",
    "settle_stale",
    "update",
]

_COLUMNS = """id, organization_id, name, url, events, headers, secret, payload_template, active,
    created_by, created_at, updated_at"""
_DELIVERY_COLUMNS = """id, webhook_id, event, body, node_id, status, attempt_count,
    next_attempt_at, created_at, updated_at"""
_UPDATABLE = frozenset({"name", "url", "events", "headers", "secret", "payload_template", "active"})


async def create(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    *,
    name: str,
    url: str,
    events: list[str],
    headers: Mapping[str, str],
    secret: str | None,
    payload_template: str | None,
    active: bool,
    created_by: uuid.UUID | None,
) -> OrganizationWebhook:
    row = await conn.fetchrow(
        f"""
        INSERT INTO organization_webhooks (organization_id, name, url, events, headers, secret,
            payload_template, active, created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        RETURNING {_COLUMNS}
        """,
        organization_id,
        name,
        url,
        events,
        dict(headers),
        secret,
        payload_template,
        active,
        created_by,
    )
    return from_row(OrganizationWebhook, row)


async def find(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> OrganizationWebhook | None:
    """The webhook when it belongs to that organization."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM organization_webhooks WHERE id = $1 AND organization_id = $2",
        webhook_id,
        organization_id,
    )
    return None if row is None else from_row(OrganizationWebhook, row)


async def list_for_organization(
    conn: asyncpg.Connection, organization_id: uuid.UUID
) -> list[OrganizationWebhook]:
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM organization_webhooks WHERE organization_id = $1
            ORDER BY created_at, id""",
        organization_id,
    )
    return from_rows(OrganizationWebhook, rows)


async def update(
    conn: asyncpg.Connection, webhook_id: uuid.UUID, changes: Mapping[str, Any]
) -> OrganizationWebhook:
    """Set the given columns (names of :data:`_UPDATABLE` only)."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = sorted(changes)
    assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    row = await conn.fetchrow(
        f"""UPDATE organization_webhooks SET {assignments or "name = name"} WHERE id = $1
            RETURNING {_COLUMNS}""",
        webhook_id,
        *(changes[name] for name in names),
    )
    return from_row(OrganizationWebhook, row)


async def delete(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> bool:
    status: str = await conn.execute(
        "DELETE FROM organization_webhooks WHERE id = $1 AND organization_id = $2",
        webhook_id,
        organization_id,
    )
    return status != "DELETE 0"


async def find_applicable(
    conn: asyncpg.Connection, organization_id: uuid.UUID, event: str
) -> list[OrganizationWebhook]:
    """The organization's active webhooks subscribed to ``event``."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM organization_webhooks
            WHERE organization_id = $1 AND active AND events ? $2 ORDER BY created_at, id""",
        organization_id,
        event,
    )
    return from_rows(OrganizationWebhook, rows)


# --- deliveries ----------------------------------------------------------------------------------


async def create_delivery(
    conn: asyncpg.Connection,
    delivery_id: uuid.UUID,
    *,
    webhook_id: uuid.UUID,
    event: str,
    body: str,
    due_in: dt.timedelta = dt.timedelta(0),
    node_id: uuid.UUID | None = None,
    status: str = "pending",
    attempt_count: int = 0,
) -> WebhookDelivery:
    """A delivery due in ``due_in`` (a settled one, such as a test's, has no due time)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO organization_webhook_deliveries (id, webhook_id, event, body, node_id, status,
            attempt_count, next_attempt_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7,
                CASE WHEN $6 = 'pending' THEN now() + $8::interval END)
        RETURNING {_DELIVERY_COLUMNS}
        """,
        delivery_id,
        webhook_id,
        event,
        body,
        node_id,
        status,
        attempt_count,
        due_in,
    )
    return from_row(WebhookDelivery, row)


async def settle_stale(conn: asyncpg.Connection, max_attempts: int) -> tuple[int, int]:
    """Before a claim: due ``node_offline`` deliveries (not tried yet) whose node connected
    again since they were written become ``superseded``; due deliveries whose tries are spent
    (the process making the last one died) become ``failed``. (superseded, failed) counts."""
    superseded = await conn.execute(
        """
        UPDATE organization_webhook_deliveries d SET status = 'superseded', next_attempt_at = NULL
        FROM nodes n
        WHERE d.status = 'pending' AND d.event = 'node_offline' AND d.attempt_count = 0
          AND d.next_attempt_at <= now() AND n.id = d.node_id
          AND (n.status <> 'offline' OR n.connected_at > d.created_at)
        """
    )
    failed = await conn.execute(
        """
        UPDATE organization_webhook_deliveries SET status = 'failed', next_attempt_at = NULL
        WHERE status = 'pending' AND next_attempt_at <= now() AND attempt_count >= $1
        """,
        max_attempts,
    )
    return int(superseded.split()[-1]), int(failed.split()[-1])


async def claim_due(
    conn: asyncpg.Connection, *, limit: int, hold: dt.timedelta, max_attempts: int
) -> list[tuple[WebhookDelivery, OrganizationWebhook]]:
    """Claim up to ``limit`` due deliveries with tries left: each counts one more try and is
    not due again for ``hold`` (longer than a try), so no other process takes it meanwhile."""
    rows = await conn.fetch(
        f"""
        WITH due AS (
            SELECT id FROM organization_webhook_deliveries
            WHERE status = 'pending' AND next_attempt_at <= now() AND attempt_count < $3
            ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
        )
        UPDATE organization_webhook_deliveries d
        SET attempt_count = d.attempt_count + 1, next_attempt_at = now() + $2::interval
        FROM due WHERE d.id = due.id
        RETURNING {", ".join("d." + c.strip() for c in _DELIVERY_COLUMNS.split(","))}
        """,
        limit,
        hold,
        max_attempts,
    )
    deliveries = from_rows(WebhookDelivery, rows)
    if not deliveries:
        return []
    hooks = from_rows(
        OrganizationWebhook,
        await conn.fetch(
            f"SELECT {_COLUMNS} FROM organization_webhooks WHERE id = ANY($1::uuid[])",
            list({d.webhook_id for d in deliveries}),
        ),
    )
    by_id = {h.id: h for h in hooks}
    return [(d, by_id[d.webhook_id]) for d in deliveries if d.webhook_id in by_id]


async def record_try(
    conn: asyncpg.Connection,
    delivery_id: uuid.UUID,
    *,
    attempt: int,
    status_code: int | None,
    duration_ms: int,
    error: str | None,
    next_attempt_at: dt.datetime | None,
) -> None:
    """Record try number ``attempt`` and move the delivery on: ``delivered`` (no error),
    ``pending`` until ``next_attempt_at``, or ``failed`` (no next try)."""
    await conn.execute(
        """
        INSERT INTO organization_webhook_attempts (delivery_id, attempt, status_code,
            duration_ms, error)
        VALUES ($1, $2, $3, $4, $5)
        """,
        delivery_id,
        attempt,
        status_code,
        duration_ms,
        error,
    )
    status = "delivered" if error is None else ("pending" if next_attempt_at else "failed")
    await conn.execute(
        """UPDATE organization_webhook_deliveries SET status = $2, next_attempt_at = $3
           WHERE id = $1""",
        delivery_id,
        status,
        next_attempt_at if status == "pending" else None,
    )


async def list_deliveries(
    conn: asyncpg.Connection, webhook_id: uuid.UUID, *, limit: int
) -> list[WebhookDelivery]:
    """Newest first, each with its tries in order."""
    rows = await conn.fetch(
        f"""SELECT {_DELIVERY_COLUMNS} FROM organization_webhook_deliveries
            WHERE webhook_id = $1 ORDER BY created_at DESC, id LIMIT $2""",
        webhook_id,
        limit,
    )
    return await _with_tries(conn, from_rows(WebhookDelivery, rows))


async def list_deliveries_by_ids(
    conn: asyncpg.Connection, delivery_ids: list[uuid.UUID]
) -> list[WebhookDelivery]:
    rows = await conn.fetch(
        f"""SELECT {_DELIVERY_COLUMNS} FROM organization_webhook_deliveries
            WHERE id = ANY($1::uuid[]) ORDER BY created_at DESC, id""",
        delivery_ids,
    )
    return await _with_tries(conn, from_rows(WebhookDelivery, rows))


async def _with_tries(
    conn: asyncpg.Connection, deliveries: list[WebhookDelivery]
) -> list[WebhookDelivery]:
    tries = await conn.fetch(
        """SELECT delivery_id, attempt, status_code, duration_ms, error, attempted_at
           FROM organization_webhook_attempts WHERE delivery_id = ANY($1::uuid[])
           ORDER BY attempt, id""",
        [d.id for d in deliveries],
    )
    by_delivery: dict[uuid.UUID, list[WebhookAttempt]] = {}
    for row in tries:
        by_delivery.setdefault(row["delivery_id"], []).append(from_row(WebhookAttempt, row))
    for delivery in deliveries:
        delivery.attempts = by_delivery.get(delivery.id, [])
    return deliveries


async def delete_settled_before(conn: asyncpg.Connection, cutoff: dt.datetime) -> int:
    """Delete delivered, failed and superseded deliveries last changed before ``cutoff``."""
    status = await conn.execute(
        """DELETE FROM organization_webhook_deliveries
           WHERE status <> 'pending' AND updated_at < $1""",
        cutoff,
    )
    return int(status.split()[-1])
