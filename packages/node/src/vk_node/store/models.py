"""Rows of the node store as msgspec Structs (what repositories return).

UUID columns become :class:`uuid.UUID`, timestamps aware UTC :class:`datetime.datetime`, 0/1
columns :class:`bool`, JSON columns stay text unless a field says otherwise.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from vk_shared.status import NodeTaskStatus

__all__ = [
    "ActivityCursor",
    "ActivityFeedItem",
    "CachedNode",
    "Draft",
    "ExecutionContext",
    "ExecutionProcess",
    "ExecutorSession",
    "Image",
    "Label",
    "LogEntry",
    "LogPage",
    "Merge",
    "Project",
    "ProjectWithStats",
    "QueuedMessage",
    "RawLogChunk",
    "Task",
    "TaskAttempt",
    "TaskImage",
    "TaskRelationships",
    "TaskVariable",
    "TaskWithAttemptStatus",
    "Template",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryAttempt",
    "WorkstreamState",
]


class _Row(msgspec.Struct, frozen=True, kw_only=True):
    """Base of store rows."""


class Project(_Row, frozen=True, kw_only=True):
    id: UUID
    name: str
    git_repo_path: str
    setup_script: str | None
    dev_script: str | None
    cleanup_script: str | None
    copy_files: str | None
    parallel_setup_script: bool
    remote_project_id: UUID | None
    is_remote: bool
    source_node_id: UUID | None
    source_node_name: str | None
    source_node_public_url: str | None
    source_node_status: str | None
    remote_last_synced_at: datetime | None
    github_enabled: bool
    github_owner: str | None
    github_repo: str | None
    github_open_issues: int
    github_open_prs: int
    github_last_synced_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ProjectWithStats(Project, frozen=True, kw_only=True):
    last_attempt_at: datetime | None
    todo_count: int
    inprogress_count: int
    inreview_count: int
    done_count: int


class Task(_Row, frozen=True, kw_only=True):
    id: UUID
    project_id: UUID
    title: str
    description: str | None
    status: NodeTaskStatus
    parent_task_id: UUID | None
    shared_task_id: UUID | None
    remote_assignee_user_id: UUID | None
    remote_assignee_name: str | None
    remote_assignee_username: str | None
    remote_version: int
    remote_last_synced_at: datetime | None
    remote_stream_node_id: UUID | None
    remote_stream_url: str | None
    archived_at: datetime | None
    activity_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TaskWithAttemptStatus(Task, frozen=True, kw_only=True):
    has_in_progress_attempt: bool
    last_attempt_failed: bool
    executor: str | None
    latest_agent_started_at: datetime | None
    latest_agent_completed_at: datetime | None


class TaskAttempt(_Row, frozen=True, kw_only=True):
    id: UUID
    task_id: UUID
    executor: str | None
    branch: str
    target_branch: str
    container_ref: str | None
    worktree_deleted: bool
    setup_completed_at: datetime | None
    hive_assignment_id: UUID | None
    origin_node_id: UUID | None
    created_at: datetime
    updated_at: datetime


class TaskRelationships(_Row, frozen=True, kw_only=True):
    parent_task: Task | None
    current_attempt: TaskAttempt
    children: list[Task]


class ExecutionProcess(_Row, frozen=True, kw_only=True):
    id: UUID
    task_attempt_id: UUID
    run_reason: str
    executor_action: str
    executor_action_type: str | None
    status: str
    exit_code: int | None
    dropped: bool
    before_head_commit: str | None
    after_head_commit: str | None
    pid: int | None
    server_instance_id: str | None
    completion_reason: str | None
    completion_message: str | None
    resume_state: str | None
    fence_attempt_count: int
    started_at: datetime
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    pid_start_ticks: int | None = None
    """Start time of ``pid`` (``/proc/<pid>/stat`` field 22); with the pid it names the process."""


class ExecutionContext(_Row, frozen=True, kw_only=True):
    execution_process: ExecutionProcess
    task_attempt: TaskAttempt
    task: Task


class LogEntry(_Row, frozen=True, kw_only=True):
    id: int
    execution_id: UUID
    output_type: str
    content: str
    timestamp: datetime


class LogPage(_Row, frozen=True, kw_only=True):
    entries: list[LogEntry]
    next_cursor: int | None
    has_more: bool
    total_count: int


class RawLogChunk(_Row, frozen=True, kw_only=True):
    execution_id: UUID
    logs: str
    byte_size: int
    inserted_at: datetime


class Merge(_Row, frozen=True, kw_only=True):
    id: UUID
    task_attempt_id: UUID
    merge_type: str
    merge_commit: str | None
    pr_number: int | None
    pr_url: str | None
    pr_status: str | None
    pr_merged_at: datetime | None
    pr_merge_commit_sha: str | None
    target_branch_name: str
    created_at: datetime


class ExecutorSession(_Row, frozen=True, kw_only=True):
    id: UUID
    task_attempt_id: UUID
    execution_process_id: UUID
    session_id: str | None
    prompt: str | None
    summary: str | None
    created_at: datetime
    updated_at: datetime


class Label(_Row, frozen=True, kw_only=True):
    id: UUID
    project_id: UUID | None
    name: str
    icon: str
    color: str
    shared_label_id: UUID | None
    version: int
    synced_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Template(_Row, frozen=True, kw_only=True):
    id: UUID
    template_name: str
    content: str
    created_at: datetime
    updated_at: datetime


class TaskVariable(_Row, frozen=True, kw_only=True):
    id: UUID
    task_id: UUID
    name: str
    value: str
    created_at: datetime
    updated_at: datetime


class Image(_Row, frozen=True, kw_only=True):
    id: UUID
    file_path: str
    original_name: str
    mime_type: str | None
    size_bytes: int | None
    hash: str
    created_at: datetime
    updated_at: datetime


class TaskImage(_Row, frozen=True, kw_only=True):
    id: UUID
    task_id: UUID
    image_id: UUID
    created_at: datetime


class Draft(_Row, frozen=True, kw_only=True):
    id: UUID
    task_attempt_id: UUID
    draft_type: str
    retry_process_id: UUID | None
    prompt: str
    queued: bool
    sending: bool
    version: int
    variant: str | None
    image_ids: list[UUID] | None
    created_at: datetime
    updated_at: datetime


class QueuedMessage(_Row, frozen=True, kw_only=True):
    id: UUID
    task_attempt_id: UUID
    content: str
    variant: str | None
    position: int
    created_at: datetime


class ActivityCursor(_Row, frozen=True, kw_only=True):
    remote_project_id: UUID
    last_seq: int
    updated_at: datetime


class ActivityFeedItem(_Row, frozen=True, kw_only=True):
    task_id: UUID
    project_id: UUID
    title: str
    status: NodeTaskStatus
    activity_at: datetime | None
    updated_at: datetime
    dismissed: bool


class CachedNode(_Row, frozen=True, kw_only=True):
    id: UUID
    organization_id: UUID
    name: str
    machine_id: str
    status: str
    capabilities: str
    public_url: str | None
    last_heartbeat_at: datetime | None
    connected_at: datetime | None
    disconnected_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_synced_at: datetime


class Webhook(_Row, frozen=True, kw_only=True):
    id: UUID
    project_id: UUID | None
    name: str
    url: str
    events: list[str]
    headers: dict[str, str]
    secret: str | None
    payload_template: str | None
    override_global: bool
    active: bool
    created_at: datetime
    updated_at: datetime


class WebhookDeliveryAttempt(_Row, frozen=True, kw_only=True):
    """One try of a delivery: the HTTP status (``None`` when no answer came) or the error."""

    attempt: int
    status_code: int | None
    duration_ms: int
    error: str | None
    attempted_at: datetime


class WebhookDelivery(_Row, frozen=True, kw_only=True):
    """One event's JSON body for one webhook, sent until ``delivered`` or ``failed``."""

    id: UUID
    webhook_id: UUID
    event: str
    body: str
    status: str
    """``pending`` (``next_attempt_at`` says when), ``delivered`` or ``failed`` (tries spent)."""
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attempts: list[WebhookDeliveryAttempt] = []


class WorkstreamState(_Row, frozen=True, kw_only=True):
    execution_process_id: UUID
    task_attempt_id: UUID
    container_ref: str | None
    branch: str
    target_branch: str
    run_reason: str
    status: str
    resume_state: str | None
    pid: int | None
    before_head_commit: str | None
    after_head_commit: str | None
    session_id: str | None
    created_at: datetime
