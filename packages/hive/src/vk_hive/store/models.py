"""Values the repositories return: msgspec Structs, never asyncpg Records."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, TypeVar

import msgspec

from vk_shared.status import NodeStatus, TaskStatus

T = TypeVar("T", bound=msgspec.Struct)


def from_row(cls: type[T], row: Any) -> T:
    """Build ``cls`` from a Record (columns the Struct does not name are ignored)."""
    return msgspec.convert(dict(row.items()), cls, from_attributes=False)


def from_rows(cls: type[T], rows: Any) -> list[T]:
    return [from_row(cls, r) for r in rows]


class Node(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    machine_id: str
    status: NodeStatus
    capabilities: dict[str, Any]
    public_url: str | None
    last_heartbeat_at: dt.datetime | None
    connected_at: dt.datetime | None
    disconnected_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    session_id: uuid.UUID | None = None
    """The node's current control-channel session (on whichever hive process); None offline."""


class NodeRegistration(msgspec.Struct, kw_only=True):
    """What a node says about itself when it connects."""

    name: str
    machine_id: str
    capabilities: dict[str, Any] = {}
    public_url: str | None = None


class NodeStatusEntry(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    status: NodeStatus
    last_heartbeat_at: dt.datetime | None


class NodeApiKey(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    key_hash: str
    key_prefix: str
    created_by: uuid.UUID | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    created_at: dt.datetime
    node_id: uuid.UUID | None
    takeover_count: int
    takeover_window_start: dt.datetime | None
    blocked_at: dt.datetime | None
    blocked_reason: str | None


class SwarmProject(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    metadata: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class SwarmProjectWithCounts(SwarmProject, kw_only=True):
    node_count: int
    task_counts: dict[str, int]


class ProjectNodeLink(msgspec.Struct, kw_only=True):
    """A node's local project linked to a swarm project, with display names."""

    id: uuid.UUID
    swarm_project_id: uuid.UUID
    node_id: uuid.UUID
    local_project_id: uuid.UUID
    git_repo_path: str
    os_type: str | None
    linked_at: dt.datetime
    is_owner: bool
    node_name: str
    project_name: str


class DispatchTarget(msgspec.Struct, kw_only=True):
    link_id: uuid.UUID
    node_id: uuid.UUID
    local_project_id: uuid.UUID
    git_repo_path: str
    default_branch: str
    linked_at: dt.datetime
    active_assignments: int = 0
    """Assignments the node holds now (any project); dispatch prefers the least loaded node."""


class NodeLocalProject(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    node_id: uuid.UUID
    local_project_id: uuid.UUID
    name: str
    git_repo_path: str
    default_branch: str
    swarm_project_id: uuid.UUID | None
    last_seen_at: dt.datetime
    created_at: dt.datetime
    swarm_project_name: str | None = None


class LocalProjectInfo(msgspec.Struct, kw_only=True):
    """One entry of a node's project inventory (``projects_sync``)."""

    local_project_id: uuid.UUID
    name: str
    git_repo_path: str
    default_branch: str = "main"


class UserData(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    first_name: str | None
    last_name: str | None
    username: str | None


class SharedTask(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID | None
    swarm_project_id: uuid.UUID | None
    creator_user_id: uuid.UUID | None
    assignee_user_id: uuid.UUID | None
    deleted_by_user_id: uuid.UUID | None
    title: str
    description: str | None
    status: TaskStatus
    executor: str
    version: int
    deleted_at: dt.datetime | None
    shared_at: dt.datetime | None
    archived_at: dt.datetime | None
    executing_node_id: uuid.UUID | None
    owner_node_id: uuid.UUID | None
    owner_name: str | None
    source_node_id: uuid.UUID | None
    source_task_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SharedTaskWithUser(msgspec.Struct, kw_only=True):
    task: SharedTask
    user: UserData | None


class SharedTaskWithOwner(msgspec.Struct, kw_only=True):
    task: SharedTask
    owner_public_url: str | None


class SourceTaskVersion(msgspec.Struct, kw_only=True):
    shared_task_id: uuid.UUID
    source_task_id: uuid.UUID
    version: int


class BulkSnapshot(msgspec.Struct, kw_only=True):
    """A consistent view of one project's tasks for a node that must resync."""

    tasks: list[SharedTaskWithUser]
    deleted_task_ids: list[uuid.UUID]
    latest_seq: int


class ActivityEvent(msgspec.Struct, kw_only=True):
    seq: int
    event_id: uuid.UUID
    project_id: uuid.UUID
    assignee_user_id: uuid.UUID | None
    event_type: str
    payload: dict[str, Any]
    created_at: dt.datetime
    swarm_project_id: uuid.UUID | None


class Assignment(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    task_id: uuid.UUID
    node_id: uuid.UUID
    node_project_id: uuid.UUID
    local_task_id: uuid.UUID | None
    local_attempt_id: uuid.UUID | None
    execution_status: str
    assigned_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    created_at: dt.datetime
    lease_expires_at: dt.datetime | None
    fencing_token: int


class ActiveRun(msgspec.Struct, kw_only=True):
    """An active assignment with the title of its task (what a node runs now)."""

    assignment: Assignment
    task_title: str
    swarm_project_id: uuid.UUID | None


class ReclaimedLease(msgspec.Struct, kw_only=True):
    assignment_id: uuid.UUID
    task_id: uuid.UUID
    node_id: uuid.UUID
    fencing_token: int


class DispatchDetails(msgspec.Struct, kw_only=True):
    """An active assignment with what its node needs to start it (``task_assign``)."""

    assignment_id: uuid.UUID
    task_id: uuid.UUID
    node_id: uuid.UUID
    link_id: uuid.UUID
    project_id: uuid.UUID
    local_project_id: uuid.UUID
    fencing_token: int
    title: str
    description: str | None
    executor: str
    base_branch: str
    lease_ttl_ms: int
    node_session_id: uuid.UUID | None = None
    """The node's current session (on whichever hive process); None while it is offline."""


class LinkSyncInfo(msgspec.Struct, kw_only=True):
    """A link as nodes see it (``auth_result.linked_projects``, ``project_sync``)."""

    link_id: uuid.UUID
    project_id: uuid.UUID
    local_project_id: uuid.UUID
    project_name: str
    git_repo_path: str
    default_branch: str
    source_node_id: uuid.UUID
    source_node_name: str
    source_node_public_url: str | None
    is_owned: bool


class OpLogEntry(msgspec.Struct, kw_only=True):
    node_id: uuid.UUID
    idempotency_key: str
    seq: int
    op_type: str
    entity_id: uuid.UUID
    applied_at: dt.datetime


class TaskAttempt(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    assignment_id: uuid.UUID | None
    shared_task_id: uuid.UUID
    node_id: uuid.UUID
    executor: str
    executor_variant: str | None
    branch: str
    target_branch: str
    container_ref: str | None
    worktree_deleted: bool
    setup_completed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    sync_state: str
    sync_requested_at: dt.datetime | None
    last_full_sync_at: dt.datetime | None
    backfill_request_id: uuid.UUID | None


class ExecutionProcess(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    attempt_id: uuid.UUID
    node_id: uuid.UUID
    run_reason: str
    executor_action: Any
    before_head_commit: str | None
    after_head_commit: str | None
    status: str
    exit_code: int | None
    dropped: bool
    pid: int | None
    started_at: dt.datetime
    completed_at: dt.datetime | None
    created_at: dt.datetime


class OutputLog(msgspec.Struct, kw_only=True):
    id: int
    assignment_id: uuid.UUID | None
    output_type: str
    content: str
    timestamp: dt.datetime
    created_at: dt.datetime
    execution_process_id: uuid.UUID | None
    local_log_id: int | None


class NewOutputLog(msgspec.Struct, kw_only=True):
    """One log line to insert (``local_log_id`` makes re-sends idempotent)."""

    output_type: str
    content: str
    local_log_id: int | None = None
    timestamp: dt.datetime | None = None


class ProgressEvent(msgspec.Struct, kw_only=True):
    id: int
    assignment_id: uuid.UUID | None
    event_type: str
    message: str | None
    metadata: Any
    timestamp: dt.datetime
    created_at: dt.datetime
    shared_task_id: uuid.UUID | None = None
    node_id: uuid.UUID | None = None
    attempt_id: uuid.UUID | None = None
    execution_process_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None


class TaskProgressEvent(msgspec.Struct, kw_only=True):
    """A progress event of a task with the name of the node that reported it."""

    id: int
    node_id: uuid.UUID | None
    node_name: str | None
    assignment_id: uuid.UUID | None
    attempt_id: uuid.UUID | None
    execution_process_id: uuid.UUID | None
    event_type: str
    message: str | None
    timestamp: dt.datetime


class Label(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID | None
    origin_node_id: uuid.UUID | None
    name: str
    icon: str
    color: str
    version: int
    deleted_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SwarmTemplate(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    content: str
    description: str | None
    metadata: dict[str, Any]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None


class OrganizationWebhook(msgspec.Struct, kw_only=True):
    """An organization's webhook (``/v1/organizations/{id}/webhooks``); ``secret`` and the
    header values never leave the hive."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    url: str
    events: list[str]
    headers: dict[str, str]
    secret: str | None
    payload_template: str | None
    active: bool
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookAttempt(msgspec.Struct, kw_only=True):
    """One try of a delivery: when, the HTTP status (None: no answer), how long, why it failed."""

    attempt: int
    status_code: int | None
    duration_ms: int
    error: str | None
    attempted_at: dt.datetime


class WebhookDelivery(msgspec.Struct, kw_only=True):
    """One event's JSON body for one webhook, sent until ``delivered`` or ``failed`` (or
    ``superseded``: a ``node_offline`` whose node came back before it was due)."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    event: str
    body: str
    node_id: uuid.UUID | None
    status: str
    attempt_count: int
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    attempts: list[WebhookAttempt] = []
