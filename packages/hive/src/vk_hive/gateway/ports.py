"""The narrow interfaces the gateway's modules talk through.

- :class:`Outgoing`: how hive → node messages leave for one node (reply, push, urgent push, close).
- :class:`Peer`: a connected node as the rest of the hive sees it: its identity, its outgoing
  port, and the activity hooks of the fan-out. A :class:`~vk_hive.gateway.session.NodeSession`
  is the peer of a node connected to this process.
- :class:`Directory`: the connected peers by node, organization and project
  (:class:`~vk_hive.gateway.registry.Registry` for this process).
- :class:`Watcher` / :class:`Watchers`: the user activity stream sessions (``/v1/ws``) of this
  process by organization, project and followed execution process
  (:class:`~vk_hive.gateway.watchers.WatcherRegistry`): the fan-out offers them the events and
  log notifications it offers nodes, and node status changes reach them too.
- :class:`GatewayDeps`: what handlers, the fan-out and the dispatcher need from the hive
  (database, settings, metrics, directory, watchers) — passed down, never reached through.

Nothing here imports another gateway module but :mod:`.identity`, so every gateway module may
depend on these without a cycle; a later router between hive processes implements
:class:`Peer` and :class:`Directory` for nodes connected elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from vk_hive.gateway.identity import NodeIdentity
from vk_hive.metrics import HiveMetrics
from vk_hive.settings import HiveSettings
from vk_hive.store.db import Database
from vk_hive.store.models import ActivityEvent
from vk_shared.wire import NodeStatusChanged, WireStruct

__all__ = ["Directory", "GatewayDeps", "Outgoing", "Peer", "Watcher", "Watchers"]


class Outgoing(Protocol):
    """Messages to one node, in order, through a bounded queue."""

    async def send(self, msg: WireStruct) -> None:
        """A reply: waits for room in the queue (back-pressure on the node's own requests)."""
        ...

    def push(self, msg: WireStruct) -> bool:
        """A message from elsewhere, without waiting; a full queue closes the connection.
        Whether it was queued."""
        ...

    def try_push(self, msg: WireStruct) -> bool:
        """Queue only if there is room now (for what can be re-read later)."""
        ...

    def push_urgent(self, msg: WireStruct) -> None:
        """Send before everything queued (lease decisions)."""
        ...

    def push_status(self, msg: NodeStatusChanged) -> None:
        """Another node's status, coalesced per node."""
        ...

    def close(self, code: int, reason: str) -> None:
        """Close after what is queued was sent."""
        ...

    def abort(self, code: int, reason: str) -> None:
        """Close now; what is queued is dropped."""
        ...

    @property
    def closing(self) -> bool: ...


class Peer(Outgoing, Protocol):
    """A connected, authenticated node."""

    @property
    def node(self) -> NodeIdentity: ...

    def offer_activity(self, event: ActivityEvent) -> None:
        """A committed event of a project the node may be subscribed to (live fan-out)."""
        ...

    def catch_up_activity(self) -> None:
        """Re-read every subscribed project from its last sent seq (events may be missed)."""
        ...


class Directory(Protocol):
    """The connected peers; at most one per node."""

    def __len__(self) -> int: ...

    def register(self, peer: Peer) -> Peer | None:
        """Make ``peer`` its node's peer; the one it replaced, if any."""
        ...

    def unregister(self, peer: Peer) -> bool:
        """Remove ``peer`` if it is still its node's peer."""
        ...

    def subscribe(self, peer: Peer, project_id: uuid.UUID) -> None: ...

    def unsubscribe(self, peer: Peer, project_id: uuid.UUID) -> None: ...

    def get(self, node_id: uuid.UUID) -> Peer | None: ...

    def is_connected(self, node_id: uuid.UUID) -> bool: ...

    def peers(self) -> list[Peer]: ...

    def for_project(self, project_id: uuid.UUID) -> list[Peer]:
        """Peers subscribed to the project's activity."""
        ...

    def for_org(
        self, organization_id: uuid.UUID, *, exclude: Iterable[uuid.UUID] = ()
    ) -> list[Peer]: ...


class Watcher(Protocol):
    """A user activity stream session bound to one organization. Every hook returns at once
    (it never waits for the client): what does not fit its queue is re-read later."""

    @property
    def organization_id(self) -> uuid.UUID: ...

    def offer_activity(self, event: ActivityEvent) -> None:
        """A committed event of a project the session streams (live fan-out)."""
        ...

    def watch_project(self, project_id: uuid.UUID) -> None:
        """A project of the organization the session did not know (created after its
        ``hello``): stream it from its first event."""
        ...

    def catch_up_activity(self) -> None:
        """Re-read every streamed project and followed process (notifications may be missed)."""
        ...

    def push_status(self, msg: NodeStatusChanged) -> None:
        """A node of the organization changed status (coalesced per node)."""
        ...

    def logs_appended(self, execution_process_id: uuid.UUID) -> None:
        """New lines of a followed execution process were committed."""
        ...

    def abort(self, code: int, reason: str) -> None:
        """Close the session now (the hive shuts down)."""
        ...


class Watchers(Protocol):
    """The user stream sessions of this process."""

    def __len__(self) -> int: ...

    def watchers(self) -> list[Watcher]: ...

    def for_org(self, organization_id: uuid.UUID) -> list[Watcher]: ...

    def for_project(self, project_id: uuid.UUID) -> list[Watcher] | None:
        """Watchers streaming the project; None when the project is not known to belong to an
        organization with watchers (see :meth:`adopt`)."""
        ...

    def adopt(self, project_id: uuid.UUID, organization_id: uuid.UUID | None) -> list[Watcher]:
        """Record the project's organization (None: no such project); its watchers start
        streaming it (:meth:`Watcher.watch_project`) and are returned."""
        ...

    def following(self, execution_process_id: uuid.UUID) -> list[Watcher]: ...


class _NoWatchers:
    """No user stream sessions (a gateway built without them)."""

    def __len__(self) -> int:
        return 0

    def watchers(self) -> list[Watcher]:
        return []

    def for_org(self, organization_id: uuid.UUID) -> list[Watcher]:
        return []

    def for_project(self, project_id: uuid.UUID) -> list[Watcher] | None:
        return []

    def adopt(self, project_id: uuid.UUID, organization_id: uuid.UUID | None) -> list[Watcher]:
        return []

    def following(self, execution_process_id: uuid.UUID) -> list[Watcher]:
        return []


@dataclass(frozen=True, slots=True)
class GatewayDeps:
    """What the gateway's handlers and jobs use, built once the database is open."""

    db: Database
    settings: HiveSettings
    metrics: HiveMetrics
    directory: Directory
    watchers: Watchers = field(default_factory=_NoWatchers)
