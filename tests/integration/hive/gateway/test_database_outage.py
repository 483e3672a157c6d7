"""A node's session while the hive's PostgreSQL is down: a message whose handler needs the
database is answered with ``error{internal}`` and logged as a warning without a traceback (an
expected condition during a restart or failover, not a crash), and the session goes on once the
server is back. The server is one the test owns (``LocalPostgres``), never the shared one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import structlog

from support.postgres import DatabaseFactory, LocalPostgres, PostgresServer
from vk_hive.store.migrate import migrate
from vk_shared.wire import ErrorMessage, Heartbeat, HeartbeatAck

from .conftest import running_world

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def private_postgres() -> AsyncIterator[LocalPostgres]:
    server = LocalPostgres()
    try:
        await asyncio.to_thread(server.create)
        yield server
    finally:
        await asyncio.to_thread(server.destroy)


def _heartbeat() -> Heartbeat:
    return Heartbeat(status="online", running=0, capacity=1)  # type: ignore[arg-type]


async def test_a_heartbeat_while_the_database_is_down_is_refused_quietly_and_the_session_lives(
    private_postgres: LocalPostgres,
) -> None:
    factory = DatabaseFactory(PostgresServer(private_postgres.admin_url, "private"), "vk_outage")
    dsn = await factory.create("hive")
    await migrate(dsn)
    async with running_world(dsn) as world:
        node = await world.node()
        await node.client.send(_heartbeat())
        await node.client.expect(HeartbeatAck)

        await asyncio.to_thread(private_postgres.stop, "fast")
        with structlog.testing.capture_logs() as logs:
            # The session's activity stream re-reads its projects (as after a lost event) while
            # the database is down: it retries, and the session does not end.
            session = world.gateway.registry.get(node.id)
            assert session is not None
            session.catch_up_activity()
            await node.client.send(_heartbeat())
            refused = await node.client.expect(ErrorMessage, 10)
        assert (refused.code, refused.ref) == ("internal", "heartbeat")
        sessions = [e for e in logs if e["event"].startswith("session.")]
        assert [(e["event"], e["log_level"], e["message_type"]) for e in sessions] == [
            ("session.handler_unavailable", "warning", "heartbeat")
        ]
        assert "exc_info" not in sessions[0]
        retries = [e for e in logs if e["event"] == "activity.catch_up_failed"]
        assert retries
        assert all(e["log_level"] == "warning" for e in retries)

        down = await world.http.get("/v1/health")
        assert down.status_code == 503

        await asyncio.to_thread(private_postgres.start)
        up = await world.http.get("/v1/health")
        assert up.status_code == 200
        await node.client.send(_heartbeat())
        await node.client.expect(HeartbeatAck, 10)
