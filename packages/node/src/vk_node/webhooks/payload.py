"""The JSON bodies of webhook deliveries.

Without a payload template a delivery's body is :class:`EventBody` as JSON. With one, the template
is rendered with the fields of that same body (:mod:`.template`), so the placeholders a template
may use are exactly the body's fields (:data:`PLACEHOLDERS`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
import structlog

from vk_node.store.models import ExecutionProcess, Project, Task, TaskAttempt
from vk_node.webhooks import template

__all__ = [
    "PLACEHOLDERS",
    "Event",
    "EventBody",
    "encode_body",
    "executor_finish_body",
    "sample_body",
]

log = structlog.get_logger("vk_node.webhooks")

Event = Literal["executor_finish"]
"""What a webhook can subscribe to."""
TEST_EVENT = "test"
"""The event of a test delivery (``POST /api/webhooks/{id}/test``)."""


class NodeInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str


class ProjectInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str


class TaskInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    title: str
    description: str | None
    status: str


class AttemptInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    executor: str | None
    branch: str
    target_branch: str


class ProcessInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    run_reason: str
    status: str
    """``completed``, ``failed`` or ``killed``."""
    exit_code: int | None
    completion_reason: str | None
    completion_message: str | None
    started_at: datetime
    completed_at: datetime | None


class EventBody(msgspec.Struct, frozen=True, kw_only=True):
    """The default body of a delivery (also what template placeholders refer to)."""

    event: str
    delivery_id: UUID
    occurred_at: datetime
    status: str
    """The process's final status (same as ``process.status``)."""
    node: NodeInfo
    project: ProjectInfo
    task: TaskInfo
    attempt: AttemptInfo
    process: ProcessInfo


def executor_finish_body(
    delivery_id: UUID,
    *,
    occurred_at: datetime,
    node_name: str,
    project: Project,
    task: Task,
    attempt: TaskAttempt,
    process: ExecutionProcess,
) -> EventBody:
    return EventBody(
        event="executor_finish",
        delivery_id=delivery_id,
        occurred_at=occurred_at,
        status=process.status,
        node=NodeInfo(name=node_name),
        project=ProjectInfo(id=project.id, name=project.name),
        task=TaskInfo(
            id=task.id, title=task.title, description=task.description, status=str(task.status)
        ),
        attempt=AttemptInfo(
            id=attempt.id,
            executor=attempt.executor,
            branch=attempt.branch,
            target_branch=attempt.target_branch,
        ),
        process=ProcessInfo(
            id=process.id,
            run_reason=process.run_reason,
            status=process.status,
            exit_code=process.exit_code,
            completion_reason=process.completion_reason,
            completion_message=process.completion_message,
            started_at=process.started_at,
            completed_at=process.completed_at,
        ),
    )


_SAMPLE_ID = UUID(int=0)


def sample_body(delivery_id: UUID, *, occurred_at: datetime, node_name: str) -> EventBody:
    """A made-up ``test`` event with every field set, for ``POST /api/webhooks/{id}/test``."""
    return EventBody(
        event=TEST_EVENT,
        delivery_id=delivery_id,
        occurred_at=occurred_at,
        status="completed",
        node=NodeInfo(name=node_name),
        project=ProjectInfo(id=_SAMPLE_ID, name="Test project"),
        task=TaskInfo(
            id=_SAMPLE_ID, title="Test delivery", description="Sent by vk-node", status="inreview"
        ),
        attempt=AttemptInfo(
            id=_SAMPLE_ID, executor="SCRIPT", branch="vk/test", target_branch="main"
        ),
        process=ProcessInfo(
            id=_SAMPLE_ID,
            run_reason="codingagent",
            status="completed",
            exit_code=0,
            completion_reason="result_success",
            completion_message=None,
            started_at=occurred_at,
            completed_at=occurred_at,
        ),
    )


def _fields(body: EventBody) -> dict[str, Any]:
    built: dict[str, Any] = msgspec.to_builtins(body)
    return template.flatten(built)


PLACEHOLDERS: frozenset[str] = frozenset(
    _fields(sample_body(_SAMPLE_ID, occurred_at=datetime(2000, 1, 1, tzinfo=UTC), node_name="n"))
)
"""Every placeholder a payload template may use."""


def encode_body(body: EventBody, payload_template: str | None) -> str:
    """The delivery's JSON text: the body itself, or the rendered template.

    A stored template that no longer checks (written by hand into the database) is logged and
    the default body sent, so an event never fails because of its webhook."""
    if payload_template is not None:
        try:
            parsed = template.check(payload_template, PLACEHOLDERS)
            return msgspec.json.encode(template.render(parsed, _fields(body))).decode()
        except Exception as exc:
            log.warning("webhook.template_failed", error=str(exc))
    return msgspec.json.encode(body).decode()
