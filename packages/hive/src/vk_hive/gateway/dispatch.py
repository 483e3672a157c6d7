"""Pushes that follow hive-side decisions: ``task_assign`` after a claim, the lease sweeper with
re-dispatch, ``task_cancel`` after an operator cancel, ``label_sync`` after label changes."""

from __future__ import annotations

import datetime as dt
import uuid

import structlog

from vk_hive.api.dispatch import dispatch_task
from vk_hive.errors import DomainError
from vk_hive.gateway.ports import GatewayDeps
from vk_hive.store.models import Assignment, Label
from vk_hive.store.repositories import assignments, project_links, shared_tasks
from vk_shared.status import TaskStatus
from vk_shared.wire import LabelSync, LeaseRevoked, TaskAssign, TaskCancel, TaskDetails

__all__ = ["Dispatcher"]

log = structlog.get_logger("vk_hive.gateway.dispatch")


class Dispatcher:
    def __init__(self, deps: GatewayDeps) -> None:
        self._deps = deps
        self._directory = deps.directory

    async def push_assignment(self, assignment: Assignment) -> None:
        """``task_assign`` to the node's live session; nothing if it is not connected (the lease
        then expires and the sweeper reclaims it)."""
        peer = self._directory.get(assignment.node_id)
        if peer is None:
            log.info("dispatch.node_not_connected", assignment_id=str(assignment.id))
            return
        async with self._deps.db.acquire() as conn:
            details = await assignments.find_dispatch_details(conn, assignment.id)
        if details is None:
            return
        peer.push_urgent(
            TaskAssign(
                assignment_id=details.assignment_id,
                task_id=details.task_id,
                project_id=details.project_id,
                link_id=details.link_id,
                local_project_id=details.local_project_id,
                task=TaskDetails(
                    title=details.title,
                    description=details.description,
                    executor=details.executor,
                    base_branch=details.base_branch,
                ),
                fencing_token=details.fencing_token,
                lease_ttl_ms=min(details.lease_ttl_ms, 2**31 - 1),
            )
        )
        log.info(
            "dispatch.task_assign_sent",
            assignment_id=str(details.assignment_id),
            node_id=str(details.node_id),
            fencing_token=details.fencing_token,
        )

    async def push_cancel(self, assignment: Assignment, reason: str | None) -> None:
        peer = self._directory.get(assignment.node_id)
        if peer is not None:
            peer.push_urgent(TaskCancel(assignment_id=assignment.id, reason=reason))

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
            holder = self._directory.get(lease.node_id)
            if holder is not None:
                holder.push_urgent(
                    LeaseRevoked(assignment_id=lease.assignment_id, reason="lease expired")
                )
            try:
                await self.redispatch(lease.task_id)
            except Exception as exc:
                log.warning("lease.redispatch_failed", task_id=str(lease.task_id), error=str(exc))
        return len(reclaimed)

    async def redispatch(self, task_id: uuid.UUID) -> Assignment | None:
        """Claim a new lease on a connected node that links the project and can run the task's
        executor (in link order); records the change as ``task.updated`` activity."""
        claimed: Assignment | None = None
        async with self._deps.db.transaction() as conn:
            task = await shared_tasks.find_by_id(conn, task_id)
            if task is None or task.swarm_project_id is None:
                return None
            if task.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
                return None
            for target in await project_links.find_nodes_for_dispatch(conn, task.swarm_project_id):
                peer = self._directory.get(target.node_id)
                if peer is None or task.executor not in peer.node.executors:
                    continue
                try:
                    async with conn.transaction():
                        claimed = await dispatch_task(
                            conn, self._deps.settings, task, target.node_id
                        )
                    break
                except DomainError as exc:
                    log.info(
                        "lease.redispatch_skipped", node_id=str(target.node_id), reason=str(exc)
                    )
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
