"""The connected peers of this hive process: node id → peer, project id → node ids.

:class:`Registry` is the :class:`~vk_hive.gateway.ports.Directory` of the nodes connected here.
It keeps its own index of each node's project subscriptions, so dropping a peer never asks the
peer what it subscribed to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from vk_hive.gateway.ports import Peer

__all__ = ["Registry"]


class Registry:
    """In-memory index of live peers. Only authenticated sessions are registered; a node has at
    most one registered peer (a newer connection replaces the older one)."""

    def __init__(self) -> None:
        self._by_node: dict[uuid.UUID, Peer] = {}
        self._by_project: dict[uuid.UUID, set[uuid.UUID]] = {}
        self._projects_of: dict[uuid.UUID, set[uuid.UUID]] = {}

    def __len__(self) -> int:
        return len(self._by_node)

    def register(self, peer: Peer) -> Peer | None:
        """Make ``peer`` the node's peer; returns the peer it replaced, if any."""
        node_id = peer.node.node_id
        old = self._by_node.get(node_id)
        if old is peer:
            return None
        if old is not None:
            self._drop_projects(node_id)
        self._by_node[node_id] = peer
        return old

    def unregister(self, peer: Peer) -> bool:
        """Remove ``peer`` if it is still the node's current peer; False otherwise."""
        node_id = peer.node.node_id
        if self._by_node.get(node_id) is not peer:
            return False
        del self._by_node[node_id]
        self._drop_projects(node_id)
        return True

    def _drop_projects(self, node_id: uuid.UUID) -> None:
        for project_id in self._projects_of.pop(node_id, ()):
            self._remove(project_id, node_id)

    def _remove(self, project_id: uuid.UUID, node_id: uuid.UUID) -> None:
        nodes = self._by_project.get(project_id)
        if nodes is not None:
            nodes.discard(node_id)
            if not nodes:
                del self._by_project[project_id]

    def subscribe(self, peer: Peer, project_id: uuid.UUID) -> None:
        node_id = peer.node.node_id
        if self._by_node.get(node_id) is peer:
            self._by_project.setdefault(project_id, set()).add(node_id)
            self._projects_of.setdefault(node_id, set()).add(project_id)

    def unsubscribe(self, peer: Peer, project_id: uuid.UUID) -> None:
        node_id = peer.node.node_id
        if self._by_node.get(node_id) is peer:
            self._remove(project_id, node_id)
            self._projects_of.get(node_id, set()).discard(project_id)

    def get(self, node_id: uuid.UUID) -> Peer | None:
        return self._by_node.get(node_id)

    def is_connected(self, node_id: uuid.UUID) -> bool:
        return node_id in self._by_node

    def peers(self) -> list[Peer]:
        return list(self._by_node.values())

    def for_project(self, project_id: uuid.UUID) -> list[Peer]:
        """Peers subscribed to the project's activity."""
        return [
            self._by_node[n] for n in self._by_project.get(project_id, ()) if n in self._by_node
        ]

    def for_org(
        self, organization_id: uuid.UUID, *, exclude: Iterable[uuid.UUID] = ()
    ) -> list[Peer]:
        skip = set(exclude)
        return [
            p
            for p in self._by_node.values()
            if p.node.organization_id == organization_id and p.node.node_id not in skip
        ]
