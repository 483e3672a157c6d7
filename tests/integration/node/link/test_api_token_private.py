"""VK_NODE_API_TOKEN guards the node's own API only: it never travels to the hive and never
appears in a log line, even at debug level (real hive, real node link)."""

from __future__ import annotations

import pytest

from support.logcapture import stderr_logs
from support.node_link import World
from vk_node.logging import configure_logging
from vk_shared.codec import encode_json, encode_msgpack

TOKEN = "node-api-token-never-leaves-0123456789"


@pytest.mark.asyncio
async def test_the_api_token_is_not_sent_to_the_hive_or_logged(world: World) -> None:
    """A node with an API token authenticates to a real hive; its auth message (JSON and msgpack)
    does not hold the token, and no line the node or the hive logs at debug level does."""
    loggers = ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets", "aiosqlite")
    with stderr_logs(lambda: configure_logging("json", "debug"), loggers) as err:
        node = await world.node(api_token=TOKEN)
        await node.ready()
        auth = await node.link.sessions.auth_message()
        await node.link.close()
    assert auth.api_key  # the hive credential is the API key, not the token
    assert TOKEN.encode() not in encode_json(auth)
    assert TOKEN.encode() not in encode_msgpack(auth)
    assert "link.connected" in err.getvalue()
    assert TOKEN not in err.getvalue()
