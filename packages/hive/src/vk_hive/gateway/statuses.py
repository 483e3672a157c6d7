"""``node_status``: what a node's status change looks like on the wire, and who hears of it.

Who: the nodes that share a swarm project with it (a node keeps the status of the nodes its
linked projects come from; the whole organization's list is a ``GET /v1/sync/nodes`` away) and
the organization's user stream sessions (the boards). So a connect storm of N nodes on their own
projects costs O(N) frames, not one frame per node and per other node of the organization.

When: :class:`StatusAnnouncer` announces a node's status *as the table has it* a little after
the change was noted — changes noted within :data:`BATCH_S` are read in one query, a node going
offline is announced only after a grace period (``status_offline_grace_s``: a node that
reconnects meanwhile, here or on another hive process, is never shown offline), and a status
equal to the last one this process announced for that node (to the same projects) is not
announced again; a node that links a project is announced anew (to that project's nodes). Receivers
coalesce what they have not sent yet per node (:meth:`Outbound.push_status
<vk_hive.gateway.outgoing.Outbound.push_status>`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable

import structlog

from vk_hive.gateway.ports import Directory, Peer, Watchers
from vk_hive.store.db import Database
from vk_hive.store.models import Node
from vk_hive.store.repositories import nodes, project_links
from vk_shared.status import NodeStatus
from vk_shared.wire import NodeStatusChanged

__all__ = ["BATCH_S", "StatusAnnouncer", "announce_status", "status_message"]

log = structlog.get_logger("vk_hive.gateway.statuses")

BATCH_S = 0.05


def status_message(node: Node) -> NodeStatusChanged:
    return NodeStatusChanged(
        node_id=node.id,
        status=node.status,
        name=node.name[:255] or None,
        public_url=node.public_url[:4096] if node.public_url else None,
        last_heartbeat_at=node.last_heartbeat_at,
    )


def announce_status(
    directory: Directory, watchers: Watchers, node: Node, projects: Iterable[uuid.UUID]
) -> None:
    """Tell this process's sessions: the nodes linked to one of ``projects`` (the node's own
    links; the node itself excluded) and the organization's user stream sessions."""
    msg = status_message(node)
    told: set[uuid.UUID] = {node.id}
    for project_id in projects:
        peer: Peer
        for peer in directory.for_project(project_id):
            other = peer.node.node_id
            if other not in told and peer.node.organization_id == node.organization_id:
                told.add(other)
                peer.push_status(msg)
    for watcher in watchers.for_org(node.organization_id):
        watcher.push_status(msg)


class StatusAnnouncer:
    """Announces status changes to this process's sessions, batched, graced and deduplicated
    (module docstring); ``published`` is told the ids it announced because they were noted
    here (so the other hive processes announce them too)."""

    def __init__(
        self,
        db: Database,
        directory: Directory,
        watchers: Watchers,
        published: Callable[[list[uuid.UUID]], None],
    ) -> None:
        self._db = db
        self._directory = directory
        self._watchers = watchers
        self._published = published
        self._ready: dict[uuid.UUID, bool] = {}
        """Due for announcement → whether it was noted here (to publish)."""
        self._timers: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self._last: dict[uuid.UUID, tuple[str, str, str | None, frozenset[uuid.UUID]]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.announced = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="vk-hive-statuses")

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)
            self._task = None

    def note(self, node_id: uuid.UUID, *, after_s: float = 0.0, publish: bool = True) -> None:
        """The node's status may have changed: announce it (as the table has it then) in
        ``after_s`` seconds, or at the next batch. A later delayed note replaces a pending one;
        a note for now leaves it running, and while it runs the node is not announced offline
        (an offline within its grace is told only by the grace's own note)."""
        if after_s <= 0:
            self._due(node_id, publish)
            return
        timer = self._timers.pop(node_id, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[node_id] = loop.call_later(after_s, self._graced, node_id, publish)

    def _graced(self, node_id: uuid.UUID, publish: bool) -> None:
        self._timers.pop(node_id, None)
        self._due(node_id, publish)

    def _due(self, node_id: uuid.UUID, publish: bool) -> None:
        self._ready[node_id] = self._ready.get(node_id, False) or publish
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(BATCH_S)
            self._wake.clear()
            ready, self._ready = self._ready, {}
            try:
                await self._announce(ready)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("statuses.announce_failed", error=type(exc).__name__)

    async def _announce(self, ready: dict[uuid.UUID, bool]) -> None:
        ids = list(ready)
        async with self._db.acquire() as conn:
            rows = await nodes.find_by_ids(conn, ids)
            projects = await project_links.linked_projects(conn, ids)
        for row in rows:
            linked = frozenset(projects.get(row.id, ()))
            key = (str(row.status), row.name, row.public_url, linked)
            if self._last.get(row.id) == key:
                continue
            if row.status == NodeStatus.OFFLINE and row.id in self._timers:
                continue  # within its grace: its graced note tells it, unless it reconnects
            self._last[row.id] = key
            announce_status(self._directory, self._watchers, row, linked)
            self.announced += 1
        published = [node_id for node_id, here in ready.items() if here]
        if published:
            self._published(published)
