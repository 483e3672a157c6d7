"""What the hive does with each node → hive message of an authenticated session."""

from __future__ import annotations

import datetime as dt
import pathlib
from typing import TYPE_CHECKING

import structlog

from vk_hive.errors import LinkAlreadyExists
from vk_hive.gateway.apply import apply_batch
from vk_hive.gateway.auth import link_info
from vk_hive.gateway.digest import digest_result
from vk_hive.gateway.frames import error
from vk_hive.store.models import LocalProjectInfo, Node
from vk_hive.store.repositories import (
    assignments,
    node_local_projects,
    nodes,
    project_links,
    swarm_projects,
)
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
    NodeStatusChanged,
    OpAck,
    OpBatch,
    ProjectsSync,
    ProjectSync,
    UnlinkProject,
)
from vk_shared.wire import LocalProjectInfo as WireLocalProject

if TYPE_CHECKING:
    from vk_hive.gateway.session import NodeSession

__all__ = ["after_auth", "handle", "on_disconnect"]

log = structlog.get_logger("vk_hive.gateway")


def _status_message(node: Node) -> NodeStatusChanged:
    return NodeStatusChanged(
        node_id=node.id,
        status=node.status,
        name=node.name[:255] or None,
        public_url=node.public_url[:4096] if node.public_url else None,
        last_heartbeat_at=node.last_heartbeat_at,
    )


def broadcast_status(session: NodeSession, node: Node) -> None:
    """``node_status`` to the organization's other connected nodes (coalesced per session)."""
    msg = _status_message(node)
    for other in session.gateway.registry.for_org(node.organization_id, exclude=[node.id]):
        other.push_status(msg)


async def after_auth(session: NodeSession) -> None:
    """Announce the node and start its activity streams (replay from the sent cursors)."""
    async with session.gateway.db.acquire() as conn:
        node = await nodes.find_by_id(conn, session.node_id)
    if node is not None:
        broadcast_status(session, node)
    for project_id in session.linked_at_auth:
        session.activity.subscribe(project_id, session.activity_cursors.get(project_id, 0))


async def on_disconnect(session: NodeSession) -> None:
    """Unregister; mark the node offline unless a newer session of it took over."""
    session.activity.close()
    if not session.gateway.registry.unregister(session) or session.deregistered:
        return
    async with session.gateway.db.acquire() as conn:
        try:
            node = await nodes.heartbeat(conn, session.node_id, NodeStatus.OFFLINE)
        except Exception as exc:  # the node may have been deleted meanwhile
            log.info("session.offline_skipped", node_id=str(session.node_id), error=str(exc))
            return
    log.info("session.disconnected", node_id=str(session.node_id))
    broadcast_status(session, node)


async def handle(session: NodeSession, msg: NodeMessage) -> None:
    match msg:
        case Heartbeat():
            await _heartbeat(session, msg)
        case OpBatch():
            await _op_batch(session, msg)
        case LeaseRenew():
            await _lease_renew(session, msg)
        case ProjectsSync():
            await _projects_sync(session, msg)
        case LinkProject():
            await _link_project(session, msg)
        case UnlinkProject():
            await _unlink_project(session, msg)
        case Digest():
            async with session.gateway.db.acquire() as conn:
                await session.send(await digest_result(conn, session.node_id, msg))
        case Deregister():
            await _deregister(session, msg)
        case Auth():
            await session.send(error(ErrorCode.UNEXPECTED_MESSAGE, "already authenticated", "auth"))


async def _heartbeat(session: NodeSession, msg: Heartbeat) -> None:
    session.heard_heartbeat()
    async with session.gateway.db.acquire() as conn:
        node = await nodes.heartbeat(conn, session.node_id, msg.status)
    await session.send(HeartbeatAck(server_time=session.gateway.settings.wall_now()))
    if msg.status != session.status:
        session.status = msg.status
        broadcast_status(session, node)


async def _op_batch(session: NodeSession, msg: OpBatch) -> None:
    try:
        result = await apply_batch(session.gateway.db, session, msg.ops)
    except Exception as exc:
        # A transient failure (database down, serialization): ack nothing, the node resends.
        log.warning(
            "op_batch.failed",
            node_id=str(session.node_id),
            error=type(exc).__name__,
            ops=len(msg.ops),
        )
        session.gateway.ctx.metrics.op_batch_failures.inc()
        return
    session.gateway.ctx.metrics.batch_applied(result.outcomes, result.elapsed_s)
    for rejected in result.rejected:
        await session.send(rejected)
    for revoked in result.revoked:
        await session.send(revoked)
    await session.send(OpAck(applied_through_seq=result.applied_through))


async def _lease_renew(session: NodeSession, msg: LeaseRenew) -> None:
    ttl_s = session.gateway.settings.lease_ttl_s
    ids = list(dict.fromkeys(msg.assignment_ids))
    async with session.gateway.db.acquire() as conn:
        renewed = await assignments.renew_leases(
            conn, ids, session.node_id, dt.timedelta(seconds=ttl_s)
        )
    by_id = {a.id: a for a in renewed}
    for assignment_id in ids:
        held = by_id.get(assignment_id)
        if held is None:
            await session.send(
                LeaseRevoked(
                    assignment_id=assignment_id,
                    reason="lease not renewable: expired, reclaimed, completed or not yours",
                )
            )
        else:
            await session.send(
                LeaseGrant(
                    assignment_id=held.id,
                    fencing_token=held.fencing_token,
                    ttl_ms=max(1, int(ttl_s * 1000)),
                )
            )


def _store_info(p: WireLocalProject) -> LocalProjectInfo:
    return LocalProjectInfo(
        local_project_id=p.local_project_id,
        name=p.name.replace("\x00", "") or "project",
        git_repo_path=p.git_repo_path.replace("\x00", ""),
        default_branch=p.default_branch.replace("\x00", "") or "main",
    )


async def _projects_sync(session: NodeSession, msg: ProjectsSync) -> None:
    projects = [_store_info(p) for p in msg.projects]
    async with session.gateway.db.transaction() as conn:
        await node_local_projects.bulk_upsert(conn, session.node_id, projects)
        await node_local_projects.delete_unlinked_except(
            conn, session.node_id, [p.local_project_id for p in projects]
        )


def _path_name(path: str) -> str:
    name = pathlib.PurePath(path.rstrip("/\\") or "project").name
    return (name or "project")[:255]


async def _link_project(session: NodeSession, msg: LinkProject) -> None:
    gateway = session.gateway
    ref = str(msg.project_id)
    async with gateway.db.transaction() as conn:
        org = await swarm_projects.organization_id(conn, msg.project_id)
        if org != session.organization_id:
            await session.send(
                error(ErrorCode.FORBIDDEN, "no such swarm project in your organization", ref)
            )
            return
        existing = await node_local_projects.find_by_node_and_project(
            conn, session.node_id, msg.local_project_id
        )
        info = LocalProjectInfo(
            local_project_id=msg.local_project_id,
            name=existing.name if existing else _path_name(msg.git_repo_path),
            git_repo_path=msg.git_repo_path.replace("\x00", ""),
            default_branch=msg.default_branch,
        )
        current = await project_links.find_node_link(conn, msg.project_id, session.node_id)
        if current is not None and current.local_project_id != msg.local_project_id:
            # Relink: this node now serves the swarm project from another local project.
            await project_links.unlink_node(conn, msg.project_id, session.node_id)
            await node_local_projects.unlink_from_swarm(
                conn, session.node_id, current.local_project_id
            )
        await node_local_projects.link_to_swarm_with_upsert(
            conn, session.node_id, info, msg.project_id
        )
        try:
            await project_links.link_node_pool(
                conn, msg.project_id, session.node_id, msg.local_project_id, info.git_repo_path
            )
        except LinkAlreadyExists as exc:
            raise RuntimeError(str(exc)) from None
        link = await project_links.find_sync_info(conn, msg.project_id, session.node_id)
        others = await project_links.get_linked_node_ids(conn, msg.project_id)
    assert link is not None
    update = ProjectSync(link=link_info(link), is_new=True)
    for node_id in others:
        other = gateway.registry.get(node_id)
        if other is not None and node_id != session.node_id:
            other.push(update)
    if msg.project_id not in session.subscribed_projects:
        session.activity.subscribe(msg.project_id, session.activity_cursors.get(msg.project_id, 0))


async def _unlink_project(session: NodeSession, msg: UnlinkProject) -> None:
    gateway = session.gateway
    async with gateway.db.transaction() as conn:
        link = await project_links.find_sync_info(conn, msg.project_id, session.node_id)
        if link is None:
            return
        await project_links.unlink_node(conn, msg.project_id, session.node_id)
        await node_local_projects.unlink_from_swarm(conn, session.node_id, link.local_project_id)
        others = await project_links.get_linked_node_ids(conn, msg.project_id)
    session.activity.unsubscribe(msg.project_id)
    update = ProjectSync(link=link_info(link), is_new=False)
    for node_id in others:
        other = gateway.registry.get(node_id)
        if other is not None:
            other.push(update)


async def _deregister(session: NodeSession, msg: Deregister) -> None:
    gateway = session.gateway
    async with gateway.db.transaction() as conn:
        await nodes.delete(conn, session.node_id)
    session.deregistered = True
    gateway.registry.unregister(session)
    reason = (msg.reason or "deregistered")[:4096]
    log.info("session.deregistered", node_id=str(session.node_id))
    for other in gateway.registry.for_org(session.organization_id, exclude=[session.node_id]):
        other.push(NodeRemoved(node_id=session.node_id, reason=reason))
    session.close(1000, "deregistered")
