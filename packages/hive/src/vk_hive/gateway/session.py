"""One node's control-channel connection: negotiation, authentication, the reader, the bounded
outgoing queue and its sender, the heartbeat watchdog, and the cleanup on disconnect.

A session is the :class:`~vk_hive.gateway.ports.Peer` of its node: the rest of the hive reaches
the node only through that port. It adopts its node's identity in one place
(:meth:`NodeSession._authenticate`, from :func:`~vk_hive.gateway.auth.authenticate`), then hands
each message to its :class:`~vk_hive.gateway.handlers.Handlers`.

Every task a session starts is owned by :meth:`NodeSession.run`, which cancels and awaits all of
them before it returns. Nothing the peer sends escapes the reader: decode errors are answered with
``error``; handler exceptions are logged and answered with ``error{internal}`` (a database that is
restarting or unreachable is a warning without a traceback: expected during a failover, and the
node sends its heartbeat and lease renewals again anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import structlog
from litestar import WebSocket
from litestar.types import WebSocketSendEvent

from vk_hive.gateway.activity import ActivityStreams
from vk_hive.gateway.auth import AuthFailure, authenticate
from vk_hive.gateway.frames import error, handler_failed, read_messages, receive_frame
from vk_hive.gateway.handlers import Handlers
from vk_hive.gateway.identity import NodeIdentity
from vk_hive.gateway.outgoing import CLOSE_NORMAL, Outbound, SendsThroughOutbound
from vk_hive.gateway.ports import GatewayDeps
from vk_hive.store.db import DATABASE_UNAVAILABLE
from vk_hive.store.models import ActivityEvent
from vk_shared.codec import Codec, ProtocolError
from vk_shared.protocol import SUBPROTOCOLS
from vk_shared.wire import Auth, ErrorCode, Heartbeat, WireStruct, tag_of

__all__ = ["NodeSession"]

log = structlog.get_logger("vk_hive.gateway")

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY = 1008


class NodeSession(SendsThroughOutbound):
    """State and tasks of one WebSocket connection from a node."""

    def __init__(self, deps: GatewayDeps, socket: WebSocket[Any, Any, Any]) -> None:
        self._deps = deps
        self.socket = socket
        self.codec: Codec | None = None
        self._identity: NodeIdentity | None = None
        self._handlers: Handlers | None = None
        self._activity = ActivityStreams(deps, self)
        self._out = Outbound(
            deps.settings.outgoing_queue_size,
            full_reason="outgoing queue full: the node reads too slowly",
        )
        self._last_heartbeat = time.monotonic()
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
            asyncio.create_task(self._out.closed.wait(), name="vk-hive-session-close"),
        ]
        try:
            if await self._authenticate():
                tasks += [
                    asyncio.create_task(self._watchdog(), name="vk-hive-session-watchdog"),
                    asyncio.create_task(self._activity.pump(), name="vk-hive-session-activity"),
                ]
                # The node's messages are read once the auth-time work is done: a link_project or
                # unlink_project sent right after auth must find the streams of its linked
                # projects already subscribed (not subscribe them twice, replaying them twice,
                # nor be undone by a late subscription).
                await self._after_auth()
                tasks.append(asyncio.create_task(self._reader(), name="vk-hive-session-reader"))
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
        code = self._out.close_code if self._out.closing else CLOSE_NORMAL
        with contextlib.suppress(Exception):
            await self.socket.close(code, self._out.close_reason[:120])

    async def _authenticate(self) -> bool:
        assert self.codec is not None
        settings = self._deps.settings
        try:
            frame = await asyncio.wait_for(receive_frame(self.socket), settings.auth_timeout_s)
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
        async for msg in self._out.messages():
            await self._write(msg)

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
        async for msg in read_messages(self.socket, self.codec.decode_node, self, limit):
            if isinstance(msg, Heartbeat):
                self._last_heartbeat = time.monotonic()
            try:
                await handlers.handle(msg)
            except asyncio.CancelledError:
                raise
            except DATABASE_UNAVAILABLE as exc:
                log.warning(
                    "session.handler_unavailable",
                    message_type=tag_of(msg),
                    error=type(exc).__name__,
                )
                await self.send(handler_failed(msg, exc))
            except Exception as exc:
                log.exception("session.handler_failed", message_type=tag_of(msg))
                await self.send(handler_failed(msg, exc))
            if self._out.closing:
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
        except DATABASE_UNAVAILABLE as exc:
            # The node stays marked online until the stale-node sweep sees its old heartbeat.
            log.warning("session.cleanup_unavailable", error=type(exc).__name__)
        except Exception:
            log.exception("session.cleanup_failed")
