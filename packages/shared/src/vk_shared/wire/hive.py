"""Messages the hive sends to a node (the :data:`HiveMessage` union, tag field ``type``).

Authentication failure is not an ``auth_result``: the hive sends an ``error`` (code
``auth_failed`` or ``protocol_version``) and closes the socket with code 1008. An ``auth_result``
therefore always means success.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, TypeAlias
from uuid import UUID

from msgspec import Meta

from vk_shared.protocol import MAX_DIGEST_BUCKETS, MAX_DIGEST_PULL_ENTITIES, MAX_OPS_PER_BATCH
from vk_shared.status import NodeStatus
from vk_shared.wire.common import (
    AwareDatetime,
    Count,
    FencingToken,
    Identifier,
    JsonObject,
    LinkedProjectInfo,
    Name,
    PositiveMillis,
    Seq,
    ShortText,
    SwarmLabelInfo,
    TaskDetails,
    Text,
    WireStruct,
)

__all__ = [
    "AckedTask",
    "Activity",
    "ActivityEventType",
    "ActivitySkipped",
    "AuthResult",
    "DigestResult",
    "ErrorCode",
    "ErrorMessage",
    "HeartbeatAck",
    "HiveMessage",
    "LabelSync",
    "LeaseGrant",
    "LeaseRevoked",
    "NodeRemoved",
    "NodeStatusChanged",
    "OpAck",
    "OpRejected",
    "ProjectSync",
    "RejectCode",
    "ResyncRequired",
    "TaskAssign",
    "TaskCancel",
]


class ErrorCode(StrEnum):
    """Known values of ``error.code`` (the field is a plain string so new codes stay compatible)."""

    AUTH_FAILED = "auth_failed"
    PROTOCOL_VERSION = "protocol_version"
    AUTH_TIMEOUT = "auth_timeout"
    MALFORMED_FRAME = "malformed_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    UNEXPECTED_MESSAGE = "unexpected_message"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    INTERNAL = "internal"
    RATE_LIMITED = "rate_limited"
    """Too many attempts from this source; wait before retrying."""


class RejectCode(StrEnum):
    """Known values of ``op_rejected.code`` (a plain string on the wire)."""

    STALE_FENCING_TOKEN = "stale_fencing_token"  # noqa: S105 - a reason code, not a secret
    NO_ACTIVE_ASSIGNMENT = "no_active_assignment"
    ILLEGAL_TRANSITION = "illegal_transition"
    INVALID_STATUS = "invalid_status"
    INVALID_PAYLOAD = "invalid_payload"
    PROJECT_NOT_LINKED = "project_not_linked"
    TEXT_TOO_LONG = "text_too_long"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    """The op names a hive entity that does not exist, was deleted, or whose op was rejected."""


class ActivityEventType(StrEnum):
    """Known values of ``activity.event_type`` (a plain string on the wire)."""

    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"
    TASK_REASSIGNED = "task.reassigned"
    TASK_DELETED = "task.deleted"
    LABEL_CREATED = "label.created"
    LABEL_UPDATED = "label.updated"
    LABEL_DELETED = "label.deleted"


class _HiveMessage(WireStruct, frozen=True, tag_field="type"):
    """Base of hive → node messages."""


class AuthResult(_HiveMessage, tag="auth_result", frozen=True, kw_only=True):
    """Successful authentication plus the snapshot the node repairs its state from."""

    node_id: Annotated[UUID, Meta(description="The node's id on the hive.")]
    organization_id: Annotated[UUID, Meta(description="Organization the node belongs to.")]
    protocol_version: Annotated[
        int, Meta(ge=1, le=65535, description="Protocol version the hive speaks.")
    ]
    linked_projects: Annotated[
        list[LinkedProjectInfo],
        Meta(max_length=10_000, description="This node's links to swarm projects."),
    ] = []
    swarm_labels: Annotated[
        list[SwarmLabelInfo], Meta(max_length=10_000, description="Organization labels.")
    ] = []
    lease_ttl_ms: Annotated[PositiveMillis, Meta(description="Lease time-to-live.")]
    heartbeat_interval_ms: Annotated[
        PositiveMillis, Meta(description="How often the node should send `heartbeat`.")
    ] = 30_000
    applied_through_seq: Annotated[
        Seq,
        Meta(
            description="Highest outbox seq of this node the hive has applied (informative: a "
            "node takes acks only from `op_ack` for seqs it sent in the session)."
        ),
    ] = 0
    server_time: Annotated[AwareDatetime, Meta(description="Hive wall clock (informative).")]
    features: Annotated[
        list[Identifier],
        Meta(
            max_length=64,
            description="Optional ops the hive applies (`progress_ops`: `progress.append`; "
            "`label_ops`: `label.upsert`). A node sends an op kind only to a hive that "
            "announced it; unknown names are ignored.",
        ),
    ] = []


class HeartbeatAck(_HiveMessage, tag="heartbeat_ack", frozen=True, kw_only=True):
    """Reply to ``heartbeat``."""

    server_time: Annotated[AwareDatetime, Meta(description="Hive wall clock (informative).")]


class TaskAssign(_HiveMessage, tag="task_assign", frozen=True, kw_only=True):
    """Run a task: creates the assignment on the node and grants its first lease."""

    assignment_id: Annotated[UUID, Meta(description="Assignment id.")]
    task_id: Annotated[UUID, Meta(description="Hive (shared) task id.")]
    project_id: Annotated[UUID, Meta(description="Swarm project id.")]
    link_id: Annotated[UUID, Meta(description="Link between the project and this node.")]
    local_project_id: Annotated[UUID, Meta(description="Local project to run it in.")]
    task: Annotated[TaskDetails, Meta(description="What to run.")]
    fencing_token: Annotated[FencingToken, Meta(description="Token for ops of this assignment.")]
    lease_ttl_ms: Annotated[
        PositiveMillis, Meta(description="Lease lifetime from receipt (relative).")
    ]


class LeaseGrant(_HiveMessage, tag="lease_grant", frozen=True, kw_only=True):
    """A lease was renewed; the node restarts its deadline from receipt."""

    assignment_id: Annotated[UUID, Meta(description="Assignment id.")]
    fencing_token: Annotated[FencingToken, Meta(description="Current token (never lowered).")]
    ttl_ms: Annotated[PositiveMillis, Meta(description="Lease lifetime from receipt (relative).")]


class LeaseRevoked(_HiveMessage, tag="lease_revoked", frozen=True, kw_only=True):
    """The node no longer holds the lease: it must stop the attempt immediately."""

    assignment_id: Annotated[UUID, Meta(description="Assignment id.")]
    reason: Annotated[Text, Meta(description="Why the lease was revoked.")]


class TaskCancel(_HiveMessage, tag="task_cancel", frozen=True, kw_only=True):
    """An operator cancelled the task: stop the attempt and report ``cancelled``."""

    assignment_id: Annotated[UUID, Meta(description="Assignment id.")]
    reason: Annotated[Text | None, Meta(description="Why it was cancelled.")] = None


class AckedTask(WireStruct, frozen=True, kw_only=True):
    """What a ``task.upsert`` op of the acked batch did to the hive's copy of its task."""

    seq: Annotated[Seq, Meta(description="Seq of the node's op.")]
    id: Annotated[UUID, Meta(description="The hive (shared) task id the op wrote.")]
    version: Annotated[
        Count | None,
        Meta(
            description="The task version the op produced; null when the op was a duplicate "
            "(applied by an earlier batch): only the id is known then."
        ),
    ] = None


class OpAck(_HiveMessage, tag="op_ack", frozen=True, kw_only=True):
    """Every op with ``seq <= applied_through_seq`` is durably applied (or skipped)."""

    applied_through_seq: Annotated[Seq, Meta(description="Highest applied seq.")]
    tasks: Annotated[
        list[AckedTask],
        Meta(
            max_length=MAX_OPS_PER_BATCH,
            description="The tasks the batch's `task.upsert` ops created or changed, in seq "
            "order (a node that announced the `ack_tasks` feature learns its new tasks' shared "
            "ids from here, not from an activity echo).",
        ),
    ] = []


class OpRejected(_HiveMessage, tag="op_rejected", frozen=True, kw_only=True):
    """An op was permanently invalid; it was skipped and counts as acked."""

    seq: Annotated[Seq, Meta(description="Seq of the rejected op.")]
    idempotency_key: Annotated[Identifier, Meta(description="Key of the rejected op.")]
    code: Annotated[Identifier, Meta(description="Machine-readable reason (`RejectCode`).")]
    reason: Annotated[Text, Meta(description="Human-readable reason.")]


class DigestResult(_HiveMessage, tag="digest_result", frozen=True, kw_only=True):
    """What the node must resend and pull after a ``digest``."""

    resend_from_seq: Annotated[
        Seq | None, Meta(description="Re-stream the outbox from this seq; null = nothing.")
    ] = None
    pull_entities: Annotated[
        list[UUID],
        Meta(max_length=MAX_DIGEST_PULL_ENTITIES, description="Hive task ids to pull."),
    ] = []
    mismatched_buckets: Annotated[
        list[Annotated[int, Meta(ge=0, lt=MAX_DIGEST_BUCKETS)]],
        Meta(max_length=MAX_DIGEST_BUCKETS, description="Buckets that differed."),
    ] = []


class Activity(_HiveMessage, tag="activity", frozen=True, kw_only=True):
    """One event of a linked project's activity stream."""

    project_id: Annotated[UUID, Meta(description="Swarm project id.")]
    seq: Annotated[Seq, Meta(description="Per-project sequence number.")]
    event_id: Annotated[UUID, Meta(description="Event id.")]
    event_type: Annotated[Identifier, Meta(description="E.g. `task.updated`.")]
    created_at: Annotated[AwareDatetime, Meta(description="When the event was written.")]
    payload: Annotated[JsonObject, Meta(description="Event body (the task as JSON).")] = {}


class ActivitySkipped(_HiveMessage, tag="activity_skipped", frozen=True, kw_only=True):
    """Events of a project's stream up to ``seq`` were not sent because they echo the node's own
    ops (sent only to nodes with the `ack_tasks` feature): advance the cursor."""

    project_id: Annotated[UUID, Meta(description="Swarm project id.")]
    seq: Annotated[Seq, Meta(description="The project's cursor moves to this seq.")]


class ResyncRequired(_HiveMessage, tag="resync_required", frozen=True, kw_only=True):
    """The node's cursor is older than retention: pull a snapshot of the project."""

    project_id: Annotated[UUID, Meta(description="Swarm project id.")]
    reason: Annotated[Text, Meta(description="Why replay is impossible.")]
    latest_seq: Annotated[
        Seq | None, Meta(description="Cursor to continue from after the snapshot.")
    ] = None


class ProjectSync(_HiveMessage, tag="project_sync", frozen=True, kw_only=True):
    """A node of the organization linked (``is_new``) or unlinked a project; the receiving node
    updates its map of remote projects."""

    link: Annotated[LinkedProjectInfo, Meta(description="The link that appeared or went away.")]
    is_new: Annotated[bool, Meta(description="true = linked, false = unlinked.")]


class NodeStatusChanged(_HiveMessage, tag="node_status", frozen=True, kw_only=True):
    """A node that links one of this node's swarm projects changed status (announced after
    a short grace when it went offline; the organization's whole list is
    ``GET /v1/sync/nodes``)."""

    node_id: Annotated[UUID, Meta(description="Node id.")]
    status: Annotated[NodeStatus, Meta(description="New status.")]
    name: Annotated[Name | None, Meta(description="Node name.")] = None
    public_url: Annotated[Text | None, Meta(description="Node public URL.")] = None
    last_heartbeat_at: Annotated[
        AwareDatetime | None, Meta(description="Last heartbeat seen by the hive.")
    ] = None


class NodeRemoved(_HiveMessage, tag="node_removed", frozen=True, kw_only=True):
    """A node of the organization was deleted: forget its projects."""

    node_id: Annotated[UUID, Meta(description="Node id.")]
    reason: Annotated[Text, Meta(description="Why it was removed.")] = ""


class LabelSync(_HiveMessage, tag="label_sync", frozen=True, kw_only=True):
    """A swarm label was created, changed or deleted."""

    label_id: Annotated[UUID, Meta(description="Hive label id.")]
    project_id: Annotated[
        UUID | None, Meta(description="Swarm project, or null for organization-wide.")
    ] = None
    name: Annotated[Name, Meta(description="Label name.")]
    icon: Annotated[ShortText, Meta(description="Icon name.")] = ""
    color: Annotated[ShortText, Meta(description="Colour.")] = ""
    version: Annotated[Count, Meta(description="Label version; higher wins.")]
    is_deleted: Annotated[bool, Meta(description="The label was deleted.")] = False


class ErrorMessage(_HiveMessage, tag="error", frozen=True, kw_only=True):
    """Something the node sent could not be handled (or authentication failed)."""

    code: Annotated[Identifier, Meta(description="Machine-readable code (`ErrorCode`).")]
    message: Annotated[Text, Meta(description="Human-readable message naming the problem.")]
    ref: Annotated[
        Identifier | None,
        Meta(description="What it refers to: a message type, a field path, an id."),
    ] = None


HiveMessage: TypeAlias = (
    AuthResult
    | HeartbeatAck
    | TaskAssign
    | LeaseGrant
    | LeaseRevoked
    | TaskCancel
    | OpAck
    | OpRejected
    | DigestResult
    | Activity
    | ActivitySkipped
    | ResyncRequired
    | ProjectSync
    | NodeStatusChanged
    | NodeRemoved
    | LabelSync
    | ErrorMessage
)
"""Every message the hive may send (tagged union, tag field ``type``)."""
