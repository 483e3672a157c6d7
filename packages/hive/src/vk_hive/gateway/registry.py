"""The connected node sessions of this hive process: node id → session, project id → node ids."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vk_hive.gateway.session import NodeSession

__all__ = ["Registry"]


class Registry:
    """In-memory index of live sessions. Only authenticated sessions are registered; a node has at
    most one registered session (a newer connection replaces the older one)."""

    def __init__(self) -> None:
        self._by_node: dict[uuid.UUID, NodeSession] = {}
        self._by_project: dict[uuid.UUID, set[uuid.UUID]] = {}

    def __len__(self) -> int:
        return len(self._by_node)

    def register(self, session: NodeSession) -> NodeSession | None:
        """Make ``session`` the node's session; returns the session it replaced, if any."""
        node_id = session.node_id
        old = self._by_node.get(node_id)
        if old is session:
            return None
        if old is not None:
            self._drop_projects(old)
        self._by_node[node_id] = session
        return old

    def unregister(self, session: NodeSession) -> bool:
        """Remove ``session`` if it is still the node's current session; False otherwise."""
        if self._by_node.get(session.node_id) is not session:
            return False
        del self._by_node[session.node_id]
        self._drop_projects(session)
        return True

    def _drop_projects(self, session: NodeSession) -> None:
        for project_id in list(session.subscribed_projects):
            nodes = self._by_project.get(project_id)
            if nodes is not None:
                nodes.discard(session.node_id)
                if not nodes:
                    del self._by_project[project_id]

    def subscribe(self, session: NodeSession, project_id: uuid.UUID) -> None:
        if self._by_node.get(session.node_id) is session:
            self._by_project.setdefault(project_id, set()).add(session.node_id)

    def unsubscribe(self, session: NodeSession, project_id: uuid.UUID) -> None:
        nodes = self._by_project.get(project_id)
        if nodes is not None and self._by_node.get(session.node_id) is session:
            nodes.discard(session.node_id)
            if not nodes:
                del self._by_project[project_id]

    def get(self, node_id: uuid.UUID) -> NodeSession | None:
        return self._by_node.get(node_id)

    def is_connected(self, node_id: uuid.UUID) -> bool:
        return node_id in self._by_node

    def sessions(self) -> list[NodeSession]:
        return list(self._by_node.values())

    def for_project(self, project_id: uuid.UUID) -> list[NodeSession]:
        """Sessions subscribed to the project's activity."""
        return [
            self._by_node[n] for n in self._by_project.get(project_id, ()) if n in self._by_node
        ]

    def for_org(
        self, organization_id: uuid.UUID, *, exclude: Iterable[uuid.UUID] = ()
    ) -> list[NodeSession]:
        skip = set(exclude)
        return [
            s
            for s in self._by_node.values()
            if s.organization_id == organization_id and s.node_id not in skip
        ]
