"""The node's link logs: every line of a hive session carries its connection id (and the node id
once authenticated); the API key never appears."""

from __future__ import annotations

import pytest
import structlog
from structlog.testing import capture_logs

from support.node_link import World

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
