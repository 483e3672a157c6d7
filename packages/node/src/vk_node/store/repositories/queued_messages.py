"""Messages queued for an attempt's agent, kept in a dense 0-based ``position`` order."""

from __future__ import annotations

from uuid import UUID, uuid4

import aiosqlite

from vk_node.errors import NotFound
from vk_node.store.codec import now_db, uuid_to_db
from vk_node.store.models import QueuedMessage
from vk_node.store.sql import execute, fetch_all, fetch_model, fetch_models

__all__ = [
    "add",
    "attempts_with_messages",
    "list_messages",
    "peek_next",
    "pop_next",
    "remove",
    "reorder",
    "update",
]


async def list_messages(conn: aiosqlite.Connection, attempt_id: UUID) -> list[QueuedMessage]:
    return await fetch_models(
        conn,
        QueuedMessage,
        "SELECT * FROM queued_messages WHERE task_attempt_id = ? ORDER BY position",
        (uuid_to_db(attempt_id),),
    )


async def attempts_with_messages(conn: aiosqlite.Connection) -> list[UUID]:
    """The attempts that have at least one queued message."""
    rows = await fetch_all(conn, "SELECT DISTINCT task_attempt_id FROM queued_messages")
    return [UUID(bytes=row[0]) for row in rows]


async def add(
    conn: aiosqlite.Connection, attempt_id: UUID, content: str, variant: str | None = None
) -> QueuedMessage:
    """Append a message at the end of the queue."""
    message_id = uuid4()
    attempt = uuid_to_db(attempt_id)
    await execute(
        conn,
        """INSERT INTO queued_messages (id, task_attempt_id, content, variant, position,
               created_at)
           VALUES (?, ?, ?, ?, (SELECT COUNT(*) FROM queued_messages WHERE task_attempt_id = ?),
                   ?)""",
        (message_id.bytes, attempt, content, variant, attempt, now_db()),
    )
    found = await _find(conn, message_id)
    assert found is not None
    return found


async def _find(conn: aiosqlite.Connection, message_id: UUID) -> QueuedMessage | None:
    return await fetch_model(
        conn, QueuedMessage, "SELECT * FROM queued_messages WHERE id = ?", (message_id.bytes,)
    )


async def update(
    conn: aiosqlite.Connection, message_id: UUID, content: str, variant: str | None = None
) -> QueuedMessage:
    if not await execute(
        conn,
        "UPDATE queued_messages SET content = ?, variant = ? WHERE id = ?",
        (content, variant, message_id.bytes),
    ):
        raise NotFound(f"queued message {message_id} not found")
    found = await _find(conn, message_id)
    assert found is not None
    return found


async def remove(conn: aiosqlite.Connection, message_id: UUID) -> bool:
    """Remove a message and close the gap in positions."""
    message = await _find(conn, message_id)
    if message is None:
        return False
    await execute(conn, "DELETE FROM queued_messages WHERE id = ?", (message_id.bytes,))
    await execute(
        conn,
        """UPDATE queued_messages SET position = position - 1
           WHERE task_attempt_id = ? AND position > ?""",
        (uuid_to_db(message.task_attempt_id), message.position),
    )
    return True


async def reorder(
    conn: aiosqlite.Connection, attempt_id: UUID, message_ids: list[UUID]
) -> list[QueuedMessage]:
    """Set the order to ``message_ids`` (which must be exactly the attempt's messages)."""
    current = {m.id for m in await list_messages(conn, attempt_id)}
    if set(message_ids) != current or len(message_ids) != len(current):
        raise NotFound("reorder must list exactly the attempt's queued messages")
    for position, message_id in enumerate(message_ids):
        await execute(
            conn,
            "UPDATE queued_messages SET position = ? WHERE id = ?",
            (position, message_id.bytes),
        )
    return await list_messages(conn, attempt_id)


async def peek_next(conn: aiosqlite.Connection, attempt_id: UUID) -> QueuedMessage | None:
    return await fetch_model(
        conn,
        QueuedMessage,
        "SELECT * FROM queued_messages WHERE task_attempt_id = ? ORDER BY position LIMIT 1",
        (uuid_to_db(attempt_id),),
    )


async def pop_next(conn: aiosqlite.Connection, attempt_id: UUID) -> QueuedMessage | None:
    """Remove and return the first message."""
    message = await peek_next(conn, attempt_id)
    if message is not None:
        await remove(conn, message.id)
    return message
