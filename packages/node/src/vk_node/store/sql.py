"""Small helpers for running parameterized statements on an aiosqlite connection.

Every aiosqlite call is a round trip to the connection's thread and back, which costs more than
most statements themselves; the helpers that return rows (and :func:`run`) take one round trip,
:func:`execute` two (the statement, then closing its cursor after reading the row count).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import aiosqlite
import msgspec

from vk_node.store.codec import decode_row, decode_rows

__all__ = [
    "execute",
    "fetch_all",
    "fetch_model",
    "fetch_models",
    "fetch_one",
    "fetch_value",
    "run",
]

Params = Sequence[Any]
_S = TypeVar("_S", bound=msgspec.Struct)


async def fetch_one(
    conn: aiosqlite.Connection, sql: str, params: Params = ()
) -> sqlite3.Row | None:
    """The first row (meant for statements that return at most one)."""
    rows = await fetch_all(conn, sql, params)
    return rows[0] if rows else None


async def fetch_all(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> list[sqlite3.Row]:
    rows: Iterable[sqlite3.Row] = await conn.execute_fetchall(sql, params)
    return list(rows)


async def fetch_value(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> Any:
    row = await fetch_one(conn, sql, params)
    return None if row is None else row[0]


async def fetch_model(
    conn: aiosqlite.Connection,
    model: type[_S],
    sql: str,
    params: Params = (),
    *,
    json: tuple[str, ...] = (),
) -> _S | None:
    row = await fetch_one(conn, sql, params)
    return None if row is None else decode_row(model, row, json=json)


async def fetch_models(
    conn: aiosqlite.Connection,
    model: type[_S],
    sql: str,
    params: Params = (),
    *,
    json: tuple[str, ...] = (),
) -> list[_S]:
    return decode_rows(model, await fetch_all(conn, sql, params), json=json)


async def execute(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> int:
    """Run one statement; return the number of rows it changed."""
    async with conn.execute(sql, params) as cur:
        return int(cur.rowcount)


async def run(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> None:
    """Run one statement whose row count is not needed."""
    await conn.execute_fetchall(sql, params)
