"""What the hive does with one node op, decided without I/O: :func:`plan`.

``plan(op, facts)`` reads only :class:`Facts` — what the batch has read from the database — and
returns one :data:`Decision`:

- a write (:class:`WriteTask`, :class:`WriteAttempt`, :class:`WriteProcess`,
  :class:`AppendLogs`, :class:`SetAssignmentStatus`): every check passed; a :class:`WriteTask`
  the node owns (``bulk``) may join the batch's one-statement insert or update;
- :class:`Reject`: the op is permanently invalid; its :class:`~.refusals.OpRefused` carries
  the ``op_rejected`` code (and a ``lease_revoked``, if any);
- :data:`PARK`: a parent is not on the hive yet and may still come;
- :class:`Need`: a fact the decision depends on has not been read. The batch reads it (with the
  locks the fact implies) and asks again, so the reads happen in the order of the checks.

The checks, in order (docs/sync-protocol.md "Parents, exactly", "Fencing and status authors"):

- ``task.upsert``: entity id = payload id; title + description ≤ ``MAX_TASK_TEXT_BYTES``; the task
  named by shared id (live, of the node's organization) or by the node's local id; the local
  project linked (PARK while the project is not even in the node's inventory); the fence for a
  task another node owns; the status transition (the owner: any legal one; others: node-authored
  ones); no NUL in the text.
- ``attempt.upsert``: entity id; the task (by shared id, else by local id); the fence; the
  named assignment belongs to the task.
- ``execution.upsert``: entity id; the attempt (the node's), its task; the fence.
- ``logs.append``: the execution (the node's), its attempt, its task, the fence — skipped when
  the batch already cleared this execution for the op's token (:class:`LogClearance`).
- ``assignment.status``: the assignment (locked), held by this node, its task, open, the token.
- ``progress.append``: entity id; the attempt (the node's), its task; the fence — a refusal
  revokes no lease (a milestone is a report, not a claim). The task and the assignment are the
  attempt's, never taken from the op.
- ``label.upsert``: entity id; the local project linked (PARK while not in the inventory); a
  label with the op's id, if any, of the node's organization, live, and of the same project.

A missing parent PARKs while no op about it was ever recorded, and is ``not_found`` after that.
The fence: a task the node owns needs no lease; else the task's active assignment (read ``FOR
SHARE``) must be this node's with the op's token — ``no_active_assignment`` or
``stale_fencing_token`` otherwise, with a ``lease_revoked`` for the node's assignment of the task.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NoReturn, TypeVar

from vk_hive.gateway.identity import NodeIdentity
from vk_hive.gateway.refusals import (
    EntityNotFound,
    ForeignEntity,
    IllegalStatusChange,
    InvalidPayload,
    NoActiveAssignment,
    OpRefused,
    ProjectNotLinked,
    StaleFencingToken,
    TextTooLong,
)
from vk_hive.store.models import (
    Assignment,
    ExecutionProcess,
    Label,
    NewOutputLog,
    ProjectNodeLink,
    SharedTask,
    TaskAttempt,
)
from vk_hive.store.repositories.executions import AttemptData, ProcessData
from vk_hive.store.repositories.shared_tasks import NodeTaskData
from vk_shared.protocol import MAX_TASK_TEXT_BYTES
from vk_shared.status import Author, ExecutionStatus, TaskStatus, is_legal, may_transition, to_hive
from vk_shared.wire import (
    AssignmentStatus,
    AttemptUpsert,
    ExecutionUpsert,
    LabelUpsert,
    LeaseRevoked,
    LogsAppend,
    OutboxOp,
    ProgressAppend,
    TaskUpsert,
)

__all__ = [
    "PARK",
    "AppendLogs",
    "Decision",
    "Fact",
    "Facts",
    "LogClearance",
    "Need",
    "Park",
    "Reject",
    "SetAssignmentStatus",
    "Write",
    "WriteAttempt",
    "WriteLabel",
    "WriteProcess",
    "WriteProgress",
    "WriteTask",
    "plan",
]

TERMINAL = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})

# --- what the plan reads -----------------------------------------------------------------------


class Fact(StrEnum):
    """A kind of fact, each read by one query (see :mod:`.facts`)."""

    INVENTORY = "inventory"
    """Whether a local project is in the node's inventory (``projects_sync``/``link_project``)."""
    TASK = "task"
    """A shared task by id, soft-deleted ones too."""
    OWN_TASK = "own_task"
    """The live task the node created from one of its local tasks, by local task id."""
    RECORDED = "recorded"
    """Whether an op about an entity was ever recorded in the node's op log."""
    ACTIVE_ASSIGNMENT = "active_assignment"
    """A task's active assignment, read ``FOR SHARE`` (the fence)."""
    LATEST_OWN_ASSIGNMENT = "latest_own_assignment"
    """The node's most recent assignment of a task (whose lease a refusal revokes)."""
    ASSIGNMENT = "assignment"
    """An assignment by id."""
    LOCKED_ASSIGNMENT = "locked_assignment"
    """An assignment by id, read ``FOR SHARE``."""
    ATTEMPT = "attempt"
    PROCESS = "process"
    LABEL = "label"
    """A label by id, soft-deleted ones too."""


@dataclass(frozen=True, slots=True)
class Need:
    """The decision depends on a fact not read yet."""

    fact: Fact
    key: uuid.UUID


@dataclass(frozen=True, slots=True)
class LogClearance:
    """An execution whose ``logs.append`` checks passed in this batch: later log ops of it with
    the same token skip the parent reads and the fence read (whose row lock the batch holds)."""

    assignment_id: uuid.UUID | None
    """The assignment the execution's attempt ran under (stored with each log line)."""
    token: int | None
    """The fencing token the op had to carry; None: the node owns the task (no lease)."""


@dataclass
class Facts:
    """What the plan may know about the hive, keyed by the fact's id. A key missing from its
    table is unknown (the plan returns :class:`Need`); a value of None is known absence."""

    node: NodeIdentity
    links: Mapping[uuid.UUID, ProjectNodeLink]
    """Every link of the node, by local project id (complete: a missing key is no link)."""
    inventory: dict[uuid.UUID, bool] = field(default_factory=dict)
    tasks: dict[uuid.UUID, SharedTask | None] = field(default_factory=dict)
    own_tasks: dict[uuid.UUID, SharedTask | None] = field(default_factory=dict)
    recorded: dict[uuid.UUID, bool] = field(default_factory=dict)
    active_assignments: dict[uuid.UUID, Assignment | None] = field(default_factory=dict)
    latest_own_assignments: dict[uuid.UUID, Assignment | None] = field(default_factory=dict)
    assignments: dict[uuid.UUID, Assignment | None] = field(default_factory=dict)
    locked_assignments: dict[uuid.UUID, Assignment | None] = field(default_factory=dict)
    attempts: dict[uuid.UUID, TaskAttempt | None] = field(default_factory=dict)
    processes: dict[uuid.UUID, ExecutionProcess | None] = field(default_factory=dict)
    labels: dict[uuid.UUID, Label | None] = field(default_factory=dict)
    clearances: Mapping[uuid.UUID, LogClearance] = field(default_factory=dict)


# --- what the plan decides ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WriteTask:
    data: NodeTaskData
    task: SharedTask | None
    """The row the op changes, as the plan saw it; None: a new task."""
    owner: bool
    """The node owns the task: no lease, any legal transition."""

    @property
    def bulk(self) -> bool:
        """May join the batch's one-statement insert (new task) or update (a task the node
        owns), when decided from the batch's prefetched facts."""
        return self.owner


@dataclass(frozen=True, slots=True)
class WriteAttempt:
    data: AttemptData


@dataclass(frozen=True, slots=True)
class WriteProcess:
    data: ProcessData


@dataclass(frozen=True, slots=True)
class AppendLogs:
    execution_id: uuid.UUID
    lines: list[NewOutputLog]
    clearance: LogClearance


@dataclass(frozen=True, slots=True)
class SetAssignmentStatus:
    assignment_id: uuid.UUID
    status: ExecutionStatus
    local_task_id: uuid.UUID | None
    local_attempt_id: uuid.UUID | None
    start_task: uuid.UUID | None
    """A ``todo`` task whose run started: the hive authors ``todo → in-progress``."""
    complete: bool
    """A terminal status: the assignment is closed."""


@dataclass(frozen=True, slots=True)
class WriteProgress:
    event_id: uuid.UUID
    shared_task_id: uuid.UUID
    attempt_id: uuid.UUID
    assignment_id: uuid.UUID | None
    execution_id: uuid.UUID | None
    event_type: str
    message: str | None
    timestamp: dt.datetime


@dataclass(frozen=True, slots=True)
class WriteLabel:
    label_id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    name: str
    icon: str
    color: str
    exists: bool
    """A label with this id is on the hive already: an edit."""


@dataclass(frozen=True, slots=True)
class Reject:
    error: OpRefused


@dataclass(frozen=True, slots=True)
class Park:
    """Stop the batch before this op: a parent may still arrive."""


PARK = Park()

Write = (
    WriteTask
    | WriteAttempt
    | WriteProcess
    | AppendLogs
    | SetAssignmentStatus
    | WriteProgress
    | WriteLabel
)
Decision = Write | Reject | Park | Need


def plan(op: OutboxOp, facts: Facts) -> Decision:
    """The decision for ``op`` from ``facts`` (see the module doc); no I/O."""
    try:
        return _plan(op, facts)
    except _Unknown as unknown:
        return unknown.need
    except _ParentPending:
        return PARK
    except OpRefused as refused:
        return Reject(refused)


class _Unknown(Exception):
    def __init__(self, need: Need) -> None:
        super().__init__(need.fact.value)
        self.need = need


class _ParentPending(Exception):
    pass


_T = TypeVar("_T")


def _known(table: Mapping[uuid.UUID, _T], fact: Fact, key: uuid.UUID) -> _T:
    if key not in table:
        raise _Unknown(Need(fact, key))
    return table[key]


def _plan(op: OutboxOp, f: Facts) -> Write:
    p = op.payload
    if isinstance(p, TaskUpsert):
        return _task(op, p, f)
    if isinstance(p, AttemptUpsert):
        return _attempt(op, p, f)
    if isinstance(p, ExecutionUpsert):
        return _execution(op, p, f)
    if isinstance(p, LogsAppend):
        return _logs(op, p, f)
    if isinstance(p, ProgressAppend):
        return _progress(op, p, f)
    if isinstance(p, LabelUpsert):
        return _label(op, p, f)
    return _assignment_status(op, p, f)


# --- parents -----------------------------------------------------------------------------------


def _missing_parent(what: str, parent_id: uuid.UUID, f: Facts) -> NoReturn:
    """PARK while the parent's op may still come; ``not_found`` once it was recorded."""
    if _known(f.recorded, Fact.RECORDED, parent_id):
        raise EntityNotFound(f"{what} {parent_id} was rejected or deleted")
    raise _ParentPending()


def _shared_task(task_id: uuid.UUID, f: Facts, seen: SharedTask | None = None) -> SharedTask:
    """The live task ``task_id`` of the node's organization (``seen``: the row, if the batch has
    it already)."""
    task = seen if seen is not None else _known(f.tasks, Fact.TASK, task_id)
    if task is None:
        raise EntityNotFound(f"task {task_id} does not exist on the hive")
    if task.organization_id != f.node.organization_id:
        raise ForeignEntity(f"task {task_id} is not in your organization")
    if task.deleted_at is not None:
        raise EntityNotFound(f"task {task_id} was deleted on the hive")
    return task


def _task_of(local_task_id: uuid.UUID, shared_task_id: uuid.UUID | None, f: Facts) -> SharedTask:
    if shared_task_id is not None:
        return _shared_task(shared_task_id, f)
    task = _known(f.own_tasks, Fact.OWN_TASK, local_task_id)
    if task is None:
        _missing_parent("task", local_task_id, f)
    return task


def _attempt_task(attempt_id: uuid.UUID, f: Facts) -> tuple[uuid.UUID | None, SharedTask]:
    """(the attempt's assignment, its task) of one of the node's attempts."""
    attempt = _known(f.attempts, Fact.ATTEMPT, attempt_id)
    if attempt is None:
        _missing_parent("attempt", attempt_id, f)
    if attempt.node_id != f.node.node_id:
        raise ForeignEntity(f"attempt {attempt_id} belongs to another node")
    return attempt.assignment_id, _shared_task(attempt.shared_task_id, f)


# --- fencing -----------------------------------------------------------------------------------


def _fence(op: OutboxOp, task: SharedTask, f: Facts) -> Assignment | None:
    """The live assignment the op's token proves; None for the task's owner (no lease)."""
    node_id = f.node.node_id
    if task.owner_node_id == node_id:
        return None
    active = _known(f.active_assignments, Fact.ACTIVE_ASSIGNMENT, task.id)
    if active is None:
        latest = _known(f.latest_own_assignments, Fact.LATEST_OWN_ASSIGNMENT, task.id)
        revoke = None
        if latest is not None:
            revoke = LeaseRevoked(
                assignment_id=latest.id,
                reason="no active assignment (lease revoked or completed)",
            )
        raise NoActiveAssignment(f"task {task.id} has no active assignment for this node", revoke)
    if active.node_id != node_id or op.fencing_token != active.fencing_token:
        if active.node_id == node_id:
            revoke = LeaseRevoked(assignment_id=active.id, reason="stale fencing token")
        else:
            mine = _known(f.latest_own_assignments, Fact.LATEST_OWN_ASSIGNMENT, task.id)
            revoke = None
            if mine is not None:
                revoke = LeaseRevoked(
                    assignment_id=mine.id, reason="the task is assigned to another node"
                )
        raise StaleFencingToken(
            f"fencing token {op.fencing_token} is not the current token of task {task.id}",
            revoke,
        )
    return active


# --- op types ----------------------------------------------------------------------------------


def _text_bytes(p: TaskUpsert) -> int:
    return len(p.title.encode()) + len((p.description or "").encode())


def _task(op: OutboxOp, p: TaskUpsert, f: Facts) -> WriteTask:
    node = f.node
    if p.id != op.entity_id:
        raise InvalidPayload("entity_id must equal the task id")
    if _text_bytes(p) > MAX_TASK_TEXT_BYTES:
        raise TextTooLong(f"title and description exceed {MAX_TASK_TEXT_BYTES} bytes")
    task: SharedTask | None
    if p.shared_task_id is not None:
        own = f.own_tasks.get(p.id)  # the same row, when the batch has it by local id
        seen = own if own is not None and own.id == p.shared_task_id else None
        task = _shared_task(p.shared_task_id, f, seen)
    else:
        task = _known(f.own_tasks, Fact.OWN_TASK, p.id)
    link = f.links.get(p.project_id)
    if link is None:
        if not _known(f.inventory, Fact.INVENTORY, p.project_id):
            raise _ParentPending()  # projects_sync / link_project has not arrived yet
        raise ProjectNotLinked(f"local project {p.project_id} is not linked")
    owner = task is None or task.owner_node_id == node.node_id
    status = to_hive(p.status)
    if task is not None:
        _fence(op, task, f)
        if task.status != status:
            allowed = (
                is_legal(task.status, status)
                if owner
                else may_transition(Author.NODE, task.status, status)
            )
            if not allowed:
                raise IllegalStatusChange(
                    f"status {task.status.value} -> {status.value} may not be authored by this node"
                )
    if "\x00" in p.title or "\x00" in (p.description or ""):
        raise InvalidPayload("title and description must not contain NUL bytes")
    data = NodeTaskData(
        organization_id=node.organization_id,
        swarm_project_id=link.swarm_project_id,
        source_task_id=p.id,
        title=p.title,
        description=p.description,
        status=status,
        shared_task_id=p.shared_task_id,
        owner_name=node.name,
        archived_at=p.archived_at,
        origin_seq=op.seq,
    )
    return WriteTask(data=data, task=task, owner=owner)


def _attempt(op: OutboxOp, p: AttemptUpsert, f: Facts) -> WriteAttempt:
    if p.id != op.entity_id:
        raise InvalidPayload("entity_id must equal the attempt id")
    task = _task_of(p.task_id, p.shared_task_id, f)
    _fence(op, task, f)
    if p.assignment_id is not None:
        assignment = _known(f.assignments, Fact.ASSIGNMENT, p.assignment_id)
        if assignment is None or assignment.task_id != task.id:
            raise InvalidPayload(
                f"assignment {p.assignment_id} is not an assignment of task {task.id}"
            )
    return WriteAttempt(
        AttemptData(
            id=p.id,
            shared_task_id=task.id,
            executor=p.executor,
            branch=p.branch,
            target_branch=p.target_branch,
            assignment_id=p.assignment_id,
            executor_variant=p.executor_variant,
            worktree_deleted=p.worktree_deleted,
            setup_completed_at=p.setup_completed_at,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )
    )


def _execution(op: OutboxOp, p: ExecutionUpsert, f: Facts) -> WriteProcess:
    if p.id != op.entity_id:
        raise InvalidPayload("entity_id must equal the execution id")
    _, task = _attempt_task(p.attempt_id, f)
    _fence(op, task, f)
    return WriteProcess(
        ProcessData(
            id=p.id,
            attempt_id=p.attempt_id,
            run_reason=p.run_reason,
            status=p.status.value,
            started_at=p.started_at,
            executor_action=p.executor_action,
            before_head_commit=p.before_head_commit,
            after_head_commit=p.after_head_commit,
            exit_code=p.exit_code,
            dropped=p.dropped,
            pid=p.pid,
            completed_at=p.completed_at,
        )
    )


def _logs(op: OutboxOp, p: LogsAppend, f: Facts) -> AppendLogs:
    clearance = f.clearances.get(p.execution_id)
    if clearance is None or clearance.token not in (None, op.fencing_token):
        clearance = _log_checks(op, p, f)
    lines = [
        NewOutputLog(
            output_type=e.output_type.value,
            content=e.content,
            local_log_id=e.id,
            timestamp=e.timestamp,
        )
        for e in p.entries
        if p.first_log_id <= e.id <= p.last_log_id
    ]
    return AppendLogs(execution_id=p.execution_id, lines=lines, clearance=clearance)


def _log_checks(op: OutboxOp, p: LogsAppend, f: Facts) -> LogClearance:
    process = _known(f.processes, Fact.PROCESS, p.execution_id)
    if process is None:
        _missing_parent("execution", p.execution_id, f)
    if process.node_id != f.node.node_id:
        raise ForeignEntity(f"execution {p.execution_id} belongs to another node")
    assignment_id, task = _attempt_task(process.attempt_id, f)
    active = _fence(op, task, f)
    return LogClearance(assignment_id, None if active is None else active.fencing_token)


def _assignment_status(op: OutboxOp, p: AssignmentStatus, f: Facts) -> SetAssignmentStatus:
    assignment = _known(f.locked_assignments, Fact.LOCKED_ASSIGNMENT, p.assignment_id)
    if assignment is None:
        raise EntityNotFound(f"assignment {p.assignment_id} does not exist")
    if assignment.node_id != f.node.node_id:
        raise StaleFencingToken(f"assignment {p.assignment_id} is held by another node")
    task = _shared_task(assignment.task_id, f)
    if assignment.completed_at is not None:
        raise NoActiveAssignment(
            f"assignment {assignment.id} is closed ({assignment.execution_status})",
            LeaseRevoked(assignment_id=assignment.id, reason="the assignment is closed"),
        )
    if op.fencing_token != assignment.fencing_token:
        raise StaleFencingToken(
            f"fencing token {op.fencing_token} is not the current token of assignment "
            f"{assignment.id}",
            LeaseRevoked(assignment_id=assignment.id, reason="stale fencing token"),
        )
    starts = p.status == ExecutionStatus.RUNNING and task.status == TaskStatus.TODO
    return SetAssignmentStatus(
        assignment_id=assignment.id,
        status=p.status,
        local_task_id=p.local_task_id,
        local_attempt_id=p.local_attempt_id,
        start_task=task.id if starts else None,
        complete=p.status in TERMINAL,
    )


def _progress(op: OutboxOp, p: ProgressAppend, f: Facts) -> WriteProgress:
    if p.id != op.entity_id:
        raise InvalidPayload("entity_id must equal the progress event id")
    assignment_id, task = _attempt_task(p.attempt_id, f)
    try:
        _fence(op, task, f)
    except OpRefused as refused:
        raise type(refused)(refused.reason) from None  # no lease is revoked for a report
    if "\x00" in (p.message or ""):
        raise InvalidPayload("the message must not contain NUL bytes")
    return WriteProgress(
        event_id=p.id,
        shared_task_id=task.id,
        attempt_id=p.attempt_id,
        assignment_id=assignment_id,
        execution_id=p.execution_id,
        event_type=p.event_type.value,
        message=p.message,
        timestamp=p.timestamp,
    )


def _label(op: OutboxOp, p: LabelUpsert, f: Facts) -> WriteLabel:
    if p.id != op.entity_id:
        raise InvalidPayload("entity_id must equal the label id")
    link = f.links.get(p.project_id)
    if link is None:
        if not _known(f.inventory, Fact.INVENTORY, p.project_id):
            raise _ParentPending()  # projects_sync / link_project has not arrived yet
        raise ProjectNotLinked(f"local project {p.project_id} is not linked")
    if any("\x00" in text for text in (p.name, p.icon, p.color)):
        raise InvalidPayload("label name, icon and colour must not contain NUL bytes")
    label = _known(f.labels, Fact.LABEL, p.id)
    if label is not None:
        if label.organization_id != f.node.organization_id:
            raise ForeignEntity(f"label {p.id} is not in your organization")
        if label.deleted_at is not None:
            raise EntityNotFound(f"label {p.id} was deleted on the hive")
        if label.project_id != link.swarm_project_id:
            raise InvalidPayload(f"label {p.id} belongs to another project")
    return WriteLabel(
        label_id=p.id,
        organization_id=f.node.organization_id,
        project_id=link.swarm_project_id,
        name=p.name,
        icon=p.icon,
        color=p.color,
        exists=label is not None,
    )
