"""The hive link: one WebSocket session at a time to ``<hive>/v1/nodes/ws``, reconnecting with
backoff (``async for ws in connect(...)``; our own :class:`~vk_node.link.backoff.Backoff` supplies
the delays so they come from settings, jitter included, and auth failures wait the maximum).

A session: ``auth`` → ``auth_result`` (or ``error`` + close) → apply the snapshot it carries →
``projects_sync``, ``link_project`` for local links the hive lacks, ``digest`` → then, side by
side: the receive loop, the outbox sender, heartbeats, periodic digests and an inbound worker that
applies activity, snapshots and digest pulls in arrival order. Every frame is decoded with
``vk_shared``'s codec; a bad frame is logged and skipped, a failing handler is logged — neither
ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import aiosqlite
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.typing import Subprotocol

from vk_node import __version__
from vk_node.errors import DomainError
from vk_node.executor.service import ExecutorService
from vk_node.link import activity
from vk_node.link.assignments import AssignmentManager
from vk_node.link.backoff import Backoff
from vk_node.link.clock import Clock, SystemClock
from vk_node.link.identity import capabilities, http_base_url, resolve_machine_id, ws_url
from vk_node.link.rest import SyncClient, SyncError
from vk_node.link.sender import OutboxSender
from vk_node.link.state import LinkState, LinkStatus
from vk_node.link.tasks import TaskGroupOwner
from vk_node.services.projects import link_project as link_local_project
from vk_node.settings import NodeSettings
from vk_node.store import Store, outbox
from vk_node.store.models import Project
from vk_node.store.repositories import cached_nodes as nodes_repo
from vk_node.store.repositories import link_state as link_state_repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import shared_activity_cursors as cursors_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.codec import Codec, ProtocolError
from vk_shared.digest import compute_buckets
from vk_shared.protocol import MAX_FRAME_BYTES, PROTOCOL_VERSION, SUBPROTOCOLS
from vk_shared.status import NodeStatus
from vk_shared.wire import (
    Activity,
    ActivityCursor,
    Auth,
    AuthResult,
    Digest,
    DigestResult,
    ErrorMessage,
    Heartbeat,
    HeartbeatAck,
    HiveMessage,
    LabelSync,
    LeaseGrant,
    LeaseRevoked,
    LinkProject,
    LocalProjectInfo,
    NodeMessage,
    NodeRemoved,
    NodeStatusChanged,
    OpAck,
    OpBatch,
    OpRejected,
    ProjectsSync,
    ProjectSync,
    ResyncRequired,
    TaskAssign,
    TaskCancel,
    TaskUpsert,
    UnlinkProject,
    tag_of,
)

__all__ = ["HiveLink", "LinkStats"]

log = structlog.get_logger("vk_node.link")


@dataclass
class LinkStats:
    """Counters for status and tests."""

    sessions: int = 0
    bad_frames: int = 0
    activity_applied: int = 0
    activity_seen: int = 0
    digests_sent: int = 0
    resyncs: int = 0
    pulled: int = 0
    rejections: int = 0
    ops_acked: int = 0
    """Outbox ops the hive acknowledged (op_ack, or the applied-through seq of auth_result)."""
    last_digest_result: DigestResult | None = None


@dataclass
class _Pull:
    """Re-read these hive tasks (queued behind the inbound messages that came before)."""

    task_ids: list[UUID]


@dataclass
class _Ended:
    error: str | None
    auth_failed: bool = False


class _Session:
    def __init__(self, ws: ClientConnection, codec: Codec, auth: AuthResult) -> None:
        self.ws = ws
        self.codec = codec
        self.node_id = auth.node_id
        self.organization_id = auth.organization_id
        self.auth = auth
        self.inbound: asyncio.Queue[HiveMessage | _Pull] = asyncio.Queue()

    async def send(self, msg: NodeMessage) -> None:
        await self.ws.send(self.codec.encode(msg))

    async def send_batch(self, batch: OpBatch) -> int:
        data = self.codec.encode(batch)
        await self.ws.send(data)
        return len(data)


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
        self.state = LinkState(settings.hive_url)
        self.stats = LinkStats()
        self.backoff = Backoff(
            settings.link_backoff_initial_s,
            settings.link_backoff_max_s,
            jitter=settings.link_backoff_jitter,
            rand=rand,
        )
        self.assignments = AssignmentManager(store, settings, self.clock, executor)
        self.sender = OutboxSender(store, settings, self.clock, self.assignments)
        self.sync = SyncClient(http_base_url(settings.hive_url), settings.api_key)
        self.machine_id = settings.machine_id
        """This instance's id on the hive (resolved from the store by :meth:`start`)."""
        self._session: _Session | None = None
        self._connect_error: str | None = None
        self._state_changed = asyncio.Event()
        self._owner = TaskGroupOwner()
        self.connected = asyncio.Event()
        """Set while a session is established (tests wait on it)."""
        self._held_back: set[UUID] = set()
        """Hive tasks whose copy the dirty guard skipped; pulled once their local ops are acked
        (an echo that came before the ack would otherwise leave the local version behind)."""

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.machine_id = await resolve_machine_id(self.store, self.settings)
        await self.assignments.start()
        self._owner.spawn(self._persist_loop())
        self._owner.spawn(self._main())
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

    # --- local project changes (REST hooks) -----------------------------------------------

    async def project_linked(self, project: Project) -> None:
        """A local project was linked: tell the hive now when connected (else on connect)."""
        session = self._session
        if session is not None and project.remote_project_id is not None:
            await session.send(_link_message(project))

    async def project_unlinked(self, swarm_project_id: UUID) -> None:
        """A local project was unlinked: forget its activity cursor, tell the hive."""
        async with self.store.transaction() as conn:
            await cursors_repo.delete(conn, swarm_project_id)
        session = self._session
        if session is not None:
            await session.send(UnlinkProject(project_id=swarm_project_id))

    # --- connection loop ------------------------------------------------------------------

    def _delays(self) -> Generator[float]:
        while True:
            delay = self.backoff.failure()
            self.state.disconnected(self._connect_error, self.clock.wall(), delay)
            self._changed()
            yield delay

    def _connect_failed(self, exc: Exception) -> Exception | None:
        self._connect_error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("link.connect_failed", error=self._connect_error)
        return exc if isinstance(exc, InvalidURI) else None

    async def _main(self) -> None:
        url = ws_url(self.settings.hive_url)
        while True:
            try:
                await self._connect_loop(url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.backoff.auth_failure()
                self.state.disconnected(f"{type(exc).__name__}: {exc}", self.clock.wall(), delay)
                self._changed()
                log.error("link.loop_failed", error=str(exc), retry_in_s=round(delay, 3))
                await self.clock.sleep(delay)

    async def _connect_loop(self, url: str) -> None:
        s = self.settings
        self.state.connecting()
        self._changed()
        log.info("link.connecting", url=url)
        async for ws in connect(
            url,
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
            open_timeout=s.link_open_timeout_s,
            ping_interval=s.link_ping_interval_s,
            ping_timeout=s.link_ping_interval_s,
            close_timeout=2.0,
            max_size=MAX_FRAME_BYTES,
            compression=None,
            proxy=None,
            user_agent_header=f"vk-node/{__version__}",
            reconnect_delays=self._delays,
            process_exception=self._connect_failed,
        ):
            started = self.clock.monotonic()
            connection_id = uuid4().hex[:16]
            try:
                with structlog.contextvars.bound_contextvars(connection_id=connection_id):
                    ended = await self._session_run(ws)
            finally:
                structlog.contextvars.unbind_contextvars("node_id")
                self._session = None
                self.connected.clear()
                self.assignments.detach()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2.0)
            duration = self.clock.monotonic() - started
            if ended.auth_failed:
                delay = self.backoff.auth_failure()
            else:
                delay = self.backoff.session_ended(duration)
            self.state.disconnected(ended.error, self.clock.wall(), delay)
            self._changed()
            log.info(
                "link.disconnected",
                error=ended.error,
                session_s=round(duration, 3),
                retry_in_s=round(delay, 3),
            )
            await self.clock.sleep(delay)
            self.state.connecting()
            self._changed()

    # --- one session ----------------------------------------------------------------------

    async def _auth_message(self) -> Auth:
        async with self.store.read() as conn:
            cursors = await cursors_repo.list_all(conn)
            linked = {
                p.remote_project_id for p in await projects_repo.find_all_with_remote_id(conn)
            }
            acked = await outbox.last_acked_seq(conn)
        return Auth(
            api_key=self.settings.api_key or "-",
            machine_id=self.machine_id,
            name=self.settings.name or "vk-node",
            capabilities=capabilities(self.settings),
            public_url=self.settings.public_url or None,
            protocol_version=PROTOCOL_VERSION,
            activity_cursors=[
                ActivityCursor(project_id=c.remote_project_id, seq=c.last_seq)
                for c in cursors
                if c.remote_project_id in linked
            ],
            last_acked_seq=acked,
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

    async def _session_run(self, ws: ClientConnection) -> _Ended:
        try:
            codec = Codec.for_subprotocol(ws.subprotocol)
        except ProtocolError:
            return _Ended(f"the hive chose no supported subprotocol ({ws.subprotocol!r})")
        try:
            await ws.send(codec.encode(await self._auth_message()))
            reply = await asyncio.wait_for(
                self._first_reply(ws, codec), self.settings.link_auth_timeout_s
            )
        except TimeoutError:
            return _Ended(f"no auth_result within {self.settings.link_auth_timeout_s} s")
        except ConnectionClosed as exc:
            return _Ended(f"closed during auth: {_close_text(exc)}")
        if isinstance(reply, ErrorMessage):
            log.error("link.auth_failed", code=reply.code, message=reply.message)
            return _Ended(f"auth refused ({reply.code}): {reply.message}", auth_failed=True)
        session = _Session(ws, codec, reply)
        structlog.contextvars.bind_contextvars(node_id=str(reply.node_id))
        await self._on_auth_result(reply)
        self.state.connected(reply.node_id, reply.organization_id, self.clock.wall())
        self.stats.sessions += 1
        self._changed()
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
            return _Ended(_close_text(exc))
        self._session = session
        self.connected.set()
        self.assignments.attach(session.send)
        async with self.store.read() as conn:
            acked = await outbox.last_acked_seq(conn)
        receive = asyncio.create_task(self._receive(session))
        helpers = [
            asyncio.create_task(self.sender.run(session.send_batch, acked)),
            asyncio.create_task(self._heartbeats(session)),
            asyncio.create_task(self._digests(session)),
            asyncio.create_task(self._inbound(session)),
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
                return _Ended(task.result())
            error = None if task.cancelled() else task.exception()
            if isinstance(error, ConnectionClosed):
                return _Ended(_close_text(error))
            if error is not None:
                log.error("link.session_task_failed", error=repr(error))
                return _Ended(f"{type(error).__name__}: {error}")
        return _Ended("session ended")

    async def _on_auth_result(self, msg: AuthResult) -> None:
        """Repair local state from the snapshot in ``auth_result``."""
        for link in msg.linked_projects:
            async with self.store.read() as conn:
                project = await projects_repo.find_by_id(conn, link.local_project_id)
            if project is not None and project.remote_project_id is None:
                try:
                    await link_local_project(self.store, project.id, link.project_id)
                except DomainError as exc:
                    log.warning("link.relink_failed", project_id=str(project.id), error=str(exc))
        async with self.store.transaction() as conn:
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

    async def _handshake(self, session: _Session) -> None:
        async with self.store.read() as conn:
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
                await session.send(_link_message(project))
        await self._send_digest(session)

    async def _send_digest(self, session: _Session) -> None:
        async with self.store.read() as conn:
            entries = await tasks_repo.find_digest_entries(conn)
            last = await outbox.last_seq(conn)
        buckets = compute_buckets((shared, version) for _, shared, version in entries)
        await session.send(Digest(buckets=buckets, last_seq=last))
        self.stats.digests_sent += 1
        log.debug("digest.sent", tasks=len(entries), buckets=len(buckets), last_seq=last)

    async def send_digest(self) -> bool:
        """Send a digest now (tests, operators); whether a session was there to send it."""
        session = self._session
        if session is None:
            return False
        await self._send_digest(session)
        return True

    async def _heartbeats(self, session: _Session) -> None:
        interval = session.auth.heartbeat_interval_ms / 1000
        while True:
            running = self.assignments.running()
            capacity = max(0, self.settings.max_concurrent - running)
            status = NodeStatus.BUSY if capacity == 0 else NodeStatus.ONLINE
            await session.send(Heartbeat(status=status, running=running, capacity=capacity))
            await self.clock.sleep(interval)

    async def _digests(self, session: _Session) -> None:
        while True:
            await self.clock.sleep(self.settings.digest_interval_s)
            await self._send_digest(session)

    # --- inbound --------------------------------------------------------------------------

    def _bad_frame(self, exc: ProtocolError) -> None:
        self.stats.bad_frames += 1
        log.warning("link.bad_frame", error=str(exc)[:500], code=exc.code, path=exc.path)

    async def _receive(self, session: _Session) -> str:
        async for frame in session.ws:
            try:
                msg = session.codec.decode_hive(frame)
            except ProtocolError as exc:
                self._bad_frame(exc)
                continue
            try:
                await self._dispatch(session, msg)
            except (asyncio.CancelledError, ConnectionClosed):
                raise
            except Exception:
                log.exception("link.handler_failed", type=tag_of(msg))
        return f"closed by the hive: {_close_text(None, session.ws)}"

    async def _dispatch(self, session: _Session, msg: HiveMessage) -> None:
        if isinstance(msg, OpAck):
            await self._on_ack(session, msg.applied_through_seq)
        elif isinstance(msg, OpRejected):
            await self._on_rejected(session, msg)
        elif isinstance(msg, TaskAssign):
            await self.assignments.on_task_assign(msg)
        elif isinstance(msg, LeaseGrant):
            await self.assignments.on_lease_grant(msg)
        elif isinstance(msg, LeaseRevoked):
            self.assignments.on_lease_revoked(msg.assignment_id, msg.reason)
        elif isinstance(msg, TaskCancel):
            self.assignments.on_task_cancel(msg.assignment_id, msg.reason)
        elif isinstance(msg, HeartbeatAck):
            pass
        elif isinstance(msg, ErrorMessage):
            log.warning("link.hive_error", code=msg.code, message=msg.message, ref=msg.ref)
        elif isinstance(msg, AuthResult):
            log.warning("link.unexpected", type="auth_result")
        else:
            session.inbound.put_nowait(msg)

    async def _on_ack(self, session: _Session, through: int) -> None:
        """Take the hive's cumulative ack — only as far as this session sent: an ack beyond that
        names ops this node never sent on this connection and changes nothing."""
        sent = self.sender.sent_through()
        if through > sent:
            log.warning("link.ack_beyond_sent", applied_through_seq=through, sent_through=sent)
            through = sent
        async with self.store.transaction() as conn:
            acked = await outbox.ack_through(conn, through)
            retired = await self.assignments.retire(conn, through)
        self.stats.ops_acked += acked
        self.assignments.forget(retired)
        self.sender.on_ack(through)
        if self._held_back:
            await self._pull_released(session)

    async def _on_rejected(self, session: _Session, msg: OpRejected) -> None:
        """Record the hive's refusal of one op — only of an op this session sent, named by both
        its seq and its idempotency key; anything else is ignored."""
        if not self.sender.was_sent(msg.seq):
            log.warning("link.rejection_not_sent", seq=msg.seq, code=msg.code)
            return
        async with self.store.transaction() as conn:
            refused = await _refused_task(conn, msg.seq, msg.idempotency_key)
            known = await outbox.record_rejection(
                conn, msg.seq, msg.idempotency_key, msg.code, msg.reason
            )
        if not known:
            log.warning("link.rejection_unknown_op", seq=msg.seq, code=msg.code)
            return
        self.stats.rejections += 1
        log.warning("link.op_rejected", seq=msg.seq, code=msg.code, reason=msg.reason)
        if refused is not None:
            # The local task holds a change the hive refused: take the hive's copy back.
            session.inbound.put_nowait(_Pull([refused]))

    async def _pull_released(self, session: _Session) -> None:
        """Queue a pull of the held-back hive tasks that have no unacked local op any more."""
        released = []
        async with self.store.read() as conn:
            for shared in list(self._held_back):
                task = await tasks_repo.find_by_shared_task_id(conn, shared)
                if task is None:
                    self._held_back.discard(shared)
                elif not await outbox.has_unacked_for_entity(conn, task.id):
                    self._held_back.discard(shared)
                    released.append(shared)
        if released:
            session.inbound.put_nowait(_Pull(released))

    async def _inbound(self, session: _Session) -> None:
        carry: HiveMessage | _Pull | None = None
        while True:
            msg = carry if carry is not None else await session.inbound.get()
            carry = None
            if isinstance(msg, Activity | NodeStatusChanged):
                # A burst of events or statuses (a replay, a connect storm) is applied in one
                # SQLite transaction, not one each: the node's single writer stays free for
                # local writes and acks.
                run, carry = _take_run(session.inbound, msg)
                await self._guarded(msg, self._apply_run(session, run))
            else:
                await self._guarded(msg, self._apply(session, msg))

    async def _guarded(self, msg: HiveMessage | _Pull, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except SyncError as exc:
            log.warning("link.sync_failed", error=str(exc))
        except Exception:
            kind = "pull" if isinstance(msg, _Pull) else tag_of(msg)
            log.exception("link.apply_failed", type=kind)

    async def _apply_run(
        self, session: _Session, run: list[Activity] | list[NodeStatusChanged]
    ) -> None:
        """Apply messages of one kind in one transaction; if that fails, one by one (so one bad
        message costs only itself)."""
        if len(run) == 1:
            await self._apply(session, run[0])
            return
        try:
            async with self.store.transaction() as conn:
                outcomes = [await self._apply_one(conn, session, msg) for msg in run]
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("link.batch_apply_failed", messages=len(run), type=tag_of(run[0]))
            for one in run:
                await self._guarded(one, self._apply(session, one))
            return
        for applied, outcome in zip(run, outcomes, strict=True):
            if isinstance(applied, Activity) and outcome is not None:
                self._activity_applied(applied, outcome)

    async def _apply_one(
        self, conn: aiosqlite.Connection, session: _Session, msg: Activity | NodeStatusChanged
    ) -> activity.Outcome | None:
        if isinstance(msg, Activity):
            return await activity.apply_activity(conn, msg, session.node_id)
        await nodes_repo.upsert_status(
            conn,
            node_id=msg.node_id,
            organization_id=session.organization_id,
            status=msg.status.value,
            name=msg.name,
            public_url=msg.public_url,
            last_heartbeat_at=msg.last_heartbeat_at,
        )
        return None

    def _activity_applied(self, msg: Activity, outcome: activity.Outcome) -> None:
        if outcome == "dirty":
            held = activity.parse_task(msg.payload)
            if held is not None:
                self._held_back.add(held.id)
        if outcome == "seen":
            self.stats.activity_seen += 1
        else:
            self.stats.activity_applied += 1
        log.debug("activity.applied", project_id=str(msg.project_id), seq=msg.seq, outcome=outcome)

    async def _apply(self, session: _Session, msg: HiveMessage | _Pull) -> None:
        node_id = session.node_id
        if isinstance(msg, _Pull):
            await self._pull(msg.task_ids, node_id)
        elif isinstance(msg, Activity | NodeStatusChanged):
            async with self.store.transaction() as conn:
                outcome = await self._apply_one(conn, session, msg)
            if isinstance(msg, Activity) and outcome is not None:
                self._activity_applied(msg, outcome)
        elif isinstance(msg, ResyncRequired):
            snapshot = await self.sync.snapshot(msg.project_id)
            latest = snapshot.latest_seq or (msg.latest_seq or 0)
            async with self.store.transaction() as conn:
                counts = await activity.apply_snapshot(
                    conn, msg.project_id, snapshot.tasks, latest, node_id
                )
            self.stats.resyncs += 1
            log.info("link.resynced", project_id=str(msg.project_id), latest_seq=latest, **counts)
        elif isinstance(msg, DigestResult):
            await self._on_digest_result(msg, node_id)
        elif isinstance(msg, LabelSync):
            async with self.store.transaction() as conn:
                await activity.apply_label(conn, activity.label_from_sync(msg))
        elif isinstance(msg, ProjectSync):
            link = msg.link
            async with self.store.transaction() as conn:
                known = await nodes_repo.find_by_id(conn, link.source_node_id)
                await nodes_repo.upsert_status(
                    conn,
                    node_id=link.source_node_id,
                    organization_id=session.organization_id,
                    status=known.status if known is not None else "pending",
                    name=link.source_node_name,
                    public_url=link.source_node_public_url,
                )
        elif isinstance(msg, NodeRemoved):
            async with self.store.transaction() as conn:
                await nodes_repo.remove(conn, msg.node_id)

    async def _on_digest_result(self, msg: DigestResult, node_id: UUID) -> None:
        self.stats.last_digest_result = msg
        log.info(
            "digest.result",
            resend_from_seq=msg.resend_from_seq,
            pull=len(msg.pull_entities),
            mismatched=len(msg.mismatched_buckets),
        )
        if msg.resend_from_seq is not None:
            self.sender.resend_from(msg.resend_from_seq)
        await self._pull(msg.pull_entities, node_id)

    async def _pull(self, task_ids: list[UUID], node_id: UUID) -> None:
        """Fetch hive tasks over REST and apply them; the ones the hive no longer has (deleted,
        or not visible to this node) are unlinked locally."""
        if not task_ids:
            return
        tasks = await self.sync.tasks(task_ids)
        returned = {t.id for t in tasks}
        async with self.store.transaction() as conn:
            for task in tasks:
                project = None
                if task.swarm_project_id is not None:
                    project = await projects_repo.find_by_remote_project_id(
                        conn, task.swarm_project_id
                    )
                if project is not None:
                    outcome = await activity.apply_remote_task(conn, project.id, task, node_id)
                    if outcome == "dirty":
                        self._held_back.add(task.id)
            for missing in set(task_ids) - returned:
                await tasks_repo.unlink_by_shared_task_id(conn, missing)
        self.stats.pulled += len(tasks)


RUN_LIMIT = 200
"""Most messages of one kind applied in one transaction."""


def _take_run(
    queue: asyncio.Queue[HiveMessage | _Pull], first: Activity | NodeStatusChanged
) -> tuple[Any, HiveMessage | _Pull | None]:
    """``first`` and the messages of its kind queued right behind it (up to :data:`RUN_LIMIT`),
    plus the first message of another kind taken off the queue (to be applied next)."""
    run: list[Any] = [first]
    while len(run) < RUN_LIMIT and not queue.empty():
        nxt = queue.get_nowait()
        if type(nxt) is not type(first):
            return run, nxt
        run.append(nxt)
    return run, None


async def _refused_task(conn: aiosqlite.Connection, seq: int, idempotency_key: str) -> UUID | None:
    """Mark the local task a refused ``task.upsert`` op (by seq and key) changed, so the next copy
    from the hive replaces the refused change; returns its shared id when the node knows it (the
    caller queues a pull). A task whose shared id has not arrived yet is marked all the same:
    the hive's copy that names it (an activity event, or the digest's mismatch) then replaces it."""
    ops = await outbox.peek_from_seq(conn, seq, 1)
    if not ops or ops[0].seq != seq or ops[0].idempotency_key != idempotency_key:
        return None
    if not isinstance(ops[0].payload, TaskUpsert):
        return None
    task = await tasks_repo.find_by_id(conn, ops[0].payload.id)
    if task is None:
        return None
    await tasks_repo.mark_refused_by_hive(conn, task.id)
    return task.shared_task_id


def _link_message(project: Project) -> LinkProject:
    assert project.remote_project_id is not None
    return LinkProject(
        project_id=project.remote_project_id,
        local_project_id=project.id,
        git_repo_path=project.git_repo_path,
    )


def _close_text(exc: ConnectionClosed | None, ws: ClientConnection | None = None) -> str:
    """The close code and reason the hive sent (``ConnectionClosed.code`` is deprecated)."""
    code: int | None
    if exc is not None:
        frame = exc.rcvd
        code, reason = (int(frame.code), frame.reason) if frame is not None else (1006, "")
    else:
        code = ws.close_code if ws is not None else None
        reason = (ws.close_reason if ws is not None else None) or ""
    return f"code {code}" + (f": {reason}" if reason else "")
