"""Outbox operations: what a node streams to the hive in ``op_batch`` (DESIGN.md §3).

Each op's ``payload`` is one member of the :data:`OpPayload` tagged union; its tag field is
``op_type`` (``task.upsert``, ``attempt.upsert``, ``execution.upsert``, ``logs.append``,
``assignment.status``, and — only to a hive that announced them in ``auth_result.features`` —
``progress.append`` and ``label.upsert``). The op type therefore lives in exactly one place: the
payload, which the node can store verbatim in its outbox row. :attr:`OutboxOp.op_type` reads it
back.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, TypeAlias
from uuid import UUID

from msgspec import Meta

from vk_shared.protocol import MAX_LOG_CONTENT_BYTES, MAX_LOG_ENTRIES_PER_OP
from vk_shared.status import ExecutionStatus, NodeTaskStatus
from vk_shared.wire.common import (
    INT32_MAX,
    INT64_MAX,
    AwareDatetime,
    BranchName,
    Count,
    Description,
    ExecutorName,
    FencingToken,
    Identifier,
    JsonObject,
    Name,
    Text,
    Title,
    WireStruct,
)

__all__ = [
    "AssignmentStatus",
    "AttemptUpsert",
    "ExecutionUpsert",
    "LabelUpsert",
    "LogEntry",
    "LogsAppend",
    "OpPayload",
    "OpType",
    "OutboxOp",
    "OutputType",
    "ProcessStatus",
    "ProgressAppend",
    "ProgressEventType",
    "TaskUpsert",
]


class OpType(StrEnum):
    """Tags of the op payloads (never reused)."""

    TASK_UPSERT = "task.upsert"
    ATTEMPT_UPSERT = "attempt.upsert"
    EXECUTION_UPSERT = "execution.upsert"
    LOGS_APPEND = "logs.append"
    ASSIGNMENT_STATUS = "assignment.status"
    PROGRESS_APPEND = "progress.append"
    LABEL_UPSERT = "label.upsert"


class ProgressEventType(StrEnum):
    """Milestones of a run (the wire ``task_progress`` values, plus ``first_output``,
    ``agent_failed`` and ``merged``; never reused)."""

    AGENT_STARTED = "agent_started"
    AGENT_THINKING = "agent_thinking"
    CODE_CHANGES = "code_changes"
    BRANCH_CREATED = "branch_created"
    COMMITTED = "committed"
    PUSHED = "pushed"
    PULL_REQUEST_CREATED = "pull_request_created"
    AGENT_FINISHED = "agent_finished"
    CUSTOM = "custom"
    FIRST_OUTPUT = "first_output"
    AGENT_FAILED = "agent_failed"
    MERGED = "merged"


class OutputType(StrEnum):
    """Stream a log entry came from."""

    STDOUT = "stdout"
    STDERR = "stderr"
    SYSTEM = "system"


class ProcessStatus(StrEnum):
    """Status of one execution process on a node."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    KILLED = "killed"


CommitSha = Annotated[str, Meta(pattern="^[0-9a-f]{7,64}$")]


class _Payload(WireStruct, frozen=True, tag_field="op_type"):
    """Base of op payloads; the tag is the op type."""


class TaskUpsert(_Payload, tag=OpType.TASK_UPSERT.value, frozen=True, kw_only=True):
    """The whole local task after a create or update (node spelling of the status)."""

    id: Annotated[UUID, Meta(description="Local task id (also the op's `entity_id`).")]
    project_id: Annotated[UUID, Meta(description="Local project id.")]
    shared_task_id: Annotated[
        UUID | None, Meta(description="Hive task id, once the task is known to the hive.")
    ] = None
    title: Annotated[Title, Meta(description="Task title.")]
    description: Annotated[Description | None, Meta(description="Task description.")] = None
    status: Annotated[NodeTaskStatus, Meta(description="Local status, node spelling.")]
    parent_task_id: Annotated[UUID | None, Meta(description="Local parent task id.")] = None
    archived_at: Annotated[AwareDatetime | None, Meta(description="When archived.")] = None
    created_at: Annotated[AwareDatetime, Meta(description="When the task was created.")]
    updated_at: Annotated[AwareDatetime, Meta(description="When the task last changed.")]
    remote_version: Annotated[
        Count,
        Meta(description="Hive task version this edit is based on (0 = never seen by the hive)."),
    ] = 0


class AttemptUpsert(_Payload, tag=OpType.ATTEMPT_UPSERT.value, frozen=True, kw_only=True):
    """A task attempt (one git worktree and branch) after a create or update."""

    id: Annotated[UUID, Meta(description="Local attempt id (also the op's `entity_id`).")]
    task_id: Annotated[UUID, Meta(description="Local task id.")]
    shared_task_id: Annotated[UUID | None, Meta(description="Hive task id, if known.")] = None
    assignment_id: Annotated[
        UUID | None, Meta(description="Hive assignment this attempt runs for, if dispatched.")
    ] = None
    executor: Annotated[ExecutorName, Meta(description="Executor profile.")]
    executor_variant: Annotated[Name | None, Meta(description="Profile variant.")] = None
    branch: Annotated[BranchName, Meta(description="Attempt branch.")]
    target_branch: Annotated[BranchName, Meta(description="Branch the attempt merges into.")]
    worktree_deleted: Annotated[bool, Meta(description="Worktree has been removed.")] = False
    setup_completed_at: Annotated[
        AwareDatetime | None, Meta(description="When the setup script finished.")
    ] = None
    created_at: Annotated[AwareDatetime, Meta(description="When the attempt was created.")]
    updated_at: Annotated[AwareDatetime, Meta(description="When the attempt last changed.")]


class ExecutionUpsert(_Payload, tag=OpType.EXECUTION_UPSERT.value, frozen=True, kw_only=True):
    """One execution process of an attempt (setup script, coding agent, cleanup...)."""

    id: Annotated[UUID, Meta(description="Execution process id (also the op's `entity_id`).")]
    attempt_id: Annotated[UUID, Meta(description="Local attempt id.")]
    run_reason: Annotated[
        Name, Meta(description="Why it ran: `setupscript`, `codingagent`, `cleanupscript`...")
    ]
    executor_action: Annotated[
        JsonObject, Meta(description="The executor action as a raw JSON object.")
    ] = {}
    before_head_commit: Annotated[
        CommitSha | None, Meta(description="HEAD before the process ran.")
    ] = None
    after_head_commit: Annotated[
        CommitSha | None, Meta(description="HEAD after the process ended.")
    ] = None
    status: Annotated[ProcessStatus, Meta(description="Process status.")]
    exit_code: Annotated[
        Annotated[int, Meta(ge=-(2**31), le=INT32_MAX)] | None,
        Meta(description="Exit code once ended."),
    ] = None
    dropped: Annotated[bool, Meta(description="Its changes were discarded.")] = False
    pid: Annotated[
        Annotated[int, Meta(ge=1, le=INT32_MAX)] | None,
        Meta(description="OS process id while running."),
    ] = None
    started_at: Annotated[AwareDatetime, Meta(description="When the process started.")]
    completed_at: Annotated[AwareDatetime | None, Meta(description="When it ended.")] = None


class LogEntry(WireStruct, frozen=True, kw_only=True):
    """One captured log line/chunk."""

    id: Annotated[Count, Meta(description="Local `log_entries` id (ordering, dedup key).")]
    output_type: Annotated[OutputType, Meta(description="Stream it came from.")]
    content: Annotated[str, Meta(max_length=MAX_LOG_CONTENT_BYTES, description="Captured text.")]
    timestamp: Annotated[AwareDatetime, Meta(description="When it was captured.")]


class LogsAppend(_Payload, tag=OpType.LOGS_APPEND.value, frozen=True, kw_only=True):
    """A contiguous range of one execution's log entries (content read at send time)."""

    execution_id: Annotated[UUID, Meta(description="Execution process id (= `entity_id`).")]
    first_log_id: Annotated[Count, Meta(description="First local log id of the range.")]
    last_log_id: Annotated[Count, Meta(description="Last local log id of the range (inclusive).")]
    entries: Annotated[
        list[LogEntry],
        Meta(max_length=MAX_LOG_ENTRIES_PER_OP, description="Entries of the range, id order."),
    ] = []

    def __post_init__(self) -> None:
        if self.first_log_id > self.last_log_id:
            raise ValueError("first_log_id must not exceed last_log_id")


class AssignmentStatus(_Payload, tag=OpType.ASSIGNMENT_STATUS.value, frozen=True, kw_only=True):
    """Execution status of a hive assignment as the node sees it."""

    assignment_id: Annotated[UUID, Meta(description="Hive assignment id (= `entity_id`).")]
    status: Annotated[ExecutionStatus, Meta(description="Execution status.")]
    local_task_id: Annotated[UUID | None, Meta(description="Local task created for it.")] = None
    local_attempt_id: Annotated[UUID | None, Meta(description="Local attempt running it.")] = None
    message: Annotated[Text | None, Meta(description="Human-readable detail.")] = None


class ProgressAppend(_Payload, tag=OpType.PROGRESS_APPEND.value, frozen=True, kw_only=True):
    """One milestone of a run of an attempt. The hive takes the task and the assignment from
    the attempt it has, never from the op."""

    id: Annotated[UUID, Meta(description="Progress event id (also the op's `entity_id`).")]
    attempt_id: Annotated[UUID, Meta(description="Local attempt id.")]
    execution_id: Annotated[
        UUID | None, Meta(description="Execution process the milestone is about, if any.")
    ] = None
    event_type: Annotated[ProgressEventType, Meta(description="Which milestone.")]
    message: Annotated[Text | None, Meta(description="Human-readable detail.")] = None
    timestamp: Annotated[AwareDatetime, Meta(description="When it happened.")]


class LabelUpsert(_Payload, tag=OpType.LABEL_UPSERT.value, frozen=True, kw_only=True):
    """A label of a linked project, created or edited on the node. The hive keeps the node's
    label id as the swarm label's id."""

    id: Annotated[UUID, Meta(description="Label id (also the op's `entity_id`).")]
    project_id: Annotated[UUID, Meta(description="Local project id (linked).")]
    name: Annotated[Name, Meta(description="Label name.")]
    icon: Annotated[Name, Meta(description="Icon name.")] = "tag"
    color: Annotated[Name, Meta(description="Colour, e.g. `#ff8800`.")] = "#6b7280"


OpPayload: TypeAlias = (
    TaskUpsert
    | AttemptUpsert
    | ExecutionUpsert
    | LogsAppend
    | AssignmentStatus
    | ProgressAppend
    | LabelUpsert
)
"""Tagged union (tag field ``op_type``) of every op payload."""


class OutboxOp(WireStruct, frozen=True, kw_only=True):
    """One durable outbox row of a node, as sent in ``op_batch``."""

    seq: Annotated[
        int, Meta(ge=1, le=INT64_MAX, description="Node outbox sequence number (from 1).")
    ]
    entity_id: Annotated[UUID, Meta(description="Id of the entity the op writes.")]
    idempotency_key: Annotated[
        Identifier, Meta(description="Unique per op; the hive dedups on (node, key).")
    ]
    fencing_token: Annotated[
        FencingToken | None,
        Meta(description="Lease token of the assignment, for hive-assigned work."),
    ] = None
    payload: Annotated[OpPayload, Meta(description="The write; its `op_type` tags the op.")]

    @property
    def op_type(self) -> OpType:
        """The op type, read from the payload's tag."""
        return OpType(str(type(self.payload).__struct_config__.tag))
