"""``task_assign`` for an assignment, read from the database when it is pushed (the lease time
left is the database's), and pushed only to the node's current session."""

from __future__ import annotations

import uuid

from vk_hive.gateway.ports import Directory
from vk_hive.store.db import Database
from vk_hive.store.models import DispatchDetails
from vk_hive.store.repositories import assignments
from vk_shared.wire import TaskAssign, TaskDetails

__all__ = ["deliver_here", "task_assign"]


def task_assign(details: DispatchDetails) -> TaskAssign:
    return TaskAssign(
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


async def deliver_here(
    db: Database, directory: Directory, assignment_id: uuid.UUID
) -> tuple[DispatchDetails | None, bool]:
    """Push ``task_assign`` if the node's current session is one of this process's. Returns the
    assignment's details (None: it is no longer active under a live lease) and whether it was
    pushed here; a session of this process that is not the node's current one (the node moved
    to another hive process) gets nothing."""
    async with db.acquire() as conn:
        details = await assignments.find_dispatch_details(conn, assignment_id)
    if details is None:
        return None, False
    peer = directory.get(details.node_id)
    if peer is None or peer.node.session_id != details.node_session_id:
        return details, False
    peer.push_urgent(task_assign(details))
    return details, True
