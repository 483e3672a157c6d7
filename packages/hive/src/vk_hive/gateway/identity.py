"""Who an authenticated connection is: the value :func:`vk_hive.gateway.auth.authenticate` returns
and a session adopts, once, when the hive accepts its ``auth``.

Immutable: nothing after the handshake changes who the node is. What changes during a session
(its heartbeat status, its activity subscriptions) lives with the session and its handlers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from vk_shared.protocol import FEATURE_ACK_TASKS

__all__ = ["NodeIdentity"]


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    public_url: str | None = None
    executors: frozenset[str] = frozenset()
    """The executor profiles the node advertised in ``auth`` (dispatch only picks these)."""
    activity_cursors: Mapping[uuid.UUID, int] = field(default_factory=lambda: MappingProxyType({}))
    """Per swarm project, the last activity seq the node had applied when it connected."""
    linked_at_auth: tuple[uuid.UUID, ...] = ()
    """The swarm projects the node linked when it authenticated (their streams start at once)."""
    features: frozenset[str] = frozenset()
    """The optional protocol behaviours the node announced in ``auth`` (``vk_shared.protocol``)."""
    session_id: uuid.UUID = field(default_factory=uuid.uuid4)
    """This connection: the node's current session (``nodes.session_id``) until another one of
    the same node authenticates, on this hive process or another."""

    @property
    def takes_ack_tasks(self) -> bool:
        """The node learns its tasks' ids from ``op_ack``: do not echo its own ops to it."""
        return FEATURE_ACK_TASKS in self.features

    def cursor(self, project_id: uuid.UUID) -> int:
        """Where the project's activity stream starts: the node's cursor, else 0."""
        return self.activity_cursors.get(project_id, 0)
