"""Who this node is on the hive: its WebSocket URL, machine id and capabilities."""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from urllib.parse import urlsplit, urlunsplit

from vk_node import __version__
from vk_node.executor.profiles import available_executors
from vk_node.settings import NodeSettings
from vk_shared.protocol import WS_PATH
from vk_shared.wire import NodeCapabilities

__all__ = ["capabilities", "http_base_url", "machine_id", "ws_url"]


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


def machine_id(settings: NodeSettings) -> str:
    """The configured machine id, else 16 hex of SHA-256 over host name, OS and architecture."""
    if settings.machine_id:
        return settings.machine_id
    raw = f"{socket.gethostname()}|{platform.system()}|{platform.machine()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def capabilities(settings: NodeSettings) -> NodeCapabilities:
    """What the node can run: available executor profiles, concurrency, platform, version."""
    return NodeCapabilities(
        executors=available_executors(settings.executors, os.environ.get("PATH")),
        max_concurrent=settings.max_concurrent,
        os=platform.system().lower(),
        arch=platform.machine(),
        version=__version__,
    )
