"""The node's logs: every line of a hive session carries its connection id (and the node id once
authenticated); the API key never appears; debug level adds no SQL parameters."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import uuid4

import pytest
import structlog
from structlog.testing import capture_logs

from support.logcapture import stderr_logs
from support.node_link import World
from vk_node.logging import configure_logging
from vk_node.store import Store
from vk_node.store.repositories import log_entries as logs_repo

from ..store import _seed as seed

pytestmark = pytest.mark.asyncio


async def test_link_session_lines_carry_connection_and_node_ids(world: World) -> None:
    """Lines the node logs during a hive session carry the session's connection id, those after
    auth also the node id; lines outside a session carry neither; the API key is never logged."""
    key = await world.api_key()
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as lines:
        node = await world.node(api_key=key)
        await node.ready()
        node_id = str((await node.link.status()).node_id)
        await node.link.close()
    by_event = {line["event"]: line for line in lines}
    connected, digest = by_event["link.connected"], by_event["digest.result"]
    assert connected["connection_id"]
    assert digest["connection_id"] == connected["connection_id"]
    assert digest["node_id"] == node_id
    # The hive's side of the same session has its own connection id.
    hive_side = by_event["session.authenticated"]
    assert hive_side["connection_id"] != connected["connection_id"]
    assert "connection_id" not in by_event["link.connecting"]
    assert "connection_id" not in by_event["link.stopped"]
    assert key not in repr(lines)


async def test_debug_logs_carry_no_sql_parameters(tmp_path: Path) -> None:
    """At log level debug the node still logs nothing of what it writes to SQLite: a run's output
    line (a secret, here) stored through the real store appears in no log line, while the node's
    own debug lines are there."""
    secret = "sk-run-output-" + uuid4().hex
    loggers = ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets", "aiosqlite")
    with stderr_logs(lambda: configure_logging("json", "debug"), loggers) as err:
        store = await Store.open(tmp_path / "db.sqlite")
        try:
            async with store.transaction() as conn:
                *_, run = await seed.world(conn)
                await logs_repo.append_many(conn, run.id, [("stdout", secret)])
            async with store.read() as conn:
                stored = await logs_repo.find_by_execution_id(conn, run.id)
            assert [entry.content for entry in stored] == [secret]
        finally:
            await store.close()
        structlog.get_logger("vk_node.test").debug("probe.logged")
    lines = [json.loads(line) for line in err.getvalue().splitlines() if line.strip()]
    assert "probe.logged" in {line["event"] for line in lines}
    assert secret not in err.getvalue()
