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
from litestar.handlers import WebsocketRouteHandler

from vk_hive.context import HiveContext
from vk_hive.gateway.activity import ActivityFanout
from vk_hive.gateway.dispatch import Dispatcher
from vk_hive.gateway.registry import Registry
from vk_hive.gateway.session import NodeSession
from vk_hive.jobs.runner import JobRunner, PeriodicJob
from vk_hive.lifespan import ShutdownHook
from vk_hive.settings import HiveSettings
from vk_hive.store.db import Database

__all__ = ["Gateway", "node_socket"]

log = structlog.get_logger("vk_hive.gateway")


class Gateway:
    def __init__(self, ctx: HiveContext) -> None:
        self.ctx = ctx
        self.registry = Registry()
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


async def _serve(socket: WebSocket[Any, Any, Any]) -> None:
    ctx: HiveContext = socket.app.state.hive
    gateway: Gateway | None = ctx.gateway
    if gateway is None:
        await socket.close(1011, "gateway not running")
        return
    await NodeSession(gateway, socket).run()


node_socket: WebsocketRouteHandler = websocket("/nodes/ws", name="node_socket")(_serve)
"""The ``/v1/nodes/ws`` route (mounted under ``/v1``)."""
