"""Pushes that follow hive-side decisions: ``task_assign`` after a claim, the lease sweeper with
re-dispatch, ``task_cancel`` after an operator cancel, ``label_sync`` after label changes, and
the stale-node sweep. Each reaches the node wherever its session is (:class:`ClusterLink
<vk_hive.gateway.cluster.ClusterLink>` carries it to another hive process)."""

from __future__ import annotations

import datetime as dt
import uuid

import structlog

from vk_hive.api.dispatch import dispatch_task
from vk_hive.errors import DomainError
from vk_hive.gateway.assigns import deliver_here
from vk_hive.gateway.ports import GatewayDeps
from vk_hive.store.models import Assignment, Label
from vk_hive.store.repositories import assignments, nodes, shared_tasks
from vk_hive.webhooks import events as webhook_events
from vk_shared.status import TaskStatus
from vk_shared.wire import LabelSync, LeaseRevoked, TaskCancel

__all__ = ["Dispatcher"]

log = structlog.get_logger("vk_hive.gateway.dispatch")


class Dispatcher:
    def __init__(self, deps: GatewayDeps) -> None:
        self._deps = deps
        self._directory = deps.directory
        self._cluster = deps.cluster

    async def push_assignment(self, assignment: Assignment) -> None:
        """``task_assign`` to the node's current session: here, or through the hive process
        that serves it; nothing if the node is offline (it gets it when it connects, or the
        lease expires and the sweeper reclaims it)."""
        details, pushed = await deliver_here(self._deps.db, self._directory, assignment.id)
        if details is None:
            return
        if pushed:
            log.info(
                "dispatch.task_assign_sent",
                assignment_id=str(details.assignment_id),
                node_id=str(details.node_id),
                fencing_token=details.fencing_token,
            )
        elif details.node_session_id is not None:
            self._cluster.assign(details.node_id, details.assignment_id)
            log.info("dispatch.task_assign_routed", assignment_id=str(details.assignment_id))
        else:
            log.info("dispatch.node_not_connected", assignment_id=str(assignment.id))

    def _to_node(self, node_id: uuid.UUID, msg: TaskCancel | LeaseRevoked) -> None:
        """A lease decision for the node, wherever its session is."""
        peer = self._directory.get(node_id)
        if peer is not None:
            peer.push_urgent(msg)
        self._cluster.deliver(msg, node_ids=[node_id])

    async def push_cancel(self, assignment: Assignment, reason: str | None) -> None:
        self._to_node(assignment.node_id, TaskCancel(assignment_id=assignment.id, reason=reason))

    async def push_label(self, label: Label) -> None:
        msg = LabelSync(
            label_id=label.id,
            project_id=label.project_id,
            name=label.name[:255] or "label",
            icon=label.icon[:255],
            color=label.color[:255],
            version=label.version,
            is_deleted=label.deleted_at is not None,
        )
        for peer in self._directory.for_org(label.organization_id):
            peer.push(msg)
        self._cluster.deliver(msg, organization_id=label.organization_id)

    async def sweep(self) -> int:
        """Reclaim leases expired longer than the grace (database clock), close those
        assignments, tell the old holders, re-dispatch the tasks. Returns how many."""
        settings = self._deps.settings
        async with self._deps.db.transaction() as conn:
            reclaimed = await assignments.reclaim_expired_leases(
                conn, grace=dt.timedelta(seconds=settings.lease_grace_s)
            )
            for lease in reclaimed:
                await assignments.complete(conn, lease.assignment_id, "failed")
        if reclaimed:
            self._deps.metrics.leases_reclaimed.inc(len(reclaimed))
        for lease in reclaimed:
            log.info(
                "lease.reclaimed",
                assignment_id=str(lease.assignment_id),
                node_id=str(lease.node_id),
            )
            revoked = LeaseRevoked(assignment_id=lease.assignment_id, reason="lease expired")
            self._to_node(lease.node_id, revoked)
            try:
                await self.redispatch(lease.task_id)
            except Exception as exc:
                log.warning("lease.redispatch_failed", task_id=str(lease.task_id), error=str(exc))
        return len(reclaimed)

    async def sweep_stale_nodes(self) -> int:
        """Mark offline the nodes whose heartbeat is older than the timeout (their hive process
        died, or their session hangs): dispatch skips them and the boards show them offline."""
        timeout = dt.timedelta(seconds=self._deps.settings.heartbeat_timeout_s)
        grace_s = self._deps.settings.webhook_node_offline_grace_s
        async with self._deps.db.transaction() as conn:
            stale = await nodes.mark_stale_offline(conn, timeout)
            for node_id in stale:
                await webhook_events.node_offline(conn, node_id, grace_s=grace_s)
        for node_id in stale:
            log.info("node.stale_offline", node_id=str(node_id))
            self._cluster.status_changed(node_id)
        return len(stale)

    async def redispatch(self, task_id: uuid.UUID) -> Assignment | None:
        """Claim a new lease on an online node (connected to any hive process) that links the
        project and can run the task's executor (in link order); records the change as
        ``task.updated`` activity."""
        claimed: Assignment | None = None
        async with self._deps.db.transaction() as conn:
            task = await shared_tasks.find_by_id(conn, task_id)
            if task is None or task.swarm_project_id is None:
                return None
            if task.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
                return None
            try:
                async with conn.transaction():
                    claimed = await dispatch_task(conn, self._deps.settings, task, None)
            except DomainError as exc:
                log.info("lease.redispatch_skipped", task_id=str(task_id), reason=str(exc))
            if claimed is None:
                await shared_tasks.set_executing_node(conn, task.id, None)
            await shared_tasks.update(conn, task.id)  # version+1 and task.updated for the nodes
        if claimed is not None:
            log.info(
                "lease.redispatched",
                task_id=str(task_id),
                node_id=str(claimed.node_id),
                fencing_token=claimed.fencing_token,
            )
            await self.push_assignment(claimed)
        return claimed
