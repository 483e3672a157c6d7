"""What the board's pages show, read through the same repositories as the REST API.

Each function reads one page's data for a signed-in user in a small, fixed number of queries
(never one per task or per node), so a project of a thousand tasks renders in one round of
reads. Access follows the REST API's rule with one difference: an organization, project or
task the user may not see is :class:`Hidden` (a 404 page), whether it exists or not.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import msgspec

from vk_hive.store.models import (
    ActiveRun,
    ActivityEvent,
    Assignment,
    ExecutionProcess,
    Label,
    Node,
    OutputLog,
    SharedTask,
    SwarmProject,
    SwarmProjectWithCounts,
    TaskAttempt,
    TaskProgressEvent,
)
from vk_hive.store.repositories import (
    activity,
    assignments,
    executions,
    labels,
    nodes,
    project_links,
    shared_tasks,
    swarm_projects,
)
from vk_hive.store.repositories import progress as progress_repo
from vk_hive.tenancy import repository as tenancy_repo
from vk_hive.tenancy.repository import OrganizationWithRole
from vk_shared.status import TaskStatus, is_legal

__all__ = [
    "COLUMNS",
    "BoardView",
    "Hidden",
    "HomeView",
    "NodesView",
    "TaskView",
    "board_view",
    "home_view",
    "legal_moves",
    "nodes_view",
    "task_view",
]

COLUMNS: tuple[tuple[TaskStatus, str], ...] = (
    (TaskStatus.TODO, "To do"),
    (TaskStatus.IN_PROGRESS, "In progress"),
    (TaskStatus.IN_REVIEW, "In review"),
    (TaskStatus.DONE, "Done"),
    (TaskStatus.CANCELLED, "Cancelled"),
)
"""The kanban's columns, in order, with their headings."""

LOG_LINES = 500
"""Log lines a task page renders; the rest arrive over ``/v1/ws`` (``follow_logs``)."""

PROGRESS_EVENTS = 200
"""Progress events a task page lists (``GET /v1/tasks/{id}/progress`` pages through all)."""


class Hidden(Exception):
    """The organization, project or task is not one the user may see (or does not exist)."""


def legal_moves(status: TaskStatus) -> list[TaskStatus]:
    """The statuses an operator may move a task to from ``status`` (the status machine's legal
    transitions, in column order)."""
    return [to for to, _ in COLUMNS if is_legal(status, to)]


class NodeSummary(msgspec.Struct, kw_only=True):
    """A node as the pages show it, with what it runs now."""

    node: Node
    executors: list[str]
    max_concurrent: int | None
    running: list[ActiveRun]


def _summaries(found: list[Node], runs: list[ActiveRun]) -> list[NodeSummary]:
    by_node: dict[uuid.UUID, list[ActiveRun]] = defaultdict(list)
    for run in runs:
        by_node[run.assignment.node_id].append(run)
    out = []
    for node in found:
        caps = node.capabilities or {}
        executors = caps.get("executors")
        limit = caps.get("max_concurrent")
        out.append(
            NodeSummary(
                node=node,
                executors=[str(e) for e in executors] if isinstance(executors, list) else [],
                max_concurrent=limit if isinstance(limit, int) else None,
                running=by_node.get(node.id, []),
            )
        )
    return out


def _pick(orgs: list[OrganizationWithRole], wanted: str | None) -> OrganizationWithRole:
    """The organization named by ``?org=`` (one of the user's), else the first."""
    if not orgs:
        raise Hidden("the user belongs to no organization")
    if not wanted:
        return orgs[0]
    for org in orgs:
        if str(org.id) == wanted.strip().lower():
            return org
    raise Hidden("not one of the user's organizations")


def _member_org(orgs: list[OrganizationWithRole], org_id: uuid.UUID | None) -> OrganizationWithRole:
    for org in orgs:
        if org.id == org_id:
            return org
    raise Hidden("not one of the user's organizations")


class HomeView(msgspec.Struct, kw_only=True):
    organizations: list[OrganizationWithRole]
    organization: OrganizationWithRole
    projects: list[SwarmProjectWithCounts]
    nodes: list[NodeSummary]


async def _node_summaries(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[NodeSummary]:
    return _summaries(
        await nodes.list_by_organization(conn, org_id),
        await assignments.list_active_by_organization(conn, org_id),
    )


async def home_view(conn: asyncpg.Connection, user_id: uuid.UUID, org: str | None) -> HomeView:
    orgs = await tenancy_repo.list_user_organizations(conn, user_id)
    chosen = _pick(orgs, org)
    return HomeView(
        organizations=orgs,
        organization=chosen,
        projects=await swarm_projects.list_with_nodes_count(conn, chosen.id),
        nodes=await _node_summaries(conn, chosen.id),
    )


class Card(msgspec.Struct, kw_only=True):
    task: SharedTask
    labels: list[Label]
    node_name: str | None


class BoardView(msgspec.Struct, kw_only=True):
    organizations: list[OrganizationWithRole]
    organization: OrganizationWithRole
    project: SwarmProject
    columns: list[tuple[TaskStatus, str, list[Card]]]
    nodes: list[Node]
    linked_node_ids: list[uuid.UUID]
    labels: list[Label]
    executors: list[str]
    latest_seq: int


def _executors(found: list[Node]) -> list[str]:
    """The executors the organization's nodes say they can run, sorted."""
    names: set[str] = set()
    for node in found:
        listed = (node.capabilities or {}).get("executors")
        if isinstance(listed, list):
            names.update(str(e) for e in listed)
    return sorted(names)


async def board_view(
    conn: asyncpg.Connection, user_id: uuid.UUID, project_id: uuid.UUID
) -> BoardView:
    """The kanban of one project: eight queries whatever the number of tasks."""
    orgs = await tenancy_repo.list_user_organizations(conn, user_id)
    project = await swarm_projects.find_by_id(conn, project_id)
    if project is None:
        raise Hidden("no such project")
    org = _member_org(orgs, project.organization_id)
    latest_seq = await activity.last_seq(conn, project.id)
    tasks = [t.task for t in await shared_tasks.find_by_swarm_project_id(conn, project.id)]
    by_task = await labels.find_by_tasks(conn, [t.id for t in tasks])
    org_nodes = await nodes.list_by_organization(conn, org.id)
    names = {n.id: n.name for n in org_nodes}
    by_status: dict[TaskStatus, list[Card]] = defaultdict(list)
    for task in tasks:
        node = task.executing_node_id
        by_status[task.status].append(
            Card(
                task=task,
                labels=by_task.get(task.id, []),
                node_name=names.get(node) if node else None,
            )
        )
    links = await project_links.list_nodes(conn, project.id)
    return BoardView(
        organizations=orgs,
        organization=org,
        project=project,
        columns=[(status, title, by_status.get(status, [])) for status, title in COLUMNS],
        nodes=org_nodes,
        linked_node_ids=[link.node_id for link in links],
        labels=await labels.find_for_project(conn, org.id, project.id),
        executors=_executors(org_nodes),
        latest_seq=latest_seq,
    )


class Attempt(msgspec.Struct, kw_only=True):
    attempt: TaskAttempt
    processes: list[ExecutionProcess]


class StatusChange(msgspec.Struct, kw_only=True):
    at: dt.datetime
    event_type: str
    status: str
    previous: str | None
    title: str
    version: int | None


class TaskView(msgspec.Struct, kw_only=True):
    organizations: list[OrganizationWithRole]
    organization: OrganizationWithRole
    project: SwarmProject | None
    task: SharedTask
    labels: list[Label]
    project_labels: list[Label]
    moves: list[TaskStatus]
    history: list[StatusChange]
    assignments: list[Assignment]
    attempts: list[Attempt]
    nodes: list[Node]
    latest_seq: int
    follow: ExecutionProcess | None
    """The execution whose log the page follows: the running one, else the latest."""
    log: list[OutputLog]
    """The first lines of that execution's log (the page follows the rest live)."""
    progress: list[TaskProgressEvent] = []
    """The first milestones nodes reported for the task, oldest first."""

    @property
    def node_names(self) -> dict[uuid.UUID, str]:
        return {n.id: n.name for n in self.nodes}

    @property
    def active(self) -> Assignment | None:
        return next((a for a in self.assignments if a.completed_at is None), None)


def _history(events: list[ActivityEvent]) -> list[StatusChange]:
    """The task's events, each with the status it left the task in and the one before."""
    out: list[StatusChange] = []
    previous: str | None = None
    for event in events:
        task: dict[str, Any] = event.payload.get("task") or {}
        status = str(task.get("status", ""))
        version = task.get("version")
        out.append(
            StatusChange(
                at=event.created_at,
                event_type=event.event_type,
                status=status,
                previous=previous if previous != status else None,
                title=str(task.get("title", "")),
                version=version if isinstance(version, int) else None,
            )
        )
        previous = status
    return out


async def task_view(conn: asyncpg.Connection, user_id: uuid.UUID, task_id: uuid.UUID) -> TaskView:
    orgs = await tenancy_repo.list_user_organizations(conn, user_id)
    task = await shared_tasks.find_by_id(conn, task_id)
    if task is None:
        raise Hidden("no such task")
    org = _member_org(orgs, task.organization_id)
    project = (
        None
        if task.swarm_project_id is None
        else await swarm_projects.find_by_id(conn, task.swarm_project_id)
    )
    events: list[ActivityEvent] = []
    latest_seq = 0
    if task.project_id is not None:
        events = await activity.fetch_for_task(conn, task.project_id, task.id)
        latest_seq = await activity.last_seq(conn, task.project_id)
    attempts = await executions.find_attempts_by_shared_task_id(conn, task.id)
    processes = await executions.find_processes_by_attempt_ids(conn, [a.id for a in attempts])
    by_attempt: dict[uuid.UUID, list[ExecutionProcess]] = defaultdict(list)
    for process in processes:
        by_attempt[process.attempt_id].append(process)
    running = [p for p in processes if p.status == "running"]
    follow = running[-1] if running else (processes[-1] if processes else None)
    log = (
        []
        if follow is None
        else await executions.list_logs(conn, execution_process_id=follow.id, limit=LOG_LINES)
    )
    return TaskView(
        organizations=orgs,
        organization=org,
        project=project,
        task=task,
        labels=await labels.find_by_task(conn, task.id),
        project_labels=(
            await labels.find_for_project(conn, org.id, project.id)
            if project is not None
            else await labels.find_by_organization(conn, org.id)
        ),
        moves=legal_moves(task.status),
        history=_history(events),
        assignments=await assignments.list_by_task(conn, task.id),
        attempts=[Attempt(attempt=a, processes=by_attempt.get(a.id, [])) for a in attempts],
        nodes=await nodes.list_by_organization(conn, org.id),
        latest_seq=latest_seq,
        follow=follow,
        log=log,
        progress=await progress_repo.list_task_progress(
            conn, task.id, after=None, limit=PROGRESS_EVENTS
        ),
    )


class NodesView(msgspec.Struct, kw_only=True):
    organizations: list[OrganizationWithRole]
    organization: OrganizationWithRole
    nodes: list[NodeSummary]


async def nodes_view(conn: asyncpg.Connection, user_id: uuid.UUID, org: str | None) -> NodesView:
    orgs = await tenancy_repo.list_user_organizations(conn, user_id)
    chosen = _pick(orgs, org)
    return NodesView(
        organizations=orgs, organization=chosen, nodes=await _node_summaries(conn, chosen.id)
    )
