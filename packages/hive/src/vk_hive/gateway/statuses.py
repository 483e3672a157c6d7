"""``node_status``: what a node's status change looks like on the wire, and who hears of it (the
organization's other connected nodes and its user stream sessions, coalesced per receiver)."""

from __future__ import annotations

from vk_hive.gateway.ports import Directory, Watchers
from vk_hive.store.models import Node
from vk_shared.wire import NodeStatusChanged

__all__ = ["announce_status", "status_message"]


def status_message(node: Node) -> NodeStatusChanged:
    return NodeStatusChanged(
        node_id=node.id,
        status=node.status,
        name=node.name[:255] or None,
        public_url=node.public_url[:4096] if node.public_url else None,
        last_heartbeat_at=node.last_heartbeat_at,
    )


def announce_status(directory: Directory, watchers: Watchers, node: Node) -> None:
    """Tell this process's sessions of the node's organization (the node itself excluded)."""
    msg = status_message(node)
    for other in directory.for_org(node.organization_id, exclude=[node.id]):
        other.push_status(msg)
    for watcher in watchers.for_org(node.organization_id):
        watcher.push_status(msg)
