"""The JSON bodies of organization webhook deliveries.

Two events: ``task_finished`` (a coding-agent run of a shared task ended on a node: completed,
failed or killed) and ``node_offline`` (a node stayed offline for the grace period). Without a
payload template a delivery's body is the event's Struct as JSON; with one, the template is
rendered with the body's fields by dotted path, so the placeholders a template may use are the
fields of either body (:data:`PLACEHOLDERS`; a field the event lacks renders as ``null``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

import msgspec
import structlog

from vk_shared import webhooks as rules

__all__ = [
    "EVENTS",
    "PLACEHOLDERS",
    "TEST_EVENT",
    "Event",
    "NodeOfflineBody",
    "TaskFinishedBody",
    "encode_body",
    "sample_body",
]

log = structlog.get_logger("vk_hive.webhooks")

Event = Literal["task_finished", "node_offline"]
EVENTS: tuple[str, ...] = ("task_finished", "node_offline")
TEST_EVENT = "test"
"""The event of a test delivery (``POST .../webhooks/{id}/test``)."""


class OrganizationInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str


class NodeInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    machine_id: str


class ProjectInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str


class TaskInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    title: str
    status: str


class AttemptInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    executor: str
    branch: str
    target_branch: str


class ProcessInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    status: str
    """``completed``, ``failed`` or ``killed``."""
    exit_code: int | None
    started_at: dt.datetime
    completed_at: dt.datetime | None


class AssignmentInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    fencing_token: int


class TaskFinishedBody(msgspec.Struct, frozen=True, kw_only=True):
    event: str
    delivery_id: uuid.UUID
    occurred_at: dt.datetime
    status: str
    """The run's final status (same as ``process.status``)."""
    organization: OrganizationInfo
    node: NodeInfo
    project: ProjectInfo | None
    task: TaskInfo
    attempt: AttemptInfo
    process: ProcessInfo
    assignment: AssignmentInfo | None
    """The hive assignment the run belonged to; ``null`` for a run the node started itself."""


class RunningTask(msgspec.Struct, frozen=True, kw_only=True):
    task_id: uuid.UUID
    title: str
    assignment_id: uuid.UUID
    fencing_token: int
    lease_expires_at: dt.datetime | None


class OfflineNode(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    machine_id: str
    last_heartbeat_at: dt.datetime | None
    disconnected_at: dt.datetime | None


class NodeOfflineBody(msgspec.Struct, frozen=True, kw_only=True):
    event: str
    delivery_id: uuid.UUID
    occurred_at: dt.datetime
    organization: OrganizationInfo
    node: OfflineNode
    running: list[RunningTask]
    """Assignments the node held when it went offline (their leases run out unless it returns)."""


Body = TaskFinishedBody | NodeOfflineBody

_SAMPLE_ID = uuid.UUID(int=0)


def sample_body(
    event: str, delivery_id: uuid.UUID, *, occurred_at: dt.datetime, organization: OrganizationInfo
) -> Body:
    """A made-up body of ``event``'s shape with every field set (``event`` itself says
    ``test``), for ``POST .../webhooks/{id}/test``."""
    node = NodeInfo(id=_SAMPLE_ID, name="test-node", machine_id="test-machine")
    if event == "node_offline":
        return NodeOfflineBody(
            event=TEST_EVENT,
            delivery_id=delivery_id,
            occurred_at=occurred_at,
            organization=organization,
            node=OfflineNode(
                id=node.id,
                name=node.name,
                machine_id=node.machine_id,
                last_heartbeat_at=occurred_at,
                disconnected_at=occurred_at,
            ),
            running=[
                RunningTask(
                    task_id=_SAMPLE_ID,
                    title="Test delivery",
                    assignment_id=_SAMPLE_ID,
                    fencing_token=1,
                    lease_expires_at=occurred_at,
                )
            ],
        )
    return TaskFinishedBody(
        event=TEST_EVENT,
        delivery_id=delivery_id,
        occurred_at=occurred_at,
        status="completed",
        organization=organization,
        node=node,
        project=ProjectInfo(id=_SAMPLE_ID, name="Test project"),
        task=TaskInfo(id=_SAMPLE_ID, title="Test delivery", status="inreview"),
        attempt=AttemptInfo(
            id=_SAMPLE_ID, executor="SCRIPT", branch="vk/test", target_branch="main"
        ),
        process=ProcessInfo(
            id=_SAMPLE_ID,
            status="completed",
            exit_code=0,
            started_at=occurred_at,
            completed_at=occurred_at,
        ),
        assignment=AssignmentInfo(id=_SAMPLE_ID, fencing_token=1),
    )


def _fields(body: Body) -> dict[str, Any]:
    built: dict[str, Any] = msgspec.to_builtins(body)
    return rules.flatten(built)


_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_SAMPLE_ORG = OrganizationInfo(id=_SAMPLE_ID, name="o")
PLACEHOLDERS: frozenset[str] = frozenset(
    name
    for event in EVENTS
    for name in _fields(
        sample_body(event, _SAMPLE_ID, occurred_at=_EPOCH, organization=_SAMPLE_ORG)
    )
)
"""Every placeholder a payload template may use."""


def encode_body(body: Body, payload_template: str | None) -> str:
    """The delivery's JSON text: the body itself, or the rendered template.

    A stored template that no longer checks (written by hand into the database) is logged and
    the default body sent, so an event never fails because of its webhook."""
    if payload_template is not None:
        try:
            parsed = rules.check_template(payload_template, PLACEHOLDERS)
            return msgspec.json.encode(rules.render(parsed, _fields(body))).decode()
        except Exception as exc:
            log.warning("webhook.template_failed", error=str(exc))
    return msgspec.json.encode(body).decode()
