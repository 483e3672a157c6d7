"""What the hive does with each node → hive message of an authenticated session.

:class:`Handlers` is built by the session once it adopted its node's identity; it gets what it
needs passed in — the identity, the gateway's dependencies, the session as the node's
:class:`~vk_hive.gateway.ports.Peer` (its outgoing port) and its activity streams — and keeps
the little state the messages change (the last heartbeat status, a deregistration).
"""

from __future__ import annotations

import datetime as dt
import pathlib
import uuid

import structlog

from vk_hive.errors import LinkAlreadyExists
from vk_hive.gateway.activity import ActivityStreams
from vk_hive.gateway.apply import apply_batch
from vk_hive.gateway.assigns import deliver_here
from vk_hive.gateway.auth import link_info
from vk_hive.gateway.digest import digest_result
from vk_hive.gateway.dispatch import Dispatcher
from vk_hive.gateway.frames import error
from vk_hive.gateway.identity import NodeIdentity
from vk_hive.gateway.ports import GatewayDeps, Peer
from vk_hive.store.models import LocalProjectInfo
from vk_hive.store.repositories import (
    assignments,
    node_local_projects,
    nodes,
    project_links,
    swarm_projects,
)
from vk_hive.webhooks import events as webhook_events
from vk_shared.status import NodeStatus
from vk_shared.wire import (
    Auth,
    Deregister,
    Digest,
    ErrorCode,
    Heartbeat,
    HeartbeatAck,
    LeaseGrant,
    LeaseRenew,
    LeaseRevoked,
    LinkProject,
    NodeMessage,
    NodeRemoved,
    OpAck,
    OpBatch,
    ProjectsSync,
    ProjectSync,
    UnlinkProject,
)
from vk_shared.wire import LocalProjectInfo as WireLocalProject

__all__ = ["Handlers"]

log = structlog.get_logger("vk_hive.gateway")


def _store_info(p: WireLocalProject) -> LocalProjectInfo:
    return LocalProjectInfo(
        local_project_id=p.local_project_id,
        name=p.name.replace("\x00", "") or "project",
        git_repo_path=p.git_repo_path.replace("\x00", ""),
        default_branch=p.default_branch.replace("\x00", "") or "main",
    )


def _path_name(path: str) -> str:
    name = pathlib.PurePath(path.rstrip("/\\") or "project").name
    return (name or "project")[:255]


class Handlers:
    """One authenticated session's message handlers."""

    def __init__(
        self, node: NodeIdentity, deps: GatewayDeps, peer: Peer, streams: ActivityStreams
    ) -> None:
        self.node = node
        self.deps = deps
        self.peer = peer
        self.streams = streams
        self.status = NodeStatus.ONLINE
        """The status of the node's last heartbeat (a change is announced)."""
        self.deregistered = False

    # --- session lifecycle ---------------------------------------------------------------------

    async def after_auth(self) -> None:
        """Announce the node, push again the assignments it has not acknowledged (their
        ``task_assign`` may have gone to a session that ended, here or on another hive
        process), and start its activity streams (replay from the sent cursors)."""
        node_id = self.node.node_id
        self.deps.cluster.session_started(node_id, self.node.session_id)
        async with self.deps.db.acquire() as conn:
            row = await nodes.find_by_id(conn, node_id)
            pending = await assignments.find_undelivered(conn, [node_id])
        if row is not None:
            self.deps.cluster.status_changed(node_id)
        for assignment_id in pending:
            details, pushed = await deliver_here(self.deps.db, self.deps.directory, assignment_id)
            if pushed and details is not None:
                log.info(
                    "dispatch.task_assign_sent",
                    assignment_id=str(assignment_id),
                    fencing_token=details.fencing_token,
                    on_connect=True,
                )
        for project_id in self.node.linked_at_auth:
            self._subscribe(project_id)

    async def on_disconnect(self) -> None:
        """Unregister; mark the node offline unless a newer session of it took over (here or
        on another hive process)."""
        self.streams.close()
        node_id = self.node.node_id
        row = None
        if not self.deregistered:
            # The table first, then the registry: once a session is gone from the registry, the
            # table no longer names it the node's current one (auth's online check reads both).
            try:
                async with self.deps.db.transaction() as conn:
                    row = await nodes.disconnected(conn, node_id, self.node.session_id)
                    if row is not None:
                        await webhook_events.node_offline(
                            conn, node_id, grace_s=self.deps.settings.webhook_node_offline_grace_s
                        )
            finally:
                self.deps.directory.unregister(self.peer)
        if row is None:
            log.info("session.ended_after_takeover", node_id=str(node_id))
            return
        log.info("session.disconnected", node_id=str(node_id))
        # Announced after a grace: a node that reconnects meanwhile is never shown offline.
        self.deps.cluster.status_changed(node_id, after_s=self.deps.settings.status_offline_grace_s)

    def _subscribe(self, project_id: uuid.UUID) -> None:
        """Stream the project's activity to the node from its cursor sent in ``auth``."""
        self.streams.subscribe(project_id, self.node.cursor(project_id))
        self.deps.directory.subscribe(self.peer, project_id)

    def _unsubscribe(self, project_id: uuid.UUID) -> None:
        self.streams.unsubscribe(project_id)
        self.deps.directory.unsubscribe(self.peer, project_id)

    # --- messages ------------------------------------------------------------------------------

    async def handle(self, msg: NodeMessage) -> None:
        match msg:
            case Heartbeat():
                await self._heartbeat(msg)
            case OpBatch():
                await self._op_batch(msg)
            case LeaseRenew():
                await self._lease_renew(msg)
            case ProjectsSync():
                await self._projects_sync(msg)
            case LinkProject():
                await self._link_project(msg)
            case UnlinkProject():
                await self._unlink_project(msg)
            case Digest():
                async with self.deps.db.acquire() as conn:
                    await self.peer.send(await digest_result(conn, self.node.node_id, msg))
            case Deregister():
                await self._deregister(msg)
            case Auth():
                await self.peer.send(
                    error(ErrorCode.UNEXPECTED_MESSAGE, "already authenticated", "auth")
                )

    async def _heartbeat(self, msg: Heartbeat) -> None:
        async with self.deps.db.acquire() as conn:
            row = await nodes.heartbeat(conn, self.node.node_id, msg.status)
        await self.peer.send(HeartbeatAck(server_time=self.deps.settings.wall_now()))
        if msg.status != self.status:
            self.status = msg.status
            self.deps.cluster.status_changed(row.id)

    async def _op_batch(self, msg: OpBatch) -> None:
        try:
            result = await apply_batch(self.deps.db, self.node, msg.ops)
        except Exception as exc:
            # A transient failure (database down, serialization): ack nothing, the node resends.
            log.warning(
                "op_batch.failed",
                node_id=str(self.node.node_id),
                error=type(exc).__name__,
                ops=len(msg.ops),
            )
            self.deps.metrics.op_batch_failures.inc()
            return
        self.deps.metrics.batch_applied(result.outcomes, result.elapsed_s)
        for rejected in result.rejected:
            await self.peer.send(rejected)
        for revoked in result.revoked:
            await self.peer.send(revoked)
        await self.peer.send(OpAck(applied_through_seq=result.applied_through, tasks=result.tasks))
        if result.labels:
            # A label from a node reaches every node of the organization by label_sync.
            dispatcher = Dispatcher(self.deps)
            for label in result.labels:
                await dispatcher.push_label(label)

    async def _lease_renew(self, msg: LeaseRenew) -> None:
        ttl_s = self.deps.settings.lease_ttl_s
        ids = list(dict.fromkeys(msg.assignment_ids))
        async with self.deps.db.acquire() as conn:
            renewed = await assignments.renew_leases(
                conn, ids, self.node.node_id, dt.timedelta(seconds=ttl_s)
            )
        by_id = {a.id: a for a in renewed}
        for assignment_id in ids:
            held = by_id.get(assignment_id)
            if held is None:
                await self.peer.send(
                    LeaseRevoked(
                        assignment_id=assignment_id,
                        reason="lease not renewable: expired, reclaimed, completed or not yours",
                    )
                )
            else:
                await self.peer.send(
                    LeaseGrant(
                        assignment_id=held.id,
                        fencing_token=held.fencing_token,
                        ttl_ms=max(1, int(ttl_s * 1000)),
                    )
                )

    async def _projects_sync(self, msg: ProjectsSync) -> None:
        projects = [_store_info(p) for p in msg.projects]
        node_id = self.node.node_id
        async with self.deps.db.transaction() as conn:
            await node_local_projects.bulk_upsert(conn, node_id, projects)
            await node_local_projects.delete_unlinked_except(
                conn, node_id, [p.local_project_id for p in projects]
            )

    async def _link_project(self, msg: LinkProject) -> None:
        node_id = self.node.node_id
        ref = str(msg.project_id)
        async with self.deps.db.transaction() as conn:
            org = await swarm_projects.organization_id(conn, msg.project_id)
            if org != self.node.organization_id:
                await self.peer.send(
                    error(ErrorCode.FORBIDDEN, "no such swarm project in your organization", ref)
                )
                return
            existing = await node_local_projects.find_by_node_and_project(
                conn, node_id, msg.local_project_id
            )
            info = LocalProjectInfo(
                local_project_id=msg.local_project_id,
                name=existing.name if existing else _path_name(msg.git_repo_path),
                git_repo_path=msg.git_repo_path.replace("\x00", ""),
                default_branch=msg.default_branch,
            )
            current = await project_links.find_node_link(conn, msg.project_id, node_id)
            if current is not None and current.local_project_id != msg.local_project_id:
                # Relink: this node now serves the swarm project from another local project.
                await project_links.unlink_node(conn, msg.project_id, node_id)
                await node_local_projects.unlink_from_swarm(conn, node_id, current.local_project_id)
            await node_local_projects.link_to_swarm_with_upsert(conn, node_id, info, msg.project_id)
            try:
                await project_links.link_node_pool(
                    conn, msg.project_id, node_id, msg.local_project_id, info.git_repo_path
                )
            except LinkAlreadyExists as exc:
                raise RuntimeError(str(exc)) from None
            link = await project_links.find_sync_info(conn, msg.project_id, node_id)
            others = await project_links.get_linked_node_ids(conn, msg.project_id)
        assert link is not None
        update = ProjectSync(link=link_info(link), is_new=True)
        self._push_to([o for o in others if o != node_id], update)
        self.deps.cluster.status_changed(node_id)  # the project's nodes learn its status
        if msg.project_id not in self.streams.projects():
            self._subscribe(msg.project_id)

    async def _unlink_project(self, msg: UnlinkProject) -> None:
        node_id = self.node.node_id
        async with self.deps.db.transaction() as conn:
            link = await project_links.find_sync_info(conn, msg.project_id, node_id)
            if link is None:
                return
            await project_links.unlink_node(conn, msg.project_id, node_id)
            await node_local_projects.unlink_from_swarm(conn, node_id, link.local_project_id)
            others = await project_links.get_linked_node_ids(conn, msg.project_id)
        self._unsubscribe(msg.project_id)
        self._push_to(others, ProjectSync(link=link_info(link), is_new=False))

    async def _deregister(self, msg: Deregister) -> None:
        node_id = self.node.node_id
        async with self.deps.db.transaction() as conn:
            await nodes.delete(conn, node_id)
        self.deregistered = True
        self.deps.directory.unregister(self.peer)
        reason = (msg.reason or "deregistered")[:4096]
        log.info("session.deregistered", node_id=str(node_id))
        removed = NodeRemoved(node_id=node_id, reason=reason)
        org = self.node.organization_id
        for other in self.deps.directory.for_org(org, exclude=[node_id]):
            other.push(removed)
        self.deps.cluster.deliver(removed, organization_id=org, exclude=node_id)
        self.peer.close(1000, "deregistered")

    def _push_to(self, node_ids: list[uuid.UUID], msg: ProjectSync) -> None:
        """``msg`` to these nodes: those connected here directly, the others through the hive
        process that serves them."""
        elsewhere: list[uuid.UUID] = []
        for other_id in node_ids:
            other = self.deps.directory.get(other_id)
            if other is not None:
                other.push(msg)
            else:
                elsewhere.append(other_id)
        if elsewhere:
            self.deps.cluster.deliver(msg, node_ids=elsewhere)
