"""The node gateway: the control channel ``GET /v1/nodes/ws`` and everything behind it.

:class:`Gateway` owns the registry of connected sessions, the activity fan-out (its LISTEN
connection and tasks) and the lease sweeper job (its own :class:`JobRunner`);
:meth:`Gateway.startup` is the lifespan hook that starts them and returns the shutdown that stops
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.handlers import WebsocketRouteHandler

from vk_hive.context import HiveContext
from vk_hive.gateway.activity import ActivityFanout
from vk_hive.gateway.admission import Admission, Refusal
from vk_hive.gateway.dispatch import Dispatcher
from vk_hive.gateway.registry import Registry
from vk_hive.gateway.session import NodeSession
from vk_hive.jobs.runner import JobRunner, PeriodicJob
from vk_hive.lifespan import ShutdownHook
from vk_hive.settings import HiveSettings
from vk_hive.store.db import Database
from vk_shared import problems

__all__ = ["Gateway", "node_socket"]

log = structlog.get_logger("vk_hive.gateway")


class Gateway:
    def __init__(self, ctx: HiveContext) -> None:
        self.ctx = ctx
        self.registry = Registry()
        self.admission = Admission.from_settings(ctx.settings)
        self.fanout = ActivityFanout(self)
        self.dispatcher = Dispatcher(self)
        self.sweeper = PeriodicJob(
            "lease_sweeper",
            ctx.settings.lease_sweep_interval_s,
            self.dispatcher.sweep,
            delay_first=True,
        )
        self.jobs = JobRunner()
        self.jobs.add(self.sweeper)

    @property
    def settings(self) -> HiveSettings:
        return self.ctx.settings

    @property
    def db(self) -> Database:
        return self.ctx.database

    async def startup(self, ctx: HiveContext) -> ShutdownHook:
        ctx.gateway = self
        ctx.on_assignment = self.dispatcher.push_assignment
        ctx.on_task_cancel = self.dispatcher.push_cancel
        ctx.on_label_change = self.dispatcher.push_label
        await self.fanout.start()
        self.jobs.start()
        return self.shutdown

    def disconnect(self, node_id: uuid.UUID, reason: str) -> None:
        """Close the node's session, if it has one, with 1008 and ``reason`` (its access was
        taken away: e.g. its API key was revoked)."""
        session = self.registry.get(node_id)
        if session is not None:
            log.info("gateway.disconnect", node_id=str(node_id), reason=reason)
            session.close(1008, reason)

    async def shutdown(self) -> None:
        await self.jobs.stop()
        sessions = self.registry.sessions()
        for session in sessions:
            session.abort(1001, "hive shutting down")
        for session in sessions:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.ended.wait(), 5)
        await self.fanout.stop()
        self.ctx.on_assignment = self.ctx.on_task_cancel = self.ctx.on_label_change = None


_DENIAL = "websocket.http.response"
"""The ASGI extension that lets an app answer a WebSocket handshake with an HTTP response."""


async def _refuse(socket: WebSocket[Any, Any, Any], refusal: Refusal) -> None:
    """Answer the handshake with ``refusal`` (an HTTP error with ``Retry-After`` and a problem
    details body); a server without the denial extension rejects the handshake on close."""
    if _DENIAL not in (socket.scope.get("extensions") or {}):
        await socket.close(1013, refusal.message[:120])
        return
    body = problems.encode(refusal.status_code, refusal.code, refusal.message)
    with contextlib.suppress(WebSocketDisconnect, OSError):  # the peer is gone: nothing to say
        await socket.receive()  # websocket.connect
        await socket.send(
            {
                "type": "websocket.http.response.start",
                "status": refusal.status_code,
                "headers": [
                    (b"content-type", problems.MEDIA_TYPE.encode()),
                    (b"retry-after", str(refusal.retry_after_s).encode("ascii")),
                ],
            }
        )
        await socket.send(
            {"type": "websocket.http.response.body", "body": body, "more_body": False}
        )


async def _serve(socket: WebSocket[Any, Any, Any]) -> None:
    ctx: HiveContext = socket.app.state.hive
    gateway: Gateway | None = ctx.gateway
    if gateway is None:
        await socket.close(1011, "gateway not running")
        return
    client = socket.scope.get("client")
    refusal = gateway.admission.check(client[0] if client else None)
    if refusal is not None:
        log.info(
            "gateway.refused",
            status=refusal.status_code,
            reason=refusal.message,
            retry_after_s=refusal.retry_after_s,
        )
        ctx.metrics.node_refused(refusal.status_code)
        await _refuse(socket, refusal)
        return
    session = NodeSession(gateway, socket)
    gateway.admission.track(session)
    try:
        await session.run()
    finally:
        gateway.admission.forget(session)


node_socket: WebsocketRouteHandler = websocket("/nodes/ws", name="node_socket")(_serve)
"""The ``/v1/nodes/ws`` route (mounted under ``/v1``)."""
