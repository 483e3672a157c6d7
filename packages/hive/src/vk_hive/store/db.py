"""The hive's asyncpg connection pool: opened and closed in one place."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec

__all__ = ["DATABASE_UNAVAILABLE", "Database", "init_connection"]

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,  # refused or reset (ConnectionError), and TimeoutError
    asyncpg.InterfaceError,  # the connection closed under the query
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.OperatorInterventionError,  # class 57: shutting down, starting up, crash recovery
)
"""What asyncpg raises while the server restarts, fails over or does not answer: a transient
condition (the pool opens new connections once the server is back), not a bug of the caller."""

_json_encoder = msgspec.json.Encoder()


def _encode_json(value: Any) -> str:
    return _json_encoder.encode(value).decode("utf-8")


def _decode_json(text: str) -> Any:
    return msgspec.json.decode(text)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection setup: json/jsonb values travel as Python objects (msgspec codec)."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=_encode_json,
            decoder=_decode_json,
            schema="pg_catalog",
            format="text",
        )


async def _no_session_reset(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's default reset query (advisory unlock, CLOSE ALL, UNLISTEN,
    RESET ALL: one more round trip per acquire, ~5 % of the hive's time under op load). The hive
    leaves no session state on pooled connections: locks are transaction-level, nothing SETs a
    session variable, and LISTEN runs on a dedicated connection. asyncpg still rolls back an
    open transaction before calling this."""


class Database:
    """Owns one asyncpg pool; hands out connections and transactions."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout: float | None = 60.0,
    ) -> Database:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            init=init_connection,
            reset=_no_session_reset,
        )
        return cls(pool)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, in autocommit mode."""
        async with self._pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(
        self, *, isolation: str = "read_committed"
    ) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside one transaction (committed on success, else rolled back)."""
        async with self._pool.acquire() as conn, conn.transaction(isolation=isolation):
            yield conn

    async def close(self, grace_s: float = 10.0) -> None:
        """Close gracefully; connections still checked out after ``grace_s`` are terminated."""
        try:
            await asyncio.wait_for(self._pool.close(), grace_s)
        except TimeoutError:
            self._pool.terminate()
