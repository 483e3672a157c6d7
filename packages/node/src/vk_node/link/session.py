"""One session with the hive on an open WebSocket: the handshake, then the session's tasks.

``auth`` → ``auth_result`` (or ``error`` + close) → repair local state from the snapshot it
carries → ``projects_sync``, ``link_project`` for local links the hive lacks, ``digest`` → then,
side by side: the receive loop (:meth:`SessionRunner.dispatch` of each frame), the outbox
sender, heartbeats, periodic digests and the inbound worker (:mod:`.inbound`). The first of them
to end ends the session; every one of them is cancelled and awaited before :meth:`run` returns.
Every frame is decoded with ``vk_shared``'s codec; a bad frame is logged and skipped, a failing
handler is logged — neither ends the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from vk_node.errors import DomainError
from vk_node.link import activity
from vk_node.link.acks import Acks
from vk_node.link.assignments import AssignmentManager
from vk_node.link.clock import Clock
from vk_node.link.identity import capabilities
from vk_node.link.inbound import Inbound, InboundItem, SessionView
from vk_node.link.sender import OutboxSender
from vk_node.link.state import LinkState, LinkStats
from vk_node.services.projects import link_project as link_local_project
from vk_node.settings import NodeSettings
from vk_node.store import Store, outbox
from vk_node.store.models import Project
from vk_node.store.repositories import link_state
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import shared_activity_cursors as cursors_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.codec import Codec, ProtocolError
from vk_shared.digest import compute_buckets
from vk_shared.protocol import FEATURES, PROTOCOL_VERSION
from vk_shared.status import NodeStatus
from vk_shared.wire import (
    ActivityCursor,
    Auth,
    AuthResult,
    Digest,
    ErrorMessage,
    Heartbeat,
    HeartbeatAck,
    HiveMessage,
    LeaseGrant,
    LeaseRevoked,
    LinkProject,
    LocalProjectInfo,
    NodeMessage,
    OpAck,
    OpRejected,
    ProjectsSync,
    TaskAssign,
    TaskCancel,
    tag_of,
)

__all__ = ["Ended", "LinkSession", "SessionRunner", "close_text", "link_message"]

log = structlog.get_logger("vk_node.link")


@dataclass
class Ended:
    """Why a session ended."""

    error: str | None
    auth_failed: bool = False


@dataclass
class LinkSession:
    """An authenticated connection: where to send, and the inbound queue of its worker."""

    ws: ClientConnection
    codec: Codec
    auth: AuthResult
    inbound: asyncio.Queue[InboundItem] = field(default_factory=asyncio.Queue)

    @property
    def node_id(self) -> UUID:
        return self.auth.node_id

    @property
    def organization_id(self) -> UUID:
        return self.auth.organization_id

    async def send(self, msg: NodeMessage) -> None:
        await self.ws.send(self.codec.encode(msg))

    async def send_frame(self, data: bytes) -> None:
        """Send an encoded frame: text when this session speaks JSON, binary for msgpack."""
        await self.ws.send(data, text=not self.codec.binary)


class SessionRunner:
    """Runs the sessions of one link, one at a time, on the sockets the connection loop opens."""

    def __init__(
        self,
        store: Store,
        settings: NodeSettings,
        clock: Clock,
        *,
        state: LinkState,
        stats: LinkStats,
        sender: OutboxSender,
        assignments: AssignmentManager,
        inbound: Inbound,
        acks: Acks,
        on_change: Callable[[], None],
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._state = state
        self._stats = stats
        self._sender = sender
        self._assignments = assignments
        self._inbound = inbound
        self._acks = acks
        self._on_change = on_change
        self.machine_id = settings.machine_id
        """This instance's id on the hive (the owner sets the resolved one before connecting)."""
        self.current: LinkSession | None = None
        """The established session, if any (after its handshake)."""
        self.connected = asyncio.Event()
        """Set while a session is established."""

    # --- one session ----------------------------------------------------------------------

    async def run(self, ws: ClientConnection) -> Ended:
        """Authenticate on ``ws`` and serve the session until it ends; never raises for what
        the hive does."""
        try:
            return await self._run(ws)
        finally:
            self.current = None
            self.connected.clear()
            self._assignments.detach()

    async def _run(self, ws: ClientConnection) -> Ended:
        try:
            codec = Codec.for_subprotocol(ws.subprotocol)
        except ProtocolError:
            return Ended(f"the hive chose no supported subprotocol ({ws.subprotocol!r})")
        try:
            await ws.send(codec.encode(await self.auth_message()))
            reply = await asyncio.wait_for(
                self._first_reply(ws, codec), self._settings.link_auth_timeout_s
            )
        except TimeoutError:
            return Ended(f"no auth_result within {self._settings.link_auth_timeout_s} s")
        except ConnectionClosed as exc:
            return Ended(f"closed during auth: {close_text(exc)}")
        if isinstance(reply, ErrorMessage):
            log.error("link.auth_failed", code=reply.code, message=reply.message)
            return Ended(f"auth refused ({reply.code}): {reply.message}", auth_failed=True)
        session = LinkSession(ws, codec, reply)
        structlog.contextvars.bind_contextvars(node_id=str(reply.node_id))
        await self._on_auth_result(reply)
        self._state.connected(reply.node_id, reply.organization_id, self._clock.wall())
        self._stats.sessions += 1
        self._on_change()
        log.info(
            "link.connected",
            node_id=str(reply.node_id),
            organization_id=str(reply.organization_id),
            subprotocol=codec.subprotocol,
            linked_projects=len(reply.linked_projects),
            lease_ttl_ms=reply.lease_ttl_ms,
        )
        try:
            await self._handshake(session)
        except ConnectionClosed as exc:
            return Ended(close_text(exc))
        self.current = session
        self.connected.set()
        self._assignments.attach(session.send)
        async with self._store.read() as conn:
            acked = await outbox.last_acked_seq(conn)
        receive = asyncio.create_task(self._receive(session))
        helpers = [
            asyncio.create_task(
                self._sender.run(
                    session.codec,
                    session.send_frame,
                    acked,
                    hive_features=frozenset(session.auth.features),
                )
            ),
            asyncio.create_task(self._heartbeats(session)),
            asyncio.create_task(self._digests(session)),
            asyncio.create_task(self._inbound.run(session)),
        ]
        everything = [receive, *helpers]
        try:
            done, _ = await asyncio.wait(everything, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in everything:
                task.cancel()
            await asyncio.gather(*everything, return_exceptions=True)
        for task in done:
            if task is receive and not task.cancelled() and task.exception() is None:
                return Ended(task.result())
            error = None if task.cancelled() else task.exception()
            if isinstance(error, ConnectionClosed):
                return Ended(close_text(error))
            if error is not None:
                log.error("link.session_task_failed", error=repr(error))
                return Ended(f"{type(error).__name__}: {error}")
        return Ended("session ended")

    # --- handshake ------------------------------------------------------------------------

    async def auth_message(self) -> Auth:
        """The ``auth`` frame: key, identity, capabilities, cursors of linked projects, and the
        outbox's ack frontier."""
        async with self._store.read() as conn:
            cursors = await cursors_repo.list_all(conn)
            linked = {
                p.remote_project_id for p in await projects_repo.find_all_with_remote_id(conn)
            }
            acked = await outbox.last_acked_seq(conn)
        settings = self._settings
        return Auth(
            api_key=settings.api_key or "-",
            machine_id=self.machine_id,
            name=settings.name or "vk-node",
            capabilities=capabilities(settings),
            public_url=settings.public_url or None,
            protocol_version=PROTOCOL_VERSION,
            activity_cursors=[
                ActivityCursor(project_id=c.remote_project_id, seq=c.last_seq)
                for c in cursors
                if c.remote_project_id in linked
            ],
            last_acked_seq=acked,
            features=list(FEATURES),
        )

    async def _first_reply(self, ws: ClientConnection, codec: Codec) -> AuthResult | ErrorMessage:
        while True:
            frame = await ws.recv()
            try:
                msg = codec.decode_hive(frame)
            except ProtocolError as exc:
                self._bad_frame(exc)
                continue
            if isinstance(msg, AuthResult | ErrorMessage):
                return msg
            log.warning("link.unexpected_before_auth", type=tag_of(msg))

    async def _on_auth_result(self, msg: AuthResult) -> None:
        """Repair local state from the snapshot in ``auth_result``."""
        for link in msg.linked_projects:
            async with self._store.read() as conn:
                project = await projects_repo.find_by_id(conn, link.local_project_id)
            if project is not None and project.remote_project_id is None:
                try:
                    await link_local_project(self._store, project.id, link.project_id)
                except DomainError as exc:
                    log.warning("link.relink_failed", project_id=str(project.id), error=str(exc))
        async with self._store.transaction() as conn:
            await link_state.save_hive_features(conn, msg.features)
            for label in msg.swarm_labels:
                await activity.apply_label(conn, label)
            last = await outbox.last_seq(conn)
        # ``applied_through_seq`` is informative: acks are taken only from ``op_ack`` for seqs
        # sent in this session (the sender resends what was not acked; the hive dedups).
        if msg.applied_through_seq > last:
            log.warning(
                "link.hive_ahead_of_outbox",
                applied_through_seq=msg.applied_through_seq,
                outbox_last_seq=last,
            )

    async def _handshake(self, session: LinkSession) -> None:
        async with self._store.read() as conn:
            local = await projects_repo.find_local_projects(conn)
        await session.send(
            ProjectsSync(
                projects=[
                    LocalProjectInfo(
                        local_project_id=p.id,
                        name=p.name[:255] or "-",
                        git_repo_path=p.git_repo_path,
                    )
                    for p in local
                ]
            )
        )
        known = {(lp.local_project_id, lp.project_id) for lp in session.auth.linked_projects}
        for project in local:
            if (
                project.remote_project_id is not None
                and (project.id, project.remote_project_id) not in known
            ):
                await session.send(link_message(project))
        await self.send_digest(session)

    # --- periodic -------------------------------------------------------------------------

    async def send_digest(self, session: LinkSession) -> None:
        async with self._store.read() as conn:
            entries = await tasks_repo.find_digest_entries(conn)
            last = await outbox.last_seq(conn)
        buckets = compute_buckets((shared, version) for _, shared, version in entries)
        await session.send(Digest(buckets=buckets, last_seq=last))
        self._stats.digests_sent += 1
        log.debug("digest.sent", tasks=len(entries), buckets=len(buckets), last_seq=last)

    async def _heartbeats(self, session: LinkSession) -> None:
        interval = session.auth.heartbeat_interval_ms / 1000
        while True:
            running = self._assignments.running()
            capacity = max(0, self._settings.max_concurrent - running)
            status = NodeStatus.BUSY if capacity == 0 else NodeStatus.ONLINE
            await session.send(Heartbeat(status=status, running=running, capacity=capacity))
            await self._clock.sleep(interval)

    async def _digests(self, session: LinkSession) -> None:
        while True:
            await self._clock.sleep(self._settings.digest_interval_s)
            await self.send_digest(session)

    # --- receive --------------------------------------------------------------------------

    def _bad_frame(self, exc: ProtocolError) -> None:
        self._stats.bad_frames += 1
        log.warning("link.bad_frame", error=str(exc)[:500], code=exc.code, path=exc.path)

    async def _receive(self, session: LinkSession) -> str:
        async for frame in session.ws:
            try:
                msg = session.codec.decode_hive(frame)
            except ProtocolError as exc:
                self._bad_frame(exc)
                continue
            try:
                await self.dispatch(session, msg)
            except (asyncio.CancelledError, ConnectionClosed):
                raise
            except Exception:
                log.exception("link.handler_failed", type=tag_of(msg))
        return f"closed by the hive: {close_text(None, session.ws)}"

    async def dispatch(self, session: SessionView, msg: HiveMessage) -> None:
        """Handle one hive message: acks and lease messages at once, everything that changes
        the store queued for the inbound worker (in arrival order)."""
        if isinstance(msg, OpAck):
            await self._acks.on_ack(session, msg)
        elif isinstance(msg, OpRejected):
            await self._acks.on_rejected(session, msg)
        elif isinstance(msg, TaskAssign):
            await self._assignments.on_task_assign(msg)
        elif isinstance(msg, LeaseGrant):
            await self._assignments.on_lease_grant(msg)
        elif isinstance(msg, LeaseRevoked):
            self._assignments.on_lease_revoked(msg.assignment_id, msg.reason)
        elif isinstance(msg, TaskCancel):
            self._assignments.on_task_cancel(msg.assignment_id, msg.reason)
        elif isinstance(msg, HeartbeatAck):
            pass
        elif isinstance(msg, ErrorMessage):
            log.warning("link.hive_error", code=msg.code, message=msg.message, ref=msg.ref)
        elif isinstance(msg, AuthResult):
            log.warning("link.unexpected", type="auth_result")
        else:
            session.inbound.put_nowait(msg)


def link_message(project: Project) -> LinkProject:
    assert project.remote_project_id is not None
    return LinkProject(
        project_id=project.remote_project_id,
        local_project_id=project.id,
        git_repo_path=project.git_repo_path,
    )


def close_text(exc: ConnectionClosed | None, ws: ClientConnection | None = None) -> str:
    """The close code and reason the hive sent (``ConnectionClosed.code`` is deprecated)."""
    code: int | None
    if exc is not None:
        frame = exc.rcvd
        code, reason = (int(frame.code), frame.reason) if frame is not None else (1006, "")
    else:
        code = ws.close_code if ws is not None else None
        reason = (ws.close_reason if ws is not None else None) or ""
    return f"code {code}" + (f": {reason}" if reason else "")
