"""The pure plan of one node op (vk_hive.gateway.plan), table-driven over a small fixed world:
every check of every op type, in the order the protocol gives them, without a database."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from vk_hive.gateway.identity import NodeIdentity
from vk_hive.gateway.plan import (
    AppendLogs,
    Decision,
    Fact,
    Facts,
    LogClearance,
    Need,
    Park,
    Reject,
    SetAssignmentStatus,
    WriteAttempt,
    WriteProcess,
    WriteTask,
    plan,
)
from vk_hive.store.models import (
    Assignment,
    ExecutionProcess,
    ProjectNodeLink,
    SharedTask,
    TaskAttempt,
)
from vk_shared.protocol import MAX_TASK_TEXT_BYTES
from vk_shared.status import Author, NodeTaskStatus, TaskStatus, is_legal, may_transition, to_hive
from vk_shared.wire import (
    AssignmentStatus,
    AttemptUpsert,
    ExecutionUpsert,
    LogEntry,
    LogsAppend,
    OpPayload,
    OutboxOp,
    RejectCode,
    TaskUpsert,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_OID, name)


NODE, OTHER_NODE = _id("node"), _id("other node")
ORG, OTHER_ORG = _id("org"), _id("other org")
SWARM = _id("swarm project")
LINKED, UNLINKED, UNKNOWN_PROJECT = _id("linked"), _id("inventory only"), _id("unknown project")

L_OWN, L_NEW, L_HIVE = _id("local own"), _id("local new"), _id("local hive")
OWN, HIVE, ELSEWHERE, UNASSIGNED, NEVER_ASSIGNED = (
    _id("own task"),
    _id("hive task"),
    _id("task assigned to another node"),
    _id("task whose lease ended"),
    _id("task never assigned to the node"),
)
FOREIGN, DELETED, MISSING = _id("foreign task"), _id("deleted task"), _id("no such task")

A_HIVE, A_ELSEWHERE, A_MINE_OLD, A_ENDED, A_CLOSED = (
    _id("active assignment of the hive task"),
    _id("active assignment of another node"),
    _id("the node's older assignment"),
    _id("the node's ended assignment"),
    _id("a closed assignment"),
)
TOKEN = 7

AT_OWN, AT_HIVE, AT_FOREIGN, AT_REJECTED, AT_PENDING = (
    _id("attempt of the own task"),
    _id("attempt of the hive task"),
    _id("attempt of another node"),
    _id("attempt whose op was rejected"),
    _id("attempt not here yet"),
)
EX_OWN, EX_HIVE, EX_FOREIGN, EX_PENDING = (
    _id("execution of the own task"),
    _id("execution of the hive task"),
    _id("execution of another node"),
    _id("execution not here yet"),
)

IDENTITY = NodeIdentity(node_id=NODE, organization_id=ORG, name="node one")


def _task(
    task_id: uuid.UUID,
    *,
    status: TaskStatus = TaskStatus.TODO,
    owner: uuid.UUID | None = None,
    org: uuid.UUID = ORG,
    deleted: bool = False,
    source: uuid.UUID | None = None,
) -> SharedTask:
    return SharedTask(
        id=task_id,
        organization_id=org,
        project_id=SWARM,
        swarm_project_id=SWARM,
        creator_user_id=None,
        assignee_user_id=None,
        deleted_by_user_id=None,
        title="t",
        description=None,
        status=status,
        executor="SCRIPT",
        version=1,
        deleted_at=NOW if deleted else None,
        shared_at=None,
        archived_at=None,
        executing_node_id=None,
        owner_node_id=owner,
        owner_name=None,
        source_node_id=NODE if source else None,
        source_task_id=source,
        created_at=NOW,
        updated_at=NOW,
    )


def _assignment(
    assignment_id: uuid.UUID,
    task_id: uuid.UUID,
    *,
    node: uuid.UUID = NODE,
    token: int = TOKEN,
    closed: bool = False,
) -> Assignment:
    return Assignment(
        id=assignment_id,
        task_id=task_id,
        node_id=node,
        node_project_id=_id("link row"),
        local_task_id=None,
        local_attempt_id=None,
        execution_status="completed" if closed else "running",
        assigned_at=NOW,
        started_at=NOW,
        completed_at=NOW if closed else None,
        created_at=NOW,
        lease_expires_at=NOW,
        fencing_token=token,
    )


def _attempt(attempt_id: uuid.UUID, task_id: uuid.UUID, node: uuid.UUID = NODE) -> TaskAttempt:
    return TaskAttempt(
        id=attempt_id,
        assignment_id=A_HIVE if task_id == HIVE else None,
        shared_task_id=task_id,
        node_id=node,
        executor="SCRIPT",
        executor_variant=None,
        branch="b",
        target_branch="main",
        container_ref=None,
        worktree_deleted=False,
        setup_completed_at=None,
        created_at=NOW,
        updated_at=NOW,
        sync_state="complete",
        sync_requested_at=None,
        last_full_sync_at=None,
        backfill_request_id=None,
    )


def _process(
    process_id: uuid.UUID, attempt_id: uuid.UUID, node: uuid.UUID = NODE
) -> ExecutionProcess:
    return ExecutionProcess(
        id=process_id,
        attempt_id=attempt_id,
        node_id=node,
        run_reason="codingagent",
        executor_action=None,
        before_head_commit=None,
        after_head_commit=None,
        status="running",
        exit_code=None,
        dropped=False,
        pid=None,
        started_at=NOW,
        completed_at=None,
        created_at=NOW,
    )


LINK = ProjectNodeLink(
    id=_id("link"),
    swarm_project_id=SWARM,
    node_id=NODE,
    local_project_id=LINKED,
    git_repo_path="/r",
    os_type=None,
    linked_at=NOW,
    is_owner=True,
    node_name="node one",
    project_name="p",
)

TASKS = {
    t.id: t
    for t in [
        _task(OWN, owner=NODE, source=L_OWN),
        _task(HIVE, status=TaskStatus.IN_PROGRESS),
        _task(ELSEWHERE, status=TaskStatus.IN_PROGRESS),
        _task(UNASSIGNED, status=TaskStatus.IN_PROGRESS),
        _task(NEVER_ASSIGNED, status=TaskStatus.IN_PROGRESS),
        _task(FOREIGN, org=OTHER_ORG),
        _task(DELETED, deleted=True),
    ]
}
ASSIGNMENTS = {
    a.id: a
    for a in [
        _assignment(A_HIVE, HIVE),
        _assignment(A_ELSEWHERE, ELSEWHERE, node=OTHER_NODE, token=99),
        _assignment(A_MINE_OLD, ELSEWHERE, token=3, closed=True),
        _assignment(A_ENDED, UNASSIGNED, token=5, closed=True),
        _assignment(A_CLOSED, HIVE, closed=True),
    ]
}
ATTEMPTS = {
    a.id: a
    for a in [
        _attempt(AT_OWN, OWN),
        _attempt(AT_HIVE, HIVE),
        _attempt(AT_FOREIGN, OWN, node=OTHER_NODE),
    ]
}
PROCESSES = {
    p.id: p
    for p in [
        _process(EX_OWN, AT_OWN),
        _process(EX_HIVE, AT_HIVE),
        _process(EX_FOREIGN, AT_OWN, node=OTHER_NODE),
    ]
}
RECORDED = {AT_REJECTED, L_HIVE}
"""Entities an op was recorded for (applied or rejected), though the hive has no row."""


def _lookup(need: Need) -> Any:
    """What the hive's database answers for a fact of the world above."""
    key = need.key
    match need.fact:
        case Fact.INVENTORY:
            return key in (LINKED, UNLINKED)
        case Fact.TASK:
            return TASKS.get(key)
        case Fact.OWN_TASK:
            return next((t for t in TASKS.values() if t.source_task_id == key), None)
        case Fact.RECORDED:
            return key in RECORDED
        case Fact.ACTIVE_ASSIGNMENT:
            live = [a for a in ASSIGNMENTS.values() if a.task_id == key and a.completed_at is None]
            return live[0] if live else None
        case Fact.LATEST_OWN_ASSIGNMENT:
            mine = [a for a in ASSIGNMENTS.values() if a.task_id == key and a.node_id == NODE]
            return mine[0] if mine else None
        case Fact.ASSIGNMENT | Fact.LOCKED_ASSIGNMENT:
            return ASSIGNMENTS.get(key)
        case Fact.ATTEMPT:
            return ATTEMPTS.get(key)
        case Fact.PROCESS:
            return PROCESSES.get(key)


_TABLES = {
    Fact.INVENTORY: "inventory",
    Fact.TASK: "tasks",
    Fact.OWN_TASK: "own_tasks",
    Fact.RECORDED: "recorded",
    Fact.ACTIVE_ASSIGNMENT: "active_assignments",
    Fact.LATEST_OWN_ASSIGNMENT: "latest_own_assignments",
    Fact.ASSIGNMENT: "assignments",
    Fact.LOCKED_ASSIGNMENT: "locked_assignments",
    Fact.ATTEMPT: "attempts",
    Fact.PROCESS: "processes",
}


@dataclass
class Driven:
    decision: Decision
    reads: list[tuple[Fact, uuid.UUID]] = field(default_factory=list)


def drive(op: OutboxOp, facts: Facts | None = None) -> Driven:
    """Plan ``op`` as the batch does on its own path: read what the plan asks, in order."""
    facts = facts or Facts(IDENTITY, {LINKED: LINK})
    reads: list[tuple[Fact, uuid.UUID]] = []
    while isinstance(decision := plan(op, facts), Need):
        assert (decision.fact, decision.key) not in reads, "asked twice"
        reads.append((decision.fact, decision.key))
        getattr(facts, _TABLES[decision.fact])[decision.key] = _lookup(decision)
    return Driven(decision, reads)


_seq = itertools.count(1)


def _entity(payload: OpPayload) -> uuid.UUID:
    match payload:
        case AssignmentStatus():
            return payload.assignment_id
        case LogsAppend():
            return payload.execution_id
        case _:
            return payload.id


def op(
    payload: OpPayload, *, entity: uuid.UUID | None = None, token: int | None = None
) -> OutboxOp:
    """The op as the hive decodes it from a frame (enums and all)."""
    seq = next(_seq)
    made = OutboxOp(
        seq=seq,
        entity_id=entity or _entity(payload),
        idempotency_key=f"k{seq}",
        fencing_token=token,
        payload=payload,
    )
    return msgspec.json.decode(msgspec.json.encode(made), type=OutboxOp)


def task_op(
    local: uuid.UUID = L_NEW,
    *,
    status: str = "todo",
    shared: uuid.UUID | None = None,
    project: uuid.UUID = LINKED,
    title: str = "t",
    description: str | None = None,
    **kw: Any,
) -> OutboxOp:
    payload = TaskUpsert(
        id=local,
        project_id=project,
        shared_task_id=shared,
        title=title,
        description=description,
        status=NodeTaskStatus(status),
        created_at=NOW,
        updated_at=NOW,
    )
    return op(payload, **kw)


def attempt_op(
    task: uuid.UUID = L_OWN,
    *,
    shared: uuid.UUID | None = None,
    assignment: uuid.UUID | None = None,
    **kw: Any,
) -> OutboxOp:
    payload = AttemptUpsert(
        id=_id(f"new attempt of {task}"),
        task_id=task,
        shared_task_id=shared,
        assignment_id=assignment,
        executor="SCRIPT",
        branch="b",
        target_branch="main",
        created_at=NOW,
        updated_at=NOW,
    )
    return op(payload, **kw)


def execution_op(attempt: uuid.UUID = AT_OWN, **kw: Any) -> OutboxOp:
    payload = ExecutionUpsert(
        id=_id(f"new execution of {attempt}"),
        attempt_id=attempt,
        run_reason="codingagent",
        status="running",
        started_at=NOW,
    )
    return op(payload, **kw)


def logs_op(execution: uuid.UUID = EX_OWN, **kw: Any) -> OutboxOp:
    entries = [
        LogEntry(id=i, output_type="stdout", content=f"l{i}", timestamp=NOW) for i in (1, 2, 3)
    ]
    payload = LogsAppend(execution_id=execution, first_log_id=2, last_log_id=3, entries=entries)
    return op(payload, **kw)


def status_op(assignment: uuid.UUID = A_HIVE, status: str = "running", **kw: Any) -> OutboxOp:
    return op(AssignmentStatus(assignment_id=assignment, status=status), **kw)


def outcome(decision: Decision) -> tuple[Any, ...]:
    """A comparable summary of a decision."""
    match decision:
        case Reject(error=error):
            revoke = error.revoke.assignment_id if error.revoke is not None else None
            return ("reject", error.code, revoke)
        case Park():
            return ("park",)
        case Need(fact=fact, key=key):
            return ("need", fact, key)
        case WriteTask():
            kind = "create" if decision.task is None else "update"
            return ("task", kind, "bulk" if decision.bulk else "fenced")
        case WriteAttempt():
            return ("attempt",)
        case WriteProcess():
            return ("process",)
        case AppendLogs():
            return ("logs", decision.clearance.token)
        case SetAssignmentStatus():
            return ("assignment", decision.start_task, decision.complete)
    raise AssertionError(decision)


def reject(code: RejectCode, revoke: uuid.UUID | None = None) -> tuple[Any, ...]:
    return ("reject", code, revoke)


PARKED = ("park",)
BIG = "é" * (MAX_TASK_TEXT_BYTES // 2)  # two bytes each: exactly the limit

# (what it shows, the op, the outcome when every fact it asks for is read)
CASES = [
    # task.upsert
    pytest.param(
        lambda: task_op(), ("task", "create", "bulk"), id="a new task of a linked project"
    ),
    pytest.param(
        lambda: task_op(entity=_id("x")),
        reject(RejectCode.INVALID_PAYLOAD),
        id="entity id is not the task id",
    ),
    pytest.param(
        lambda: task_op(title=BIG), ("task", "create", "bulk"), id="text of exactly the limit"
    ),
    pytest.param(
        lambda: task_op(title=BIG, description="x"),
        reject(RejectCode.TEXT_TOO_LONG),
        id="text one byte over the limit",
    ),
    pytest.param(
        lambda: task_op(title=BIG * 2, entity=_id("x")),
        reject(RejectCode.INVALID_PAYLOAD),
        id="a bad entity id is checked before the text",
    ),
    pytest.param(
        lambda: task_op(title=BIG * 2, project=UNKNOWN_PROJECT),
        reject(RejectCode.TEXT_TOO_LONG),
        id="text over the limit is checked before the project",
    ),
    pytest.param(
        lambda: task_op(title="a\x00b"), reject(RejectCode.INVALID_PAYLOAD), id="NUL in the title"
    ),
    pytest.param(
        lambda: task_op(description="\x00"),
        reject(RejectCode.INVALID_PAYLOAD),
        id="NUL in the description",
    ),
    pytest.param(
        lambda: task_op(title="\x00", project=UNKNOWN_PROJECT),
        PARKED,
        id="NUL is checked after the project (parks first)",
    ),
    pytest.param(
        lambda: task_op(L_OWN, status="inreview", title="\x00"),
        reject(RejectCode.ILLEGAL_TRANSITION),
        id="NUL is checked after the transition",
    ),
    pytest.param(
        lambda: task_op(project=UNKNOWN_PROJECT), PARKED, id="a project not in the inventory parks"
    ),
    pytest.param(
        lambda: task_op(project=UNLINKED),
        reject(RejectCode.PROJECT_NOT_LINKED),
        id="a known but unlinked project is skipped",
    ),
    pytest.param(
        lambda: task_op(L_OWN, status="inprogress"),
        ("task", "update", "bulk"),
        id="an update of the node's own task",
    ),
    pytest.param(
        lambda: task_op(L_OWN, shared=OWN),
        ("task", "update", "bulk"),
        id="the own task named by its shared id",
    ),
    pytest.param(
        lambda: task_op(L_OWN, status="cancelled"),
        ("task", "update", "bulk"),
        id="the owner may make a hive-authored transition",
    ),
    pytest.param(
        lambda: task_op(L_OWN, status="done"),
        reject(RejectCode.ILLEGAL_TRANSITION),
        id="the owner may not make an illegal one",
    ),
    pytest.param(
        lambda: task_op(shared=MISSING), reject(RejectCode.NOT_FOUND), id="an unknown shared id"
    ),
    pytest.param(
        lambda: task_op(shared=FOREIGN),
        reject(RejectCode.FORBIDDEN),
        id="another organization's task",
    ),
    pytest.param(
        lambda: task_op(shared=DELETED), reject(RejectCode.NOT_FOUND), id="a deleted task"
    ),
    pytest.param(
        lambda: task_op(shared=MISSING, project=UNKNOWN_PROJECT),
        reject(RejectCode.NOT_FOUND),
        id="the shared task is checked before the project",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=HIVE, status="inreview", token=TOKEN),
        ("task", "update", "fenced"),
        id="a hive task with the current token",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=HIVE, status="inreview"),
        reject(RejectCode.STALE_FENCING_TOKEN, A_HIVE),
        id="a hive task without a token",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=HIVE, token=TOKEN - 1, status="inprogress"),
        reject(RejectCode.STALE_FENCING_TOKEN, A_HIVE),
        id="a hive task with an old token",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=HIVE, token=TOKEN + 1, status="inprogress"),
        reject(RejectCode.STALE_FENCING_TOKEN, A_HIVE),
        id="a hive task with a newer token",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=HIVE, status="cancelled", token=TOKEN),
        reject(RejectCode.ILLEGAL_TRANSITION),
        id="a hive-authored move of a hive task",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=ELSEWHERE, token=99, status="inprogress"),
        reject(RejectCode.STALE_FENCING_TOKEN, A_MINE_OLD),
        id="a task assigned to another node",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=UNASSIGNED, token=5, status="inprogress"),
        reject(RejectCode.NO_ACTIVE_ASSIGNMENT, A_ENDED),
        id="a task whose lease ended",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=NEVER_ASSIGNED, status="inprogress"),
        reject(RejectCode.NO_ACTIVE_ASSIGNMENT),
        id="a task never assigned to the node",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=HIVE, project=UNKNOWN_PROJECT),
        PARKED,
        id="the fence is checked after the project",
    ),
    # attempt.upsert
    pytest.param(lambda: attempt_op(), ("attempt",), id="an attempt of the own task"),
    pytest.param(
        lambda: attempt_op(entity=_id("x")),
        reject(RejectCode.INVALID_PAYLOAD),
        id="entity id is not the attempt id",
    ),
    pytest.param(lambda: attempt_op(L_NEW), PARKED, id="an attempt of a task not here yet parks"),
    pytest.param(
        lambda: attempt_op(L_HIVE),
        reject(RejectCode.NOT_FOUND),
        id="an attempt of a task whose op was rejected",
    ),
    pytest.param(
        lambda: attempt_op(L_HIVE, shared=HIVE, assignment=A_HIVE, token=TOKEN),
        ("attempt",),
        id="an attempt of a hive task with the token",
    ),
    pytest.param(
        lambda: attempt_op(L_HIVE, shared=HIVE, token=1),
        reject(RejectCode.STALE_FENCING_TOKEN, A_HIVE),
        id="an attempt of a hive task with an old token",
    ),
    pytest.param(
        lambda: attempt_op(assignment=A_HIVE),
        reject(RejectCode.INVALID_PAYLOAD),
        id="an attempt naming another task's assignment",
    ),
    pytest.param(
        lambda: attempt_op(assignment=MISSING),
        reject(RejectCode.INVALID_PAYLOAD),
        id="an attempt naming an unknown assignment",
    ),
    pytest.param(
        lambda: attempt_op(L_HIVE, shared=FOREIGN),
        reject(RejectCode.FORBIDDEN),
        id="an attempt of a foreign task",
    ),
    # execution.upsert
    pytest.param(lambda: execution_op(), ("process",), id="an execution of the node's attempt"),
    pytest.param(
        lambda: execution_op(entity=_id("x")),
        reject(RejectCode.INVALID_PAYLOAD),
        id="entity id is not the execution id",
    ),
    pytest.param(
        lambda: execution_op(AT_PENDING), PARKED, id="an execution of an attempt not here yet parks"
    ),
    pytest.param(
        lambda: execution_op(AT_REJECTED),
        reject(RejectCode.NOT_FOUND),
        id="an execution of a rejected attempt",
    ),
    pytest.param(
        lambda: execution_op(AT_FOREIGN),
        reject(RejectCode.FORBIDDEN),
        id="an execution of another node's attempt",
    ),
    pytest.param(
        lambda: execution_op(AT_HIVE, token=TOKEN),
        ("process",),
        id="an execution of a hive task's attempt with the token",
    ),
    pytest.param(
        lambda: execution_op(AT_HIVE),
        reject(RejectCode.STALE_FENCING_TOKEN, A_HIVE),
        id="an execution of a hive task's attempt without it",
    ),
    # logs.append
    pytest.param(lambda: logs_op(), ("logs", None), id="logs of the node's execution"),
    pytest.param(lambda: logs_op(EX_PENDING), PARKED, id="logs of an execution not here yet park"),
    pytest.param(
        lambda: logs_op(EX_FOREIGN),
        reject(RejectCode.FORBIDDEN),
        id="logs of another node's execution",
    ),
    pytest.param(
        lambda: logs_op(EX_HIVE, token=TOKEN),
        ("logs", TOKEN),
        id="logs of a hive task's run with the token",
    ),
    pytest.param(
        lambda: logs_op(EX_HIVE, token=TOKEN + 1),
        reject(RejectCode.STALE_FENCING_TOKEN, A_HIVE),
        id="logs of a hive task's run with another token",
    ),
    # assignment.status
    pytest.param(
        lambda: status_op(token=TOKEN),
        ("assignment", None, False),
        id="running of a task in progress starts nothing",
    ),
    pytest.param(
        lambda: status_op(status="completed", token=TOKEN),
        ("assignment", None, True),
        id="completed closes the assignment",
    ),
    pytest.param(
        lambda: status_op(status="failed", token=TOKEN),
        ("assignment", None, True),
        id="failed closes it too",
    ),
    pytest.param(
        lambda: status_op(MISSING, token=TOKEN),
        reject(RejectCode.NOT_FOUND),
        id="an unknown assignment",
    ),
    pytest.param(
        lambda: status_op(A_ELSEWHERE, token=99),
        reject(RejectCode.STALE_FENCING_TOKEN),
        id="another node's assignment",
    ),
    pytest.param(
        lambda: status_op(A_CLOSED, token=TOKEN),
        reject(RejectCode.NO_ACTIVE_ASSIGNMENT, A_CLOSED),
        id="a closed assignment",
    ),
    pytest.param(
        lambda: status_op(token=TOKEN - 1),
        reject(RejectCode.STALE_FENCING_TOKEN, A_HIVE),
        id="a stale token",
    ),
    pytest.param(
        lambda: status_op(), reject(RejectCode.STALE_FENCING_TOKEN, A_HIVE), id="no token"
    ),
]


@pytest.mark.parametrize(("make", "expected"), CASES)
def test_the_plan_decides_each_case_from_the_facts_it_reads(
    make: Callable[[], OutboxOp], expected: tuple[Any, ...]
) -> None:
    """Given every fact it asks for, the plan reaches the protocol's decision for the op."""
    assert outcome(drive(make()).decision) == expected


@pytest.mark.parametrize(
    ("frm", "to"), list(itertools.product(TaskStatus, NodeTaskStatus)), ids=str
)
def test_the_status_author_rule_covers_every_pair(frm: TaskStatus, to: NodeTaskStatus) -> None:
    """For every (current, requested) status pair: the owning node may make any legal
    transition, a leased node only node-authored ones; equal status is a metadata update."""
    own = msgspec.structs.replace(TASKS[OWN], status=frm)
    hive = msgspec.structs.replace(TASKS[HIVE], status=frm)
    target = to_hive(to)
    for task, allowed, fenced in (
        (own, frm == target or is_legal(frm, target), False),
        (hive, frm == target or may_transition_by_node(frm, target), True),
    ):
        facts = Facts(IDENTITY, {LINKED: LINK}, tasks={task.id: task})
        local = L_OWN if task is own else L_HIVE
        decision = drive(task_op(local, shared=task.id, status=to.value, token=TOKEN), facts)
        if allowed:
            assert isinstance(decision.decision, WriteTask)
            assert decision.decision.owner is not fenced
            assert decision.decision.data.status == target
        else:
            assert outcome(decision.decision) == reject(RejectCode.ILLEGAL_TRANSITION)


def may_transition_by_node(frm: TaskStatus, to: TaskStatus) -> bool:
    return may_transition(Author.NODE, frm, to)


# (the op, the reads the plan asks for, in order)
READS = [
    pytest.param(
        lambda: task_op(), [(Fact.OWN_TASK, L_NEW)], id="a new task: its local id, nothing else"
    ),
    pytest.param(
        lambda: task_op(project=UNKNOWN_PROJECT),
        [(Fact.OWN_TASK, L_NEW), (Fact.INVENTORY, UNKNOWN_PROJECT)],
        id="an unknown project: the task, then the inventory",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=HIVE, status="inreview", token=TOKEN),
        [(Fact.TASK, HIVE), (Fact.ACTIVE_ASSIGNMENT, HIVE)],
        id="a fenced task: the task, then its assignment (locked)",
    ),
    pytest.param(
        lambda: task_op(L_HIVE, shared=ELSEWHERE, token=99),
        [
            (Fact.TASK, ELSEWHERE),
            (Fact.ACTIVE_ASSIGNMENT, ELSEWHERE),
            (Fact.LATEST_OWN_ASSIGNMENT, ELSEWHERE),
        ],
        id="another node holds it: then the node's own latest",
    ),
    pytest.param(lambda: task_op(entity=_id("x")), [], id="a bad entity id: nothing is read"),
    pytest.param(
        lambda: attempt_op(L_NEW),
        [(Fact.OWN_TASK, L_NEW), (Fact.RECORDED, L_NEW)],
        id="a missing parent: whether its op was recorded",
    ),
    pytest.param(
        lambda: logs_op(EX_HIVE, token=TOKEN),
        [
            (Fact.PROCESS, EX_HIVE),
            (Fact.ATTEMPT, AT_HIVE),
            (Fact.TASK, HIVE),
            (Fact.ACTIVE_ASSIGNMENT, HIVE),
        ],
        id="logs: execution, attempt, task, fence",
    ),
    pytest.param(
        lambda: status_op(token=TOKEN),
        [(Fact.LOCKED_ASSIGNMENT, A_HIVE), (Fact.TASK, HIVE)],
        id="assignment status: the locked assignment, then its task",
    ),
    pytest.param(
        lambda: attempt_op(L_HIVE, shared=HIVE, assignment=A_HIVE, token=TOKEN),
        [(Fact.TASK, HIVE), (Fact.ACTIVE_ASSIGNMENT, HIVE), (Fact.ASSIGNMENT, A_HIVE)],
        id="an attempt with an assignment: task, fence, assignment",
    ),
]


@pytest.mark.parametrize(("make", "reads"), READS)
def test_the_plan_asks_for_facts_in_the_order_of_its_checks(
    make: Callable[[], OutboxOp], reads: list[tuple[Fact, uuid.UUID]]
) -> None:
    """The plan asks for one fact at a time, in check order, and nothing a decided check makes
    unnecessary (so the row locks of fence reads are taken only when the fence is checked)."""
    assert drive(make()).reads == reads


def test_prefetched_own_tasks_decide_the_bulk_paths_without_a_read() -> None:
    """With the batch's prefetch (links, the node's own tasks by local id) a new task and an
    update of an owned task are decided at once — the own task named by its shared id too;
    anything that needs a read is left to the op's own path."""
    facts = Facts(IDENTITY, {LINKED: LINK}, own_tasks={L_NEW: None, L_OWN: TASKS[OWN]})
    assert outcome(plan(task_op(), facts)) == ("task", "create", "bulk")
    assert outcome(plan(task_op(L_OWN, status="inprogress"), facts)) == ("task", "update", "bulk")
    assert outcome(plan(task_op(L_OWN, shared=OWN), facts)) == ("task", "update", "bulk")
    assert outcome(plan(task_op(L_HIVE, shared=HIVE), facts)) == ("need", Fact.TASK, HIVE)
    assert outcome(plan(task_op(_id("unprefetched")), facts)) == (
        "need",
        Fact.OWN_TASK,
        _id("unprefetched"),
    )
    assert outcome(plan(task_op(project=UNLINKED), facts)) == ("need", Fact.INVENTORY, UNLINKED)
    assert outcome(plan(task_op(L_OWN, status="done"), facts)) == reject(
        RejectCode.ILLEGAL_TRANSITION
    )


def test_a_bulk_task_write_carries_what_the_hive_stores() -> None:
    """The write of a task op holds the hive's spelling of the status, the linked swarm project,
    the node's organization and name, and the op's seq as the origin of its event."""
    made = task_op(L_OWN, status="inprogress", title="x", description="y")
    facts = Facts(IDENTITY, {LINKED: LINK}, own_tasks={L_OWN: TASKS[OWN]})
    decision = plan(made, facts)
    assert isinstance(decision, WriteTask)
    data = decision.data
    assert (data.status, data.swarm_project_id, data.organization_id) == (
        TaskStatus.IN_PROGRESS,
        SWARM,
        ORG,
    )
    assert (data.title, data.description, data.owner_name, data.origin_seq) == (
        "x",
        "y",
        "node one",
        made.seq,
    )
    assert decision.task == TASKS[OWN]


def test_a_cleared_execution_skips_the_log_checks_for_the_same_token_only() -> None:
    """Once a log op of an execution passed its checks in the batch, the next ones with the
    same token (or any token, for a task the node owns) need no read; another token is checked
    again from the start."""
    fenced = LogClearance(assignment_id=A_HIVE, token=TOKEN)
    owned = LogClearance(assignment_id=None, token=None)
    facts = Facts(IDENTITY, {LINKED: LINK}, clearances={EX_HIVE: fenced, EX_OWN: owned})
    same = plan(logs_op(EX_HIVE, token=TOKEN), facts)
    assert isinstance(same, AppendLogs)
    assert same.clearance is fenced
    assert [line.local_log_id for line in same.lines] == [2, 3]
    assert outcome(plan(logs_op(EX_OWN, token=123), facts)) == ("logs", None)
    assert outcome(plan(logs_op(EX_HIVE, token=TOKEN + 1), facts)) == (
        "need",
        Fact.PROCESS,
        EX_HIVE,
    )


def test_running_on_a_todo_task_makes_the_hive_start_it() -> None:
    """``assignment.status running`` of a ``todo`` task asks for the hive-authored
    todo → in-progress; a terminal status closes the assignment."""
    todo = msgspec.structs.replace(TASKS[HIVE], status=TaskStatus.TODO)
    facts = Facts(IDENTITY, {LINKED: LINK}, tasks={HIVE: todo})
    assert outcome(drive(status_op(token=TOKEN), facts).decision) == ("assignment", HIVE, False)
    facts = Facts(IDENTITY, {LINKED: LINK}, tasks={HIVE: todo})
    assert outcome(drive(status_op(status="cancelled", token=TOKEN), facts).decision) == (
        "assignment",
        None,
        True,
    )


def test_every_reject_code_of_the_plan_comes_from_its_error_class() -> None:
    """Each refusal's code is its class's, whatever its message says."""
    codes = {
        outcome(drive(make()).decision)[1]
        for make, expected in (case.values for case in CASES)
        if expected[0] == "reject"
    }
    assert codes == {
        RejectCode.INVALID_PAYLOAD,
        RejectCode.TEXT_TOO_LONG,
        RejectCode.NOT_FOUND,
        RejectCode.FORBIDDEN,
        RejectCode.PROJECT_NOT_LINKED,
        RejectCode.ILLEGAL_TRANSITION,
        RejectCode.STALE_FENCING_TOKEN,
        RejectCode.NO_ACTIVE_ASSIGNMENT,
    }
