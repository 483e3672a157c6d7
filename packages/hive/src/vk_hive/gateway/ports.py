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
- :class:`Cluster`: the other hive processes over the same database
  (:class:`~vk_hive.gateway.cluster.ClusterLink`): what a process decided for a node whose
  session lives elsewhere, and the node events every process must hear of.
- :class:`GatewayDeps`: what handlers, the fan-out and the dispatcher need from the hive
  (database, settings, metrics, directory, watchers, cluster) — passed down, never reached
  through.

Nothing here imports another gateway module but :mod:`.identity`, so every gateway module may
depend on these without a cycle.
"""

from __future__ import annotations

import asyncio
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

__all__ = ["Cluster", "Directory", "GatewayDeps", "Outgoing", "Peer", "Watcher", "Watchers"]


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

    def followed(self) -> list[uuid.UUID]:
        """The execution processes some watcher follows."""
        ...

    @property
    def follows_changed(self) -> asyncio.Event:
        """Set when the first process is followed or the last one unfollowed."""
        ...


class _NoWatchers:
    """No user stream sessions (a gateway built without them)."""

    def __init__(self) -> None:
        self._never = asyncio.Event()

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

    def followed(self) -> list[uuid.UUID]:
        return []

    @property
    def follows_changed(self) -> asyncio.Event:
        return self._never


class Cluster(Protocol):
    """This hive process among those sharing the database (status announcements included).
    Every call returns at once; delivery is best effort (PostgreSQL notifications), and each
    thing sent has a second path that does not depend on it (docs/architecture.md, "Several
    hive processes")."""

    def assign(self, node_id: uuid.UUID, assignment_id: uuid.UUID) -> None:
        """Push ``task_assign`` from the process that serves the node's session."""
        ...

    def deliver(
        self,
        msg: WireStruct,
        *,
        node_ids: Iterable[uuid.UUID] = (),
        organization_id: uuid.UUID | None = None,
        exclude: uuid.UUID | None = None,
    ) -> None:
        """Push ``msg`` to the named nodes, or to every node of the organization but
        ``exclude``, wherever they are connected."""
        ...

    def status_changed(self, node_id: uuid.UUID, *, after_s: float = 0.0) -> None:
        """The node's status may have changed: announce it, as the table has it ``after_s``
        seconds from now (or at the next batch), to the sessions of every hive process
        (:mod:`vk_hive.gateway.statuses`)."""
        ...

    def session_started(self, node_id: uuid.UUID, session_id: uuid.UUID) -> None:
        """The node authenticated with a new session: any older one ends, wherever it is."""
        ...

    def disconnect(self, node_id: uuid.UUID, reason: str) -> None:
        """Close the node's session wherever it is (its access was taken away)."""
        ...


class _SingleProcess:
    """No other hive process (a gateway built without a cluster link)."""

    def assign(self, node_id: uuid.UUID, assignment_id: uuid.UUID) -> None:
        return None

    def deliver(
        self,
        msg: WireStruct,
        *,
        node_ids: Iterable[uuid.UUID] = (),
        organization_id: uuid.UUID | None = None,
        exclude: uuid.UUID | None = None,
    ) -> None:
        return None

    def status_changed(self, node_id: uuid.UUID, *, after_s: float = 0.0) -> None:
        return None

    def session_started(self, node_id: uuid.UUID, session_id: uuid.UUID) -> None:
        return None

    def disconnect(self, node_id: uuid.UUID, reason: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class GatewayDeps:
    """What the gateway's handlers and jobs use, built once the database is open."""

    db: Database
    settings: HiveSettings
    metrics: HiveMetrics
    directory: Directory
    watchers: Watchers = field(default_factory=_NoWatchers)
    cluster: Cluster = field(default_factory=_SingleProcess)
