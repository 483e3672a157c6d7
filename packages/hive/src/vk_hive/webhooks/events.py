"""Firing organization webhook events: one delivery per active subscribed webhook, written on
the caller's transaction — the one that records the fact — so the fact and its deliveries
commit (or roll back) together, and a hive that stops right after still sends them (any hive
process's worker picks them up).

- ``task_finished``: a ``codingagent`` process mirror reaches ``completed``, ``failed`` or
  ``killed`` (the first time: a resent op or a later update of the finished row fires nothing).
  Runs a node started by itself fire too, as long as their task is shared.
- ``node_offline``: the node is marked offline (its session ended, or the stale-node sweep). The
  delivery is due after ``webhook_node_offline_grace_s`` and is superseded instead of sent when
  the node connected again meanwhile.
"""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import structlog

from vk_hive.store.models import ExecutionProcess
from vk_hive.store.repositories import assignments, executions, nodes, shared_tasks, swarm_projects
from vk_hive.store.repositories import webhooks as webhooks_repo
from vk_hive.tenancy import repository as tenancy_repo
from vk_hive.webhooks.payload import (
    AssignmentInfo,
    AttemptInfo,
    NodeInfo,
    NodeOfflineBody,
    OfflineNode,
    OrganizationInfo,
    ProcessInfo,
    ProjectInfo,
    RunningTask,
    TaskFinishedBody,
    TaskInfo,
    encode_body,
)

__all__ = ["FINISHED", "ends_a_run", "node_offline", "task_finished"]

log = structlog.get_logger("vk_hive.webhooks")

FINISHED = frozenset({"completed", "failed", "killed"})
_FIRING_RUN_REASON = "codingagent"
_MAX_RUNNING_LISTED = 50


def ends_a_run(run_reason: str, status: str) -> bool:
    """Whether a process mirror in this state is the end of a run that fires ``task_finished``."""
    return run_reason == _FIRING_RUN_REASON and status in FINISHED


async def _organization(conn: asyncpg.Connection, org_id: uuid.UUID) -> OrganizationInfo:
    org = await tenancy_repo.get_organization(conn, org_id)
    return OrganizationInfo(id=org_id, name=org.name if org is not None else "")


async def task_finished(conn: asyncpg.Connection, process: ExecutionProcess) -> int:
    """Write the deliveries of ``task_finished`` for the ended process; how many. A failure
    here is logged and writes nothing: it never fails the node's ops."""
    if not ends_a_run(process.run_reason, process.status):
        return 0
    try:
        async with conn.transaction():
            return await _task_finished(conn, process)
    except (asyncpg.PostgresError, LookupError, ValueError) as exc:
        log.warning("webhook.event_failed", event_name="task_finished", error=str(exc))
        return 0


async def _task_finished(conn: asyncpg.Connection, process: ExecutionProcess) -> int:
    attempt = await executions.find_attempt(conn, process.attempt_id)
    task = None if attempt is None else await shared_tasks.find_by_id(conn, attempt.shared_task_id)
    if attempt is None or task is None:
        return 0
    hooks = await webhooks_repo.find_applicable(conn, task.organization_id, "task_finished")
    if not hooks:
        return 0
    node = await nodes.get(conn, process.node_id)
    project = (
        None
        if task.swarm_project_id is None
        else await swarm_projects.find_by_id(conn, task.swarm_project_id)
    )
    assignment = (
        None
        if attempt.assignment_id is None
        else await assignments.find_by_id(conn, attempt.assignment_id)
    )
    organization = await _organization(conn, task.organization_id)
    for hook in hooks:
        delivery_id = uuid.uuid4()
        body = TaskFinishedBody(
            event="task_finished",
            delivery_id=delivery_id,
            occurred_at=process.completed_at or dt.datetime.now(dt.UTC),
            status=process.status,
            organization=organization,
            node=NodeInfo(id=node.id, name=node.name, machine_id=node.machine_id),
            project=None if project is None else ProjectInfo(id=project.id, name=project.name),
            task=TaskInfo(id=task.id, title=task.title, status=str(task.status)),
            attempt=AttemptInfo(
                id=attempt.id,
                executor=attempt.executor,
                branch=attempt.branch,
                target_branch=attempt.target_branch,
            ),
            process=ProcessInfo(
                id=process.id,
                status=process.status,
                exit_code=process.exit_code,
                started_at=process.started_at,
                completed_at=process.completed_at,
            ),
            assignment=None
            if assignment is None
            else AssignmentInfo(id=assignment.id, fencing_token=assignment.fencing_token),
        )
        await webhooks_repo.create_delivery(
            conn,
            delivery_id,
            webhook_id=hook.id,
            event="task_finished",
            body=encode_body(body, hook.payload_template),
        )
    log.info("webhook.event", event_name="task_finished", deliveries=len(hooks))
    return len(hooks)


async def node_offline(conn: asyncpg.Connection, node_id: uuid.UUID, *, grace_s: float) -> int:
    """Write the deliveries of ``node_offline`` for a node just marked offline, due after the
    grace; how many. A failure here is logged and writes nothing."""
    try:
        async with conn.transaction():
            return await _node_offline(conn, node_id, grace_s)
    except (asyncpg.PostgresError, LookupError, ValueError) as exc:
        log.warning("webhook.event_failed", event_name="node_offline", error=str(exc))
        return 0


async def _node_offline(conn: asyncpg.Connection, node_id: uuid.UUID, grace_s: float) -> int:
    node = await nodes.find_by_id(conn, node_id)
    if node is None:
        return 0
    hooks = await webhooks_repo.find_applicable(conn, node.organization_id, "node_offline")
    if not hooks:
        return 0
    running: list[RunningTask] = []
    for held in (await assignments.list_active_by_node(conn, node_id))[:_MAX_RUNNING_LISTED]:
        task = await shared_tasks.find_by_id(conn, held.task_id)
        running.append(
            RunningTask(
                task_id=held.task_id,
                title=task.title if task is not None else "",
                assignment_id=held.id,
                fencing_token=held.fencing_token,
                lease_expires_at=held.lease_expires_at,
            )
        )
    organization = await _organization(conn, node.organization_id)
    for hook in hooks:
        delivery_id = uuid.uuid4()
        body = NodeOfflineBody(
            event="node_offline",
            delivery_id=delivery_id,
            occurred_at=node.disconnected_at or dt.datetime.now(dt.UTC),
            organization=organization,
            node=OfflineNode(
                id=node.id,
                name=node.name,
                machine_id=node.machine_id,
                last_heartbeat_at=node.last_heartbeat_at,
                disconnected_at=node.disconnected_at,
            ),
            running=running,
        )
        await webhooks_repo.create_delivery(
            conn,
            delivery_id,
            webhook_id=hook.id,
            event="node_offline",
            body=encode_body(body, hook.payload_template),
            due_in=dt.timedelta(seconds=grace_s),
            node_id=node.id,
        )
    log.info("webhook.event", event_name="node_offline", deliveries=len(hooks))
    return len(hooks)
