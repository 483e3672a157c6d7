"""Who this node is on the hive: its WebSocket URL, machine id and capabilities."""

from __future__ import annotations

import hashlib
import os
import platform
import secrets
import socket
from urllib.parse import urlsplit, urlunsplit

from vk_node import __version__
from vk_node.executor.profiles import available_executors
from vk_node.settings import NodeSettings
from vk_node.store import Store
from vk_node.store.repositories import node_identity
from vk_shared.protocol import WS_PATH
from vk_shared.wire import NodeCapabilities

__all__ = ["capabilities", "host_machine_id", "http_base_url", "resolve_machine_id", "ws_url"]


def ws_url(hive_url: str) -> str:
    """``VK_HIVE_URL`` as the control channel URL: http(s) → ws(s), path → ``/v1/nodes/ws``."""
    parts = urlsplit(hive_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, WS_PATH, "", ""))


def http_base_url(hive_url: str) -> str:
    """``VK_HIVE_URL`` as the REST base (``scheme://host:port``): ws(s) → http(s)."""
    parts = urlsplit(hive_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def host_machine_id() -> str:
    """16 hex of SHA-256 over host name, OS and architecture: the machine id of stores that talked
    to a hive before ids were kept per store (the same for every node on one host)."""
    raw = f"{socket.gethostname()}|{platform.system()}|{platform.machine()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


async def resolve_machine_id(store: Store, settings: NodeSettings) -> str:
    """This node instance's machine id: ``VK_NODE_MACHINE_ID`` when set, else the id kept in the
    store. The stored id is made on first start — random (32 hex) for a new store; for a store
    that already has hive history, the host-derived id it was known by, so an upgraded node stays
    the same instance for the hive."""
    async with store.read() as conn:
        stored = await node_identity.get(conn)
    if stored is None:
        async with store.transaction() as conn:
            history = await node_identity.has_history(conn)
            fresh = host_machine_id() if history else secrets.token_hex(16)
            stored = await node_identity.set_if_absent(conn, fresh)
    return settings.machine_id or stored


def capabilities(settings: NodeSettings) -> NodeCapabilities:
    """What the node can run: available executor profiles, concurrency, platform, version."""
    return NodeCapabilities(
        executors=available_executors(settings.executors, os.environ.get("PATH")),
        max_concurrent=settings.max_concurrent,
        os=platform.system().lower(),
        arch=platform.machine(),
        version=__version__,
    )
