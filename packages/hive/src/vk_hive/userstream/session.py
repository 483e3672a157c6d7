"""One user activity stream session (``/v1/ws``): ``hello``, the bounded outgoing queue and its
sender, the reader of client frames, and the activity and log pumps.

A session is a :class:`~vk_hive.gateway.ports.Watcher` of its organization in the gateway's
:class:`~vk_hive.gateway.watchers.WatcherRegistry`. Invariants:

- ``hello`` is the first frame: the session registers (and may receive pushes) only after it
  is queued.
- Per project, activity is sent in seq order without gaps or duplicates: the node sessions'
  :class:`~vk_hive.gateway.activity.ActivityStreams` does it (a live event goes straight to the
  queue only when it is the next seq and there is room; anything else is re-read from the
  ``activity`` table by the session's pump). Every project of the organization is streamed from
  its ``latest_seq`` at ``hello``; a project created later from 0 (its first event).
- Nothing the hive does waits for the client: pushes from the fan-out and the node status
  broadcasts never block (activity and log notifications only mark what to re-read; node
  statuses are coalesced per node outside the queue). The pumps and the replies wait for room
  in the queue — this session's tasks only. A frame the client does not take within
  ``user_ws_send_timeout_s`` ends the session (1013); a client that reads but falls behind
  retention gets ``resync_required`` for the project.
- Nothing the client sends escapes the reader: bad frames get ``error`` (the session goes on);
  ``malformed_frame_limit`` malformed frames in a row close it with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import structlog
from litestar import WebSocket
from litestar.types import WebSocketSendEvent

from vk_hive.gateway.activity import ActivityStreams
from vk_hive.gateway.frames import error, handler_failed, read_messages
from vk_hive.gateway.outgoing import (
    CLOSE_NORMAL,
    CLOSE_TRY_AGAIN,
    Outbound,
    SendsThroughOutbound,
)
from vk_hive.gateway.ports import GatewayDeps
from vk_hive.gateway.watchers import WatcherRegistry
from vk_hive.store.models import ActivityEvent
from vk_hive.store.repositories import activity, executions, swarm_projects
from vk_hive.userstream.follows import LogFollows
from vk_shared.codec import decode_user_client_message, encode_json
from vk_shared.wire import (
    ErrorCode,
    FollowLogs,
    Hello,
    Ping,
    Pong,
    ProjectCursor,
    Subscribe,
    UnfollowLogs,
    UserClientMessage,
    WireStruct,
    tag_of,
)

__all__ = ["UserSession"]

log = structlog.get_logger("vk_hive.userstream")

CLOSE_POLICY = 1008


class UserSession(SendsThroughOutbound):
    """State and tasks of one user stream connection (already authenticated)."""

    def __init__(
        self,
        deps: GatewayDeps,
        registry: WatcherRegistry,
        socket: WebSocket[Any, Any, Any],
        *,
        organization_id: uuid.UUID,
        user_id: uuid.UUID,
    ) -> None:
        self._deps = deps
        self._registry = registry
        self.socket = socket
        self._organization_id = organization_id
        self.user_id = user_id
        self._out = Outbound(
            deps.settings.user_ws_queue_size,
            full_reason="outgoing queue full: the client reads too slowly",
        )
        self._stalled = False
        self._activity = ActivityStreams(deps, self)
        self._follows = LogFollows(deps.db, self.send)
        self.ended = asyncio.Event()

    def __repr__(self) -> str:
        return f"UserSession(user={self.user_id}, organization={self._organization_id})"

    # --- the Watcher -----------------------------------------------------------------------------

    @property
    def organization_id(self) -> uuid.UUID:
        return self._organization_id

    def offer_activity(self, event: ActivityEvent) -> None:
        self._activity.offer(event)

    def watch_project(self, project_id: uuid.UUID) -> None:
        if project_id not in self._activity.projects():
            self._subscribe(project_id, 0)

    def catch_up_activity(self) -> None:
        self._activity.catch_up_all()
        self._follows.catch_up_all()

    def logs_appended(self, execution_process_id: uuid.UUID) -> None:
        self._follows.appended(execution_process_id)

    # --- the connection --------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the accepted connection until it ends; never raises for what the client does."""
        with structlog.contextvars.bound_contextvars(
            connection_id=uuid.uuid4().hex[:16], user_id=str(self.user_id)
        ):
            try:
                await self._run()
            except Exception:
                log.exception("user_ws.crashed")
            finally:
                self.ended.set()

    async def _run(self) -> None:
        async with self._deps.db.acquire() as conn:
            projects = await activity.last_seqs_of_organization(conn, self._organization_id)
        await self.socket.accept()
        hello = Hello(
            organization_id=self._organization_id,
            user_id=self.user_id,
            projects=[ProjectCursor(project_id=p, latest_seq=seq) for p, seq in projects],
        )
        await self.send(hello)
        self._registry.add(self, [])
        for project_id, seq in projects:
            self._subscribe(project_id, seq)
        log.info("user_ws.connected", organization_id=str(self._organization_id))
        tasks: list[asyncio.Task[object]] = [
            asyncio.create_task(self._sender(), name="vk-hive-user-ws-sender"),
            asyncio.create_task(self._reader(), name="vk-hive-user-ws-reader"),
            asyncio.create_task(self._activity.pump(), name="vk-hive-user-ws-activity"),
            asyncio.create_task(self._follows.pump(), name="vk-hive-user-ws-logs"),
            asyncio.create_task(self._out.closed.wait(), name="vk-hive-user-ws-close"),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._registry.remove(self)
            self._activity.close()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._close_socket()
            log.info(
                "user_ws.disconnected", code=self._out.close_code, reason=self._out.close_reason
            )

    def _subscribe(self, project_id: uuid.UUID, after: int) -> None:
        self._activity.subscribe(project_id, after)
        self._registry.subscribe(self, project_id)

    async def _close_socket(self) -> None:
        if self.socket.connection_state == "disconnect" or self._stalled:
            return  # a stalled client would hold the close frame too: the server drops it
        code = self._out.close_code if self._out.closing else CLOSE_NORMAL
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.socket.close(code, self._out.close_reason[:120]), 2)

    async def _sender(self) -> None:
        async for msg in self._out.messages():
            if not await self._write(msg):
                return

    async def _write(self, msg: WireStruct) -> bool:
        event: WebSocketSendEvent = {
            "type": "websocket.send",
            "bytes": None,
            "text": encode_json(msg).decode("utf-8"),
        }
        try:
            await asyncio.wait_for(
                self.socket.send(event), self._deps.settings.user_ws_send_timeout_s
            )
        except TimeoutError:
            log.info("user_ws.stalled", message_type=tag_of(msg))
            self._stalled = True
            self.abort(CLOSE_TRY_AGAIN, "the client does not read its frames")
            return False
        return True

    async def _reader(self) -> None:
        limit = self._deps.settings.malformed_frame_limit
        async for msg in read_messages(self.socket, decode_user_client_message, self, limit):
            try:
                await self._handle(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("user_ws.handler_failed", message_type=tag_of(msg))
                await self.send(handler_failed(msg, exc))

    async def _handle(self, msg: UserClientMessage) -> None:
        match msg:
            case Ping():
                await self.send(Pong())
            case Subscribe():
                async with self._deps.db.acquire() as conn:
                    org = await swarm_projects.organization_id(conn, msg.project_id)
                if org != self._organization_id:
                    await self._not_found("swarm project", msg.project_id)
                    return
                self._subscribe(msg.project_id, msg.after)
            case FollowLogs():
                await self._follow(msg)
            case UnfollowLogs():
                self._follows.unfollow(msg.execution_process_id)
                self._registry.unfollow(self, msg.execution_process_id)

    async def _follow(self, msg: FollowLogs) -> None:
        process_id = msg.execution_process_id
        if (
            process_id not in self._follows
            and len(self._follows) >= self._deps.settings.user_ws_max_follows
        ):
            await self.send(
                error(
                    ErrorCode.RATE_LIMITED,
                    f"a session follows at most {self._deps.settings.user_ws_max_follows} "
                    "execution processes; unfollow one first",
                    str(process_id),
                )
            )
            return
        async with self._deps.db.acquire() as conn:
            org = await executions.organization_of_process(conn, process_id)
        if org != self._organization_id:
            await self._not_found("execution process", process_id)
            return
        self._registry.follow(self, process_id)
        self._follows.follow(process_id, msg.after_id)

    async def _not_found(self, what: str, entity_id: uuid.UUID) -> None:
        """The same answer for an id of another organization and an unknown one."""
        await self.send(
            error(ErrorCode.NOT_FOUND, f"no such {what} in this organization", str(entity_id))
        )
