"""This node instance's machine id (one row, table ``node_identity``)."""

from __future__ import annotations

import aiosqlite

from vk_node.store.sql import execute, fetch_value

__all__ = ["get", "has_history", "set_if_absent"]


async def get(conn: aiosqlite.Connection) -> str | None:
    """The stored machine id, or ``None`` before the first start."""
    value = await fetch_value(conn, "SELECT machine_id FROM node_identity WHERE id = 1")
    return None if value is None else str(value)


async def set_if_absent(conn: aiosqlite.Connection, machine_id: str) -> str:
    """Store ``machine_id`` unless an id is stored already; returns the stored id."""
    await execute(
        conn,
        "INSERT INTO node_identity (id, machine_id) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
        (machine_id,),
    )
    stored = await get(conn)
    assert stored is not None
    return stored


async def has_history(conn: aiosqlite.Connection) -> bool:
    """Whether this store already talked to a hive (an outbox op, or a recorded node id)."""
    value = await fetch_value(
        conn,
        """SELECT EXISTS (SELECT 1 FROM node_outbox)
               OR EXISTS (SELECT 1 FROM hive_link_state WHERE node_id IS NOT NULL)""",
    )
    return bool(value)
