"""The hive link's last known state (one row), written by the running daemon on every state
change and read by ``vk-node status``, which only opens the store file."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import aiosqlite
import msgspec

from vk_node.store.codec import now_db, ts_to_db, uuid_or_none
from vk_node.store.sql import execute, fetch_model, fetch_one

__all__ = ["LinkStateRow", "get", "hive_features", "save", "save_hive_features"]


class LinkStateRow(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    hive_url: str
    node_id: UUID | None
    organization_id: UUID | None
    connected_since: datetime | None
    last_error: str | None
    backoff_until: datetime | None
    pid: int | None
    updated_at: datetime


async def get(conn: aiosqlite.Connection) -> LinkStateRow | None:
    """The stored state, or ``None`` when no link ever ran on this store."""
    return await fetch_model(
        conn,
        LinkStateRow,
        """SELECT state, hive_url, node_id, organization_id, connected_since, last_error,
                  backoff_until, pid, updated_at
           FROM hive_link_state WHERE id = 1""",
    )


async def save(
    conn: aiosqlite.Connection,
    *,
    state: str,
    hive_url: str,
    node_id: UUID | None,
    organization_id: UUID | None,
    connected_since: datetime | None,
    last_error: str | None,
    backoff_until: datetime | None,
    pid: int | None,
) -> None:
    """Replace the stored state."""
    await execute(
        conn,
        """INSERT INTO hive_link_state (id, state, hive_url, node_id, organization_id,
               connected_since, last_error, backoff_until, pid, updated_at)
           VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET state = excluded.state, hive_url = excluded.hive_url,
               node_id = excluded.node_id, organization_id = excluded.organization_id,
               connected_since = excluded.connected_since, last_error = excluded.last_error,
               backoff_until = excluded.backoff_until, pid = excluded.pid,
               updated_at = excluded.updated_at""",
        (
            state,
            hive_url,
            uuid_or_none(node_id),
            uuid_or_none(organization_id),
            None if connected_since is None else ts_to_db(connected_since),
            last_error,
            None if backoff_until is None else ts_to_db(backoff_until),
            pid,
            now_db(),
        ),
    )


async def save_hive_features(conn: aiosqlite.Connection, features: list[str]) -> None:
    """Keep the features the hive announced in ``auth_result`` (what ops it applies)."""
    names = " ".join(sorted({f for f in features if f and " " not in f}))
    await execute(
        conn,
        """INSERT INTO hive_link_state (id, state, hive_features, updated_at)
           VALUES (1, 'connected', ?, ?)
           ON CONFLICT (id) DO UPDATE SET hive_features = excluded.hive_features""",
        (names, now_db()),
    )


async def hive_features(conn: aiosqlite.Connection) -> frozenset[str]:
    """The features of the last hive this node authenticated with (empty: none yet)."""
    row = await fetch_one(conn, "SELECT hive_features FROM hive_link_state WHERE id = 1", ())
    return frozenset() if row is None else frozenset(str(row["hive_features"]).split())
