"""The link between the hive processes that share one database (docs/operations.md, "Several
hive processes").

A node's session lives in one process; REST requests, the lease sweeper and other nodes'
sessions that decide something for that node may run in another. :class:`ClusterLink` carries
those decisions through PostgreSQL: ``NOTIFY vk_gateway`` with a small JSON message, heard by
every process on the activity fan-out's LISTEN connection. A process acts on a message only for
the sessions it serves, and ignores its own messages (it acted locally before sending).

Messages:

- ``assign``: the process serving the node reads the assignment and pushes ``task_assign``;
- ``deliver``: a hive → node message (``task_cancel``, ``lease_revoked``, ``project_sync``,
  ``label_sync``, ``node_removed``) for named nodes or for an organization's nodes;
- ``status``: nodes whose status changed; each process announces them to its own sessions
  (:class:`~vk_hive.gateway.statuses.StatusAnnouncer`: read from the table in batches);
- ``session``: a node authenticated with a new session; an older session of it ends wherever it
  is (a node never has two live sessions for long);
- ``disconnect``: the node's access was taken away; its session is closed.

Notifications are not durable: a process whose listener is reconnecting misses what is sent
meanwhile. Each message therefore has a second path that does not depend on it: an assignment
whose ``task_assign`` did not arrive is pushed again when the node connects and when a listener
reconnects (and a lease not picked up expires and is reclaimed); after a listener reconnects its
process checks its sessions against ``nodes.session_id`` and ends those that are no longer
current; statuses are re-read from the table by the boards, and a node learns the others'
statuses again on its next ``project_sync``.

Sending never waits for the database: messages are queued and a sender task sends everything
queued in one statement.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterable

import msgspec
import structlog

from vk_hive.gateway.assigns import deliver_here
from vk_hive.gateway.ports import Directory, Watchers
from vk_hive.gateway.statuses import StatusAnnouncer
from vk_hive.store.db import Database
from vk_hive.store.repositories import assignments, nodes
from vk_shared.codec import ProtocolError, decode_hive_message
from vk_shared.wire import LeaseRevoked, TaskAssign, TaskCancel, WireStruct

__all__ = ["CHANNEL", "ClusterLink"]

log = structlog.get_logger("vk_hive.gateway.cluster")

CHANNEL = "vk_gateway"
MAX_PAYLOAD = 7900
"""PostgreSQL refuses a notification payload of 8000 bytes or more."""
STATUS_IDS_PER_MESSAGE = 150
"""Node ids per ``status`` message (its payload stays under :data:`MAX_PAYLOAD`)."""
CLOSE_MOVED = 1000


class _Message(msgspec.Struct, tag_field="k", kw_only=True, frozen=True):
    origin: uuid.UUID
    """The hive process that sent it."""


class _Assign(_Message, frozen=True, tag="assign"):
    node: uuid.UUID
    assignment: uuid.UUID


class _Deliver(_Message, frozen=True, tag="deliver"):
    frame: str
    nodes: list[uuid.UUID] = []
    org: uuid.UUID | None = None
    exclude: uuid.UUID | None = None


class _Status(_Message, frozen=True, tag="status"):
    nodes: list[uuid.UUID]


class _Session(_Message, frozen=True, tag="session"):
    node: uuid.UUID
    session: uuid.UUID


class _Disconnect(_Message, frozen=True, tag="disconnect"):
    node: uuid.UUID
    reason: str


_AnyMessage = _Assign | _Deliver | _Status | _Session | _Disconnect
_decode = msgspec.json.Decoder(_AnyMessage).decode
_encode = msgspec.json.Encoder().encode

_URGENT = (TaskAssign, TaskCancel, LeaseRevoked)


class ClusterLink:
    """This process's end of the link (the :class:`~vk_hive.gateway.ports.Cluster` port)."""

    def __init__(self, db: Database, directory: Directory, watchers: Watchers) -> None:
        self.process_id = uuid.uuid4()
        self._db = db
        self._directory = directory
        self._watchers = watchers
        self._outgoing: list[str] = []
        self._wake = asyncio.Event()
        self.statuses = StatusAnnouncer(db, directory, watchers, self._publish_statuses)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sender: asyncio.Task[None] | None = None
        self.sent = 0
        self.received = 0

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name="vk-hive-cluster-send")
        self.statuses.start()

    async def stop(self) -> None:
        await self.statuses.stop()
        tasks = [t for t in (self._sender, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._sender = None
        self._tasks.clear()

    # --- the Cluster port ----------------------------------------------------------------------

    def assign(self, node_id: uuid.UUID, assignment_id: uuid.UUID) -> None:
        self._queue(_Assign(origin=self.process_id, node=node_id, assignment=assignment_id))

    def deliver(
        self,
        msg: WireStruct,
        *,
        node_ids: Iterable[uuid.UUID] = (),
        organization_id: uuid.UUID | None = None,
        exclude: uuid.UUID | None = None,
    ) -> None:
        targets = list(node_ids)
        if not targets and organization_id is None:
            return
        frame = msgspec.json.encode(msg).decode()
        self._queue(
            _Deliver(
                origin=self.process_id,
                frame=frame,
                nodes=targets,
                org=organization_id,
                exclude=exclude,
            )
        )

    def status_changed(self, node_id: uuid.UUID, *, after_s: float = 0.0) -> None:
        self.statuses.note(node_id, after_s=after_s)

    def _publish_statuses(self, node_ids: list[uuid.UUID]) -> None:
        for i in range(0, len(node_ids), STATUS_IDS_PER_MESSAGE):
            chunk = node_ids[i : i + STATUS_IDS_PER_MESSAGE]
            self._queue(_Status(origin=self.process_id, nodes=chunk))

    def session_started(self, node_id: uuid.UUID, session_id: uuid.UUID) -> None:
        self._queue(_Session(origin=self.process_id, node=node_id, session=session_id))

    def disconnect(self, node_id: uuid.UUID, reason: str) -> None:
        self._queue(_Disconnect(origin=self.process_id, node=node_id, reason=reason[:200]))

    # --- sending -------------------------------------------------------------------------------

    def _queue(self, msg: _AnyMessage) -> None:
        payload = _encode(msg).decode()
        if len(payload.encode()) > MAX_PAYLOAD:
            log.warning("cluster.message_too_large", kind=type(msg).__name__, size=len(payload))
            return
        self._outgoing.append(payload)
        self._wake.set()

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._outgoing = self._outgoing, []
            if not batch:
                continue
            try:
                async with self._db.acquire() as conn:
                    await conn.execute(
                        "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", CHANNEL, batch
                    )
                self.sent += len(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Best effort by design (module docstring): what is lost has a second path.
                log.warning("cluster.send_failed", error=type(exc).__name__, messages=len(batch))

    # --- receiving -----------------------------------------------------------------------------

    def on_notify(self, payload: str) -> None:
        """A notification on :data:`CHANNEL` (from the fan-out's listener)."""
        try:
            msg = _decode(payload)
        except msgspec.DecodeError:
            log.warning("cluster.bad_message")
            return
        if msg.origin == self.process_id:
            return
        self.received += 1
        match msg:
            case _Assign():
                if self._directory.get(msg.node) is not None:
                    self._spawn(self._push_assignment(msg.assignment))
            case _Deliver():
                self._deliver_here(msg)
            case _Status():
                for node_id in msg.nodes:
                    self.statuses.note(node_id, publish=False)
            case _Session():
                peer = self._directory.get(msg.node)
                if peer is not None and peer.node.session_id != msg.session:
                    log.info("cluster.session_moved", node_id=str(msg.node))
                    peer.abort(CLOSE_MOVED, "the node connected to another hive process")
            case _Disconnect():
                peer = self._directory.get(msg.node)
                if peer is not None:
                    log.info("gateway.disconnect", node_id=str(msg.node), reason=msg.reason)
                    peer.close(1008, msg.reason)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push_assignment(self, assignment_id: uuid.UUID) -> None:
        try:
            _, pushed = await deliver_here(self._db, self._directory, assignment_id)
        except Exception as exc:
            log.warning("cluster.assign_failed", error=type(exc).__name__)
            return
        if pushed:
            log.info("dispatch.task_assign_sent", assignment_id=str(assignment_id), routed=True)

    def _deliver_here(self, msg: _Deliver) -> None:
        try:
            wire = decode_hive_message(msg.frame, binary=False)
        except ProtocolError:
            log.warning("cluster.bad_frame")
            return
        if msg.org is not None:
            peers = self._directory.for_org(msg.org, exclude=[msg.exclude] if msg.exclude else [])
        else:
            peers = [p for p in map(self._directory.get, msg.nodes) if p is not None]
        for peer in peers:
            if isinstance(wire, _URGENT):
                peer.push_urgent(wire)
            else:
                peer.push(wire)

    # --- after the listener (re)connected -----------------------------------------------------

    async def resync(self) -> None:
        """What this process may have missed while it did not listen: end its sessions that are
        no longer their node's current one, and push again the assignments its nodes have not
        acknowledged."""
        peers = {p.node.node_id: p for p in self._directory.peers()}
        if not peers:
            return
        async with self._db.acquire() as conn:
            current = await nodes.current_sessions(conn, list(peers))
            pending = await assignments.find_undelivered(conn, list(peers))
        for node_id, peer in peers.items():
            if current.get(node_id) != peer.node.session_id:
                log.info("cluster.session_stale", node_id=str(node_id))
                peer.abort(CLOSE_MOVED, "the node connected to another hive process")
        for assignment_id in pending:
            await self._push_assignment(assignment_id)
