"""The node gateway: the control channel ``GET /v1/nodes/ws`` and everything behind it.

:class:`Gateway` owns the registry of connected sessions, the activity fan-out (its LISTEN
connection and tasks), the link to the other hive processes over the same database
(:class:`~vk_hive.gateway.cluster.ClusterLink`, on the same LISTEN connection) and the lease
and stale-node sweepers (its own :class:`JobRunner`, run only while this process leads);
:meth:`Gateway.startup` is the lifespan hook that builds them on the open database and starts
them, and returns the shutdown that stops them.

Module dependencies point one way (no cycle, ``TYPE_CHECKING`` imports included):
``__init__`` → ``session`` → ``handlers`` → ``apply`` → ``plan`` …; every module that needs the
hive or another connected node gets :class:`~vk_hive.gateway.ports.GatewayDeps` and
:class:`~vk_hive.gateway.ports.Peer`/:class:`~vk_hive.gateway.ports.Directory` passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import WebSocket, websocket
from litestar.handlers import WebsocketRouteHandler

from vk_hive.context import HiveContext
from vk_hive.gateway.activity import ActivityFanout
from vk_hive.gateway.admission import Admission, Refusal
from vk_hive.gateway.cluster import CHANNEL as CLUSTER_CHANNEL
from vk_hive.gateway.cluster import ClusterLink
from vk_hive.gateway.denial import DENIAL, deny_handshake
from vk_hive.gateway.dispatch import Dispatcher
from vk_hive.gateway.ports import GatewayDeps
from vk_hive.gateway.registry import Registry
from vk_hive.gateway.session import NodeSession
from vk_hive.gateway.watchers import WatcherRegistry
from vk_hive.jobs.runner import JobRunner, PeriodicJob
from vk_hive.lifespan import ShutdownHook
from vk_hive.settings import HiveSettings

__all__ = ["Gateway", "node_socket"]

log = structlog.get_logger("vk_hive.gateway")


@dataclass(frozen=True, slots=True)
class _Running:
    """What the gateway runs between :meth:`Gateway.startup` and its shutdown."""

    deps: GatewayDeps
    fanout: ActivityFanout
    dispatcher: Dispatcher
    jobs: JobRunner
    cluster: ClusterLink


class Gateway:
    """The node gateway of one hive process (a :class:`~vk_hive.context.NodeGateway`)."""

    def __init__(self, ctx: HiveContext) -> None:
        self.settings: HiveSettings = ctx.settings
        self.metrics = ctx.metrics
        self.registry = Registry()
        self.watchers = WatcherRegistry()
        """The user activity stream sessions (``/v1/ws``, :mod:`vk_hive.api.userws`)."""
        self.admission = Admission.from_settings(ctx.settings)
        self._running: _Running | None = None
        self._sessions: set[NodeSession] = set()
        """The sessions this process serves, authenticated or not (closed on shutdown)."""

    def _require(self) -> _Running:
        if self._running is None:
            raise RuntimeError("the node gateway is not running")
        return self._running

    @property
    def fanout(self) -> ActivityFanout:
        return self._require().fanout

    @property
    def dispatcher(self) -> Dispatcher:
        return self._require().dispatcher

    @property
    def running(self) -> bool:
        return self._running is not None

    @property
    def deps(self) -> GatewayDeps:
        """What the gateway's parts use (the user stream sessions too); only while running."""
        return self._require().deps

    async def startup(self, ctx: HiveContext) -> ShutdownHook:
        cluster = ClusterLink(ctx.database, self.registry, self.watchers)
        deps = GatewayDeps(
            db=ctx.database,
            settings=ctx.settings,
            metrics=ctx.metrics,
            directory=self.registry,
            watchers=self.watchers,
            cluster=cluster,
        )
        dispatcher = Dispatcher(deps)
        jobs = JobRunner()
        leads = ctx.leader.only if ctx.leader is not None else (lambda job: job)
        jobs.add(
            PeriodicJob(
                "lease_sweeper",
                ctx.settings.lease_sweep_interval_s,
                leads(dispatcher.sweep),
                delay_first=True,
            )
        )
        jobs.add(
            PeriodicJob(
                "stale_node_sweeper",
                ctx.settings.stale_node_sweep_s,
                leads(dispatcher.sweep_stale_nodes),
                delay_first=True,
            )
        )
        fanout = ActivityFanout(
            deps, channels={CLUSTER_CHANNEL: cluster.on_notify}, on_listening=cluster.resync
        )
        running = _Running(deps, fanout, dispatcher, jobs, cluster)
        self._running = running
        ctx.gateway = self
        ctx.on_assignment = dispatcher.push_assignment
        ctx.on_task_cancel = dispatcher.push_cancel
        ctx.on_label_change = dispatcher.push_label
        cluster.start()
        await running.fanout.start()
        running.jobs.start()

        async def shutdown() -> None:
            await self._shutdown(ctx, running)

        return shutdown

    def disconnect(self, node_id: uuid.UUID, reason: str) -> None:
        """Close the node's session, wherever it is, with 1008 and ``reason`` (its access was
        taken away: e.g. its API key was revoked)."""
        peer = self.registry.get(node_id)
        if peer is not None:
            log.info("gateway.disconnect", node_id=str(node_id), reason=reason)
            peer.close(1008, reason)
        if self._running is not None:
            self._running.cluster.disconnect(node_id, reason)

    async def _shutdown(self, ctx: HiveContext, running: _Running) -> None:
        await running.jobs.stop()
        for watcher in self.watchers.watchers():
            watcher.abort(1001, "hive shutting down")
        sessions = list(self._sessions)
        for session in sessions:
            session.abort(1001, "hive shutting down")
        for session in sessions:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.ended.wait(), 5)
        await running.fanout.stop()
        await running.cluster.stop()
        ctx.on_assignment = ctx.on_task_cancel = ctx.on_label_change = None
        self._running = None

    async def serve(self, socket: WebSocket[Any, Any, Any]) -> None:
        """Admit and serve one node connection (the ``/v1/nodes/ws`` route)."""
        running = self._running
        if running is None:
            await socket.close(1011, "gateway not running")
            return
        client = socket.scope.get("client")
        refusal = self.admission.check(client[0] if client else None)
        if refusal is not None:
            log.info(
                "gateway.refused",
                status=refusal.status_code,
                reason=refusal.message,
                retry_after_s=refusal.retry_after_s,
            )
            self.metrics.node_refused(refusal.status_code)
            await _refuse(socket, refusal)
            return
        session = NodeSession(running.deps, socket)
        self.admission.track(session)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            self.admission.forget(session)


async def _refuse(socket: WebSocket[Any, Any, Any], refusal: Refusal) -> None:
    """Answer the handshake with ``refusal`` (an HTTP error with ``Retry-After`` and a problem
    details body); a server without the denial extension rejects the handshake on close."""
    if DENIAL not in (socket.scope.get("extensions") or {}):
        await socket.close(1013, refusal.message[:120])
        return
    await deny_handshake(
        socket,
        refusal.status_code,
        refusal.code,
        refusal.message,
        headers=[(b"retry-after", str(refusal.retry_after_s).encode("ascii"))],
    )


async def _serve(socket: WebSocket[Any, Any, Any]) -> None:
    ctx: HiveContext = socket.app.state.hive
    if ctx.gateway is None:
        await socket.close(1011, "gateway not running")
        return
    await ctx.gateway.serve(socket)


node_socket: WebsocketRouteHandler = websocket("/nodes/ws", name="node_socket")(_serve)
"""The ``/v1/nodes/ws`` route (mounted under ``/v1``)."""
