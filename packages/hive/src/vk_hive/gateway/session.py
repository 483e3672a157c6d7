"""One node's control-channel connection: negotiation, authentication, the reader, the bounded
outgoing queue and its sender, the heartbeat watchdog, and the cleanup on disconnect.

A session is the :class:`~vk_hive.gateway.ports.Peer` of its node: the rest of the hive reaches
the node only through that port. It adopts its node's identity in one place
(:meth:`NodeSession._authenticate`, from :func:`~vk_hive.gateway.auth.authenticate`), then hands
each message to its :class:`~vk_hive.gateway.handlers.Handlers`.

Every task a session starts is owned by :meth:`NodeSession.run`, which cancels and awaits all of
them before it returns. Nothing the peer sends escapes the reader: decode errors are answered with
``error``; handler exceptions are logged and answered with ``error{internal}``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import WebSocket
from litestar.types import WebSocketSendEvent

from vk_hive.gateway.activity import ActivityStreams
from vk_hive.gateway.auth import AuthFailure, authenticate
from vk_hive.gateway.frames import error
from vk_hive.gateway.handlers import Handlers
from vk_hive.gateway.identity import NodeIdentity
from vk_hive.gateway.ports import GatewayDeps
from vk_hive.store.models import ActivityEvent
from vk_shared.codec import Codec, ProtocolError
from vk_shared.protocol import SUBPROTOCOLS
from vk_shared.wire import Auth, ErrorCode, Heartbeat, NodeStatusChanged, WireStruct, tag_of

__all__ = ["NodeSession"]

log = structlog.get_logger("vk_hive.gateway")

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013


@dataclass(frozen=True)
class _Close:
    """Queue sentinel: close after everything queued before it was sent."""

    code: int
    reason: str


class _Mark:
    """Queue sentinel that wakes the sender for what waits outside the queue: urgent messages
    (:meth:`NodeSession.push_urgent`) and collected ``node_status`` pushes
    (:meth:`NodeSession.push_status`)."""


_MARK = _Mark()


class NodeSession:
    """State and tasks of one WebSocket connection from a node."""

    def __init__(self, deps: GatewayDeps, socket: WebSocket[Any, Any, Any]) -> None:
        self._deps = deps
        self.socket = socket
        self.codec: Codec | None = None
        self._identity: NodeIdentity | None = None
        self._handlers: Handlers | None = None
        self._activity = ActivityStreams(deps, self)
        self._queue: asyncio.Queue[WireStruct | _Close | _Mark] = asyncio.Queue(
            maxsize=deps.settings.outgoing_queue_size
        )
        self._urgent: collections.deque[WireStruct] = collections.deque()
        self._statuses: dict[uuid.UUID, NodeStatusChanged] = {}
        self._marked = False
        self._closing = asyncio.Event()
        self._close_code = CLOSE_NORMAL
        self._close_reason = ""
        self._last_heartbeat = time.monotonic()
        self._malformed = 0
        self.ended = asyncio.Event()

    def __repr__(self) -> str:
        if self._identity is None:
            return "NodeSession(unauthenticated)"
        return f"NodeSession(node={self._identity.node_id}, name={self._identity.name!r})"

    # --- who -----------------------------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        return self._identity is not None

    @property
    def node(self) -> NodeIdentity:
        """The node's identity (only an authenticated session has one)."""
        if self._identity is None:
            raise RuntimeError("the session has not authenticated")
        return self._identity

    @property
    def subscribed_projects(self) -> frozenset[uuid.UUID]:
        """The projects whose activity this session streams."""
        return self._activity.projects()

    def offer_activity(self, event: ActivityEvent) -> None:
        self._activity.offer(event)

    def catch_up_activity(self) -> None:
        self._activity.catch_up_all()

    # --- outgoing ------------------------------------------------------------------------------

    async def send(self, msg: WireStruct) -> None:
        """Queue a reply, waiting for room (back-pressure on this session's own work)."""
        if not self._closing.is_set():
            await self._queue.put(msg)

    def push(self, msg: WireStruct) -> bool:
        """Queue a message from elsewhere without waiting; a full queue closes the session (a
        slow consumer must not grow memory without bound). Returns whether it was queued."""
        if self._closing.is_set():
            return False
        try:
            self._queue.put_nowait(msg)
        except asyncio.QueueFull:
            self.abort(CLOSE_TRY_AGAIN, "outgoing queue full: the node reads too slowly")
            return False
        return True

    def push_urgent(self, msg: WireStruct) -> None:
        """Send ``msg`` before everything already queued (``task_assign``, ``task_cancel``,
        ``lease_revoked``: a lease decision must not wait behind a burst of activity frames).
        Urgent messages keep their order among themselves; they are few (one per dispatch or
        lease change), so they are not bounded."""
        if self._closing.is_set():
            return
        self._urgent.append(msg)
        self._mark()

    def push_status(self, msg: NodeStatusChanged) -> None:
        """Queue another node's ``node_status``, coalesced: only the latest status of each node
        waits to be sent, outside the bounded queue, so a connect storm of N nodes costs each
        session at most one entry per node (not N queued frames, which would fill the queue and
        close the session) and a status that flaps while the session is busy is sent once."""
        if self._closing.is_set():
            return
        self._statuses[msg.node_id] = msg
        self._mark()

    def _mark(self) -> None:
        """Put the marker in the queue unless it is there (it only wakes an idle sender: a busy
        one sends urgent messages before its next frame). With the queue full, the sender puts
        it after its next frame."""
        if not self._marked:
            self._marked = self.try_push(_MARK)

    def try_push(self, msg: WireStruct | _Mark) -> bool:
        """Queue only if there is room right now (for messages that can be re-read later)."""
        if self._closing.is_set():
            return False
        try:
            self._queue.put_nowait(msg)
        except asyncio.QueueFull:
            return False
        return True

    def close(self, code: int, reason: str) -> None:
        """Close after the queued messages were sent."""
        if self._closing.is_set():
            return
        try:
            self._queue.put_nowait(_Close(code, reason))
        except asyncio.QueueFull:
            self.abort(code, reason)

    def abort(self, code: int, reason: str) -> None:
        """Close now; whatever is still queued is dropped."""
        if not self._closing.is_set():
            self._close_code, self._close_reason = code, reason
            self._closing.set()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    # --- the connection ------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it ends; never raises for anything the peer does. Every log
        line of the session (its tasks included) carries ``connection_id``, and ``node_id`` once
        authenticated."""
        with structlog.contextvars.bound_contextvars(connection_id=uuid.uuid4().hex[:16]):
            try:
                await self._run()
            except Exception:
                log.exception("session.crashed")
            finally:
                structlog.contextvars.unbind_contextvars("node_id")
                self.ended.set()

    async def _run(self) -> None:
        offered = list(self.socket.scope.get("subprotocols") or [])
        chosen = next((p for p in SUBPROTOCOLS if p in offered), None)
        if chosen is None:
            await self.socket.accept()
            reason = f"no supported subprotocol offered; use one of {', '.join(SUBPROTOCOLS)}"
            log.info("session.refused", reason="subprotocol", offered=offered[:8])
            with contextlib.suppress(Exception):
                await self.socket.close(CLOSE_PROTOCOL_ERROR, reason)
            return
        await self.socket.accept(subprotocols=chosen)
        self.codec = Codec.for_subprotocol(chosen)
        tasks: list[asyncio.Task[object]] = [
            asyncio.create_task(self._sender(), name="vk-hive-session-sender"),
            asyncio.create_task(self._closing.wait(), name="vk-hive-session-close"),
        ]
        try:
            if await self._authenticate():
                tasks += [
                    asyncio.create_task(self._reader(), name="vk-hive-session-reader"),
                    asyncio.create_task(self._watchdog(), name="vk-hive-session-watchdog"),
                    asyncio.create_task(self._activity.pump(), name="vk-hive-session-activity"),
                ]
                await self._after_auth()
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._close_socket()
            if self._handlers is not None:
                await self._disconnected(self._handlers)

    async def _close_socket(self) -> None:
        if self.socket.connection_state == "disconnect":
            return
        code = self._close_code if self._closing.is_set() else CLOSE_NORMAL
        with contextlib.suppress(Exception):
            await self.socket.close(code, self._close_reason[:120])

    async def _receive_frame(self) -> str | bytes | None:
        """The next frame's payload, or None when the peer closed."""
        message = await self.socket.receive()
        if message["type"] != "websocket.receive":
            return None
        data: bytes | None = message.get("bytes")
        if data is not None:
            return data
        text: str | None = message.get("text")
        return text if text is not None else b""

    async def _authenticate(self) -> bool:
        assert self.codec is not None
        settings = self._deps.settings
        try:
            frame = await asyncio.wait_for(self._receive_frame(), settings.auth_timeout_s)
        except TimeoutError:
            await self._refuse(ErrorCode.AUTH_TIMEOUT, "no auth frame within the timeout", "auth")
            return False
        if frame is None:
            self.abort(CLOSE_NORMAL, "closed before auth")
            return False
        try:
            msg = self.codec.decode_node(frame)
        except ProtocolError as exc:
            await self._refuse(exc.code, f"the first frame must be auth: {exc}", exc.path)
            return False
        if not isinstance(msg, Auth):
            await self._refuse(
                ErrorCode.UNEXPECTED_MESSAGE,
                f"the first frame must be auth, not {tag_of(msg)}",
                tag_of(msg),
            )
            return False
        try:
            accepted = await authenticate(self._deps, msg)
        except AuthFailure as exc:
            log.info("session.auth_failed", error_code=exc.code, reason=exc.message)
            await self._refuse(exc.code, exc.message, "auth")
            return False
        node = accepted.identity
        self._identity = node
        if node.takes_ack_tasks:
            self._activity.skip_echoes_of(node.node_id)
        self._handlers = Handlers(node, self._deps, self, self._activity)
        replaced = self._deps.directory.register(self)
        if replaced is not None:
            replaced.abort(CLOSE_NORMAL, "replaced by a newer connection of the same node")
        structlog.contextvars.bind_contextvars(node_id=str(node.node_id))
        log.info("session.authenticated", node_id=str(node.node_id), name=node.name)
        await self.send(accepted.result)
        return True

    async def _refuse(self, code: str, message: str, ref: str | None) -> None:
        await self.send(error(code, message, ref))
        self.close(CLOSE_POLICY, message[:120])

    async def _after_auth(self) -> None:
        """Pushes and subscriptions that follow a successful ``auth_result``."""
        assert self._handlers is not None
        await self._handlers.after_auth()

    async def _sender(self) -> None:
        assert self.codec is not None
        while True:
            item = await self._queue.get()
            while self._urgent:
                await self._write(self._urgent.popleft())
            if isinstance(item, _Close):
                self.abort(item.code, item.reason)
                return
            if isinstance(item, _Mark):
                self._marked = False
                statuses, self._statuses = self._statuses, {}
                for status in statuses.values():
                    await self._write(status)
                continue
            await self._write(item)
            if self._statuses or self._urgent:
                self._mark()

    async def _write(self, msg: WireStruct) -> None:
        assert self.codec is not None
        frame = self.codec.encode(msg)
        event: WebSocketSendEvent
        if isinstance(frame, bytes):
            event = {"type": "websocket.send", "bytes": frame, "text": None}
        else:
            event = {"type": "websocket.send", "bytes": None, "text": frame}
        await self.socket.send(event)

    async def _reader(self) -> None:
        assert self.codec is not None
        assert self._handlers is not None
        handlers = self._handlers
        limit = self._deps.settings.malformed_frame_limit
        while True:
            frame = await self._receive_frame()
            if frame is None:
                return
            try:
                msg = self.codec.decode_node(frame)
            except ProtocolError as exc:
                self._malformed += 1
                await self.send(error(exc.code, str(exc), exc.path))
                if self._malformed >= limit:
                    self.close(CLOSE_POLICY, f"{self._malformed} malformed frames in a row")
                    return
                continue
            self._malformed = 0
            if isinstance(msg, Heartbeat):
                self._last_heartbeat = time.monotonic()
            try:
                await handlers.handle(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("session.handler_failed", message_type=tag_of(msg))
                await self.send(
                    error(
                        ErrorCode.INTERNAL,
                        f"the hive failed to handle {tag_of(msg)}: {type(exc).__name__}",
                        tag_of(msg),
                    )
                )
            if self._closing.is_set():
                return

    async def _watchdog(self) -> None:
        timeout = self._deps.settings.heartbeat_timeout_s
        while True:
            remaining = self._last_heartbeat + timeout - time.monotonic()
            if remaining <= 0:
                log.info("session.heartbeat_timeout")
                self.abort(CLOSE_POLICY, "heartbeat timeout")
                return
            await asyncio.sleep(remaining)

    async def _disconnected(self, handlers: Handlers) -> None:
        try:
            await handlers.on_disconnect()
        except Exception:
            log.exception("session.cleanup_failed")
