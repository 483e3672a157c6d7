"""Dispatch of a shared task to a node: pick an eligible node, claim a lease.

The push of ``task_assign`` to the node belongs to the node gateway (a later part): after the
claiming transaction commits, :func:`notify_assignment` awaits ``HiveContext.on_assignment`` when
the gateway has installed one. Until then the assignment (with its lease and fencing token) is only
recorded; a node that does not pick it up loses the lease to the sweeper.
"""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from vk_hive.context import HiveContext
from vk_hive.errors import Conflict, DomainError
from vk_hive.settings import HiveSettings
from vk_hive.store.models import Assignment, SharedTask, SharedTaskWithUser
from vk_hive.store.repositories import activity, assignments, nodes, project_links, shared_tasks
from vk_hive.store.repositories.shared_tasks import NewTask
from vk_shared.status import Author, TaskStatus

__all__ = ["create_dispatched", "dispatch_task", "notify_assignment"]

_LIVE = frozenset({"online", "busy"})


async def dispatch_task(
    conn: asyncpg.Connection,
    settings: HiveSettings,
    task: SharedTask,
    node_id: uuid.UUID | None,
    *,
    unannounced: bool = False,
) -> Assignment:
    """Claim a lease for ``task`` on ``node_id`` (or the first eligible linked node).

    ``unannounced``: the task was inserted in this transaction without its ``task.created``
    event (:func:`create_dispatched`); it starts in progress without an event of its own."""
    if task.swarm_project_id is None:
        raise Conflict("the task is not in a swarm project")
    if task.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
        raise Conflict(f"a {task.status.value} task cannot be dispatched")
    # The hive's lock order: the project's counter before assignment and task rows.
    await activity.lock_projects(conn, [task.swarm_project_id])
    targets = await project_links.find_nodes_for_dispatch(conn, task.swarm_project_id)
    if node_id is not None:
        targets = [t for t in targets if t.node_id == node_id]
        if not targets:
            raise Conflict("the node is not linked to the task's project")
    reasons: list[str] = []
    for target in targets:
        node = await nodes.find_by_id(conn, target.node_id)
        if node is None or node.organization_id != task.organization_id:
            continue
        executors = node.capabilities.get("executors") or []
        if str(node.status) not in _LIVE:
            reasons.append(f"node {node.name} is {node.status}")
            continue
        if task.executor not in executors:
            reasons.append(f"node {node.name} cannot run {task.executor}")
            continue
        claimed = await assignments.try_claim(
            conn,
            task.id,
            node.id,
            target.link_id,
            dt.timedelta(seconds=settings.lease_ttl_s),
            grace=dt.timedelta(seconds=settings.lease_grace_s),
        )
        if claimed is None:
            raise Conflict("the task is already assigned under a live lease")
        if unannounced:
            await shared_tasks.start_unannounced(conn, task.id, node.id)
            return claimed
        if task.status == TaskStatus.TODO:
            await shared_tasks.set_status(conn, task.id, TaskStatus.IN_PROGRESS, Author.HIVE)
        await shared_tasks.set_executing_node(conn, task.id, node.id)
        return claimed
    detail = "; ".join(reasons) if reasons else "no node is linked to the task's project"
    raise Conflict(f"no eligible node: {detail}")


async def create_dispatched(
    conn: asyncpg.Connection,
    settings: HiveSettings,
    data: NewTask,
    node_id: uuid.UUID | None,
) -> tuple[SharedTaskWithUser, Assignment | None, str | None]:
    """Create a task and dispatch it in the caller's transaction, with ONE ``task.created``
    event showing it as it ends up: in progress on its node, or still todo when no node could
    take it. Returns (the task, its assignment or None, why it was not dispatched or None).

    One transaction and one event instead of two each: every node linked to the project applies
    one event per dispatch, and the task is never seen as todo when it was dispatched at once.
    """
    task = await shared_tasks.insert(conn, data)
    assignment: Assignment | None = None
    error: str | None = None
    try:
        async with conn.transaction():
            assignment = await dispatch_task(conn, settings, task, node_id, unannounced=True)
    except DomainError as exc:
        error = exc.detail
    created = await shared_tasks.announce(conn, task.id, "task.created")
    return created, assignment, error


async def notify_assignment(ctx: HiveContext, assignment: Assignment) -> None:
    """Hand a committed assignment to the node gateway, if one is installed."""
    if ctx.on_assignment is not None:
        await ctx.on_assignment(assignment)
