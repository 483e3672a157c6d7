"""Task status spellings and the one state machine that decides who may author a transition.

The hive spells the in-flight statuses ``in-progress`` / ``in-review``; the node spells them
``inprogress`` / ``inreview``. :class:`TaskStatus` (hive spelling) is canonical; the node spelling
exists only at the node's edge and on node-authored wire payloads.

Exactly one author may make each legal transition (DESIGN.md §5):

* hive: ``todo → in-progress``, ``in-review → in-progress``, ``in-review → done``, and any status
  except ``cancelled`` → ``cancelled``;
* node: ``in-progress → in-review``, ``in-progress → done``.

Everything else, including ``X → X``, is not a transition. Illegal transitions are rejected, never
coerced.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "TRANSITIONS",
    "Author",
    "ExecutionStatus",
    "InvalidStatus",
    "NodeStatus",
    "NodeTaskStatus",
    "TaskStatus",
    "canonicalize",
    "is_legal",
    "may_transition",
    "to_hive",
    "to_node",
    "transition_author",
]


class TaskStatus(StrEnum):
    """Status of a task, hive spelling (canonical)."""

    TODO = "todo"
    IN_PROGRESS = "in-progress"
    IN_REVIEW = "in-review"
    DONE = "done"
    CANCELLED = "cancelled"


class NodeTaskStatus(StrEnum):
    """Status of a task, node spelling (as stored in the node's SQLite and sent in its ops)."""

    TODO = "todo"
    INPROGRESS = "inprogress"
    INREVIEW = "inreview"
    DONE = "done"
    CANCELLED = "cancelled"


class Author(StrEnum):
    """The side allowed to make a status transition."""

    HIVE = "hive"
    NODE = "node"


class ExecutionStatus(StrEnum):
    """Execution status of an assignment, as reported by the node holding it."""

    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class NodeStatus(StrEnum):
    """Liveness/availability of a node as seen by the hive."""

    PENDING = "pending"
    ONLINE = "online"
    OFFLINE = "offline"
    BUSY = "busy"
    DRAINING = "draining"


class InvalidStatus(ValueError):
    """A value that is not a task status in either spelling."""


_TO_NODE: Mapping[TaskStatus, NodeTaskStatus] = MappingProxyType(
    {
        TaskStatus.TODO: NodeTaskStatus.TODO,
        TaskStatus.IN_PROGRESS: NodeTaskStatus.INPROGRESS,
        TaskStatus.IN_REVIEW: NodeTaskStatus.INREVIEW,
        TaskStatus.DONE: NodeTaskStatus.DONE,
        TaskStatus.CANCELLED: NodeTaskStatus.CANCELLED,
    }
)
_TO_HIVE: Mapping[NodeTaskStatus, TaskStatus] = MappingProxyType(
    {node: hive for hive, node in _TO_NODE.items()}
)
_BY_SPELLING: Mapping[str, TaskStatus] = MappingProxyType(
    {**{s.value: s for s in TaskStatus}, **{n.value: h for n, h in _TO_HIVE.items()}}
)


def to_node(status: TaskStatus) -> NodeTaskStatus:
    """The node spelling of a canonical status."""
    try:
        return _TO_NODE[TaskStatus(status)]
    except ValueError:
        raise InvalidStatus(f"not a hive task status: {status!r}") from None


def to_hive(status: NodeTaskStatus) -> TaskStatus:
    """The canonical (hive) spelling of a node status."""
    try:
        return _TO_HIVE[NodeTaskStatus(status)]
    except ValueError:
        raise InvalidStatus(f"not a node task status: {status!r}") from None


def canonicalize(value: str) -> TaskStatus:
    """Map either spelling (case-sensitive) to :class:`TaskStatus`; anything else is invalid."""
    if isinstance(value, str):
        status = _BY_SPELLING.get(str(value))
        if status is not None:
            return status
    raise InvalidStatus(f"not a task status: {value!r}")


def _build_transitions() -> Mapping[tuple[TaskStatus, TaskStatus], Author]:
    table: dict[tuple[TaskStatus, TaskStatus], Author] = {
        (TaskStatus.TODO, TaskStatus.IN_PROGRESS): Author.HIVE,
        (TaskStatus.IN_REVIEW, TaskStatus.IN_PROGRESS): Author.HIVE,
        (TaskStatus.IN_REVIEW, TaskStatus.DONE): Author.HIVE,
        (TaskStatus.IN_PROGRESS, TaskStatus.IN_REVIEW): Author.NODE,
        (TaskStatus.IN_PROGRESS, TaskStatus.DONE): Author.NODE,
    }
    for frm in TaskStatus:
        if frm is not TaskStatus.CANCELLED:
            table[(frm, TaskStatus.CANCELLED)] = Author.HIVE
    return MappingProxyType(table)


TRANSITIONS: Mapping[tuple[TaskStatus, TaskStatus], Author] = _build_transitions()
"""Every legal transition ``(from, to)`` and its single author. Absent pairs are not transitions."""


def transition_author(frm: TaskStatus, to: TaskStatus) -> Author | None:
    """Who may move a task from ``frm`` to ``to``; ``None`` when it is illegal or a no-op."""
    return TRANSITIONS.get((frm, to))


def may_transition(author: Author, frm: TaskStatus, to: TaskStatus) -> bool:
    """Whether ``author`` may move a task from ``frm`` to ``to``."""
    author_of = transition_author(frm, to)
    return author_of is not None and author_of == author


def is_legal(frm: TaskStatus, to: TaskStatus) -> bool:
    """Whether ``frm → to`` is a transition some author may make."""
    return (frm, to) in TRANSITIONS
