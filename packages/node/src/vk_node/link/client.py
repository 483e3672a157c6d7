"""The hive link: :class:`HiveLink` owns the node's side of the control channel and everything
that lives across sessions, and wires the parts together:

- :mod:`.connection` — the connection loop: connect, reconnect with backoff, link state;
- :mod:`.session` — one session: handshake, receive and dispatch, heartbeats, digests;
- :mod:`.inbound` — what hive messages change in the store: activity, snapshots, pulls;
- :mod:`.acks` — the hive's answers to the outbox (``op_ack``, ``op_rejected``);
- :mod:`.sender` and :mod:`.assignments` — the outbox stream and the leases of hive work.

Every background task has this owner: :meth:`HiveLink.start` starts them, :meth:`HiveLink.close`
cancels and awaits them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Callable
from uuid import UUID

import structlog

from vk_node.executor.service import ExecutorService
from vk_node.link.acks import Acks
from vk_node.link.assignments import AssignmentManager
from vk_node.link.backoff import Backoff
from vk_node.link.clock import Clock, SystemClock
from vk_node.link.connection import ConnectionLoop
from vk_node.link.identity import http_base_url, resolve_machine_id
from vk_node.link.inbound import Inbound
from vk_node.link.rest import SyncClient
from vk_node.link.sender import OutboxSender
from vk_node.link.session import SessionRunner, link_message
from vk_node.link.state import LinkState, LinkStats, LinkStatus
from vk_node.link.tasks import TaskGroupOwner
from vk_node.settings import NodeSettings
from vk_node.store import Store, outbox
from vk_node.store.models import Project
from vk_node.store.repositories import link_state as link_state_repo
from vk_node.store.repositories import shared_activity_cursors as cursors_repo
from vk_shared.wire import UnlinkProject

__all__ = ["HiveLink", "LinkStats"]

log = structlog.get_logger("vk_node.link")


class HiveLink:
    """Owns the connection loop and everything that lives across sessions."""

    def __init__(
        self,
        store: Store,
        settings: NodeSettings,
        executor: ExecutorService,
        *,
        clock: Clock | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.settings = settings
        self.executor = executor
        self.clock: Clock = clock or SystemClock(settings.clock_skew_s)
        self.state = LinkState(settings.hive_urls)
        self.stats = LinkStats()
        self.backoff = Backoff(
            settings.link_backoff_initial_s,
            settings.link_backoff_max_s,
            jitter=settings.link_backoff_jitter,
            rand=rand,
        )
        self.assignments = AssignmentManager(store, settings, self.clock, executor)
        self.sender = OutboxSender(store, settings, self.clock, self.assignments)
        self.sync = SyncClient(http_base_url(self.state.hive_url), settings.api_key)
        self.inbound = Inbound(store, self.sync, self.sender, self.stats)
        self.acks = Acks(store, self.sender, self.assignments, self.inbound, self.stats)
        self.sessions = SessionRunner(
            store,
            settings,
            self.clock,
            state=self.state,
            stats=self.stats,
            sender=self.sender,
            assignments=self.assignments,
            inbound=self.inbound,
            acks=self.acks,
            on_change=self._changed,
        )
        self.connection = ConnectionLoop(
            settings,
            self.clock,
            state=self.state,
            stats=self.stats,
            backoff=self.backoff,
            sessions=self.sessions,
            on_change=self._changed,
            on_hive=self._use_hive,
        )
        self._state_changed = asyncio.Event()
        self._owner = TaskGroupOwner()

    @property
    def machine_id(self) -> str:
        """This instance's id on the hive (resolved from the store by :meth:`start`)."""
        return self.sessions.machine_id

    @property
    def connected(self) -> asyncio.Event:
        """Set while a session is established (tests wait on it)."""
        return self.sessions.connected

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.sessions.machine_id = await resolve_machine_id(self.store, self.settings)
        await self.assignments.start()
        self._owner.spawn(self._persist_loop())
        self._owner.spawn(self.connection.run())
        self._changed()

    async def close(self) -> None:
        await self._owner.close()
        await self.assignments.close()
        self.sender.close()
        await self.sync.aclose()
        self.state.stopped()
        self.connected.clear()
        with contextlib.suppress(Exception):
            await self._persist()
        log.info("link.stopped")

    # --- status ---------------------------------------------------------------------------

    async def status(self) -> LinkStatus:
        async with self.store.read() as conn:
            backlog = await outbox.backlog_count(conn)
        return self.state.snapshot(outbox_backlog=backlog, held=len(self.assignments.leases))

    def _use_hive(self, hive_url: str) -> None:
        """The link tries ``hive_url`` now: snapshots and pulls of its session go there too."""
        self.sync.base_url = http_base_url(hive_url)

    def _changed(self) -> None:
        self._state_changed.set()

    async def _persist(self) -> None:
        s = self.state
        async with self.store.transaction() as conn:
            await link_state_repo.save(
                conn,
                state=s.state,
                hive_url=s.hive_url,
                node_id=s.node_id,
                organization_id=s.organization_id,
                connected_since=s.connected_since,
                last_error=s.last_error,
                backoff_until=s.backoff_until,
                pid=os.getpid(),
            )

    async def _persist_loop(self) -> None:
        while True:
            await self._state_changed.wait()
            self._state_changed.clear()
            try:
                await self._persist()
            except Exception:
                log.exception("link.state_persist_failed")

    # --- local changes (REST hooks) and operator requests ---------------------------------

    async def project_linked(self, project: Project) -> None:
        """A local project was linked: tell the hive now when connected (else on connect)."""
        session = self.sessions.current
        if session is not None and project.remote_project_id is not None:
            await session.send(link_message(project))

    async def project_unlinked(self, swarm_project_id: UUID) -> None:
        """A local project was unlinked: forget its activity cursor, tell the hive."""
        async with self.store.transaction() as conn:
            await cursors_repo.delete(conn, swarm_project_id)
        session = self.sessions.current
        if session is not None:
            await session.send(UnlinkProject(project_id=swarm_project_id))

    async def send_digest(self) -> bool:
        """Send a digest now (tests, operators); whether a session was there to send it."""
        session = self.sessions.current
        if session is None:
            return False
        await self.sessions.send_digest(session)
        return True
