"""Wire types of the node ↔ hive control channel.

``NodeMessage`` / ``HiveMessage`` are the two flat tagged unions (tag field ``type``); decode them
with :mod:`vk_shared.codec`. ``OpPayload`` is the tagged union (tag field ``op_type``) carried by
each :class:`OutboxOp` of an ``op_batch``. ``UserServerMessage`` / ``UserClientMessage`` are the
unions of the user activity stream ``/v1/ws`` (:mod:`vk_shared.wire.user`).
"""

from __future__ import annotations

from typing import get_args

import msgspec

from vk_shared.wire.common import (
    ActivityCursor,
    LinkedProjectInfo,
    LocalProjectInfo,
    NodeCapabilities,
    SwarmLabelInfo,
    TaskDetails,
    WireStruct,
)
from vk_shared.wire.hive import (
    AckedTask,
    Activity,
    ActivityEventType,
    ActivitySkipped,
    AuthResult,
    DigestResult,
    ErrorCode,
    ErrorMessage,
    HeartbeatAck,
    HiveMessage,
    LabelSync,
    LeaseGrant,
    LeaseRevoked,
    NodeRemoved,
    NodeStatusChanged,
    OpAck,
    OpRejected,
    ProjectSync,
    RejectCode,
    ResyncRequired,
    TaskAssign,
    TaskCancel,
)
from vk_shared.wire.node import (
    Auth,
    Deregister,
    Digest,
    DigestBucket,
    Heartbeat,
    LeaseRenew,
    LinkProject,
    NodeMessage,
    OpBatch,
    ProjectsSync,
    UnlinkProject,
)
from vk_shared.wire.ops import (
    AssignmentStatus,
    AttemptUpsert,
    ExecutionUpsert,
    LabelUpsert,
    LogEntry,
    LogsAppend,
    OpPayload,
    OpType,
    OutboxOp,
    OutputType,
    ProcessStatus,
    ProgressAppend,
    ProgressEventType,
    TaskUpsert,
)
from vk_shared.wire.user import (
    FollowLogs,
    Hello,
    LogLine,
    LogLines,
    Ping,
    Pong,
    ProjectCursor,
    Subscribe,
    UnfollowLogs,
    UserClientMessage,
    UserServerMessage,
)

__all__ = [
    "HIVE_MESSAGE_TYPES",
    "NODE_MESSAGE_TYPES",
    "OP_PAYLOAD_TYPES",
    "USER_CLIENT_MESSAGE_TYPES",
    "USER_SERVER_MESSAGE_TYPES",
    "AckedTask",
    "Activity",
    "ActivityCursor",
    "ActivityEventType",
    "ActivitySkipped",
    "AssignmentStatus",
    "AttemptUpsert",
    "Auth",
    "AuthResult",
    "Deregister",
    "Digest",
    "DigestBucket",
    "DigestResult",
    "ErrorCode",
    "ErrorMessage",
    "ExecutionUpsert",
    "FollowLogs",
    "Heartbeat",
    "HeartbeatAck",
    "Hello",
    "HiveMessage",
    "LabelSync",
    "LabelUpsert",
    "LeaseGrant",
    "LeaseRenew",
    "LeaseRevoked",
    "LinkProject",
    "LinkedProjectInfo",
    "LocalProjectInfo",
    "LogEntry",
    "LogLine",
    "LogLines",
    "LogsAppend",
    "NodeCapabilities",
    "NodeMessage",
    "NodeRemoved",
    "NodeStatusChanged",
    "OpAck",
    "OpBatch",
    "OpPayload",
    "OpRejected",
    "OpType",
    "OutboxOp",
    "OutputType",
    "Ping",
    "Pong",
    "ProcessStatus",
    "ProgressAppend",
    "ProgressEventType",
    "ProjectCursor",
    "ProjectSync",
    "ProjectsSync",
    "RejectCode",
    "ResyncRequired",
    "Subscribe",
    "SwarmLabelInfo",
    "TaskAssign",
    "TaskCancel",
    "TaskDetails",
    "TaskUpsert",
    "UnfollowLogs",
    "UnlinkProject",
    "UserClientMessage",
    "UserServerMessage",
    "WireStruct",
    "tag_of",
]

NODE_MESSAGE_TYPES: tuple[type[WireStruct], ...] = get_args(NodeMessage)
"""Every member of :data:`NodeMessage`, in declaration order."""

HIVE_MESSAGE_TYPES: tuple[type[WireStruct], ...] = get_args(HiveMessage)
"""Every member of :data:`HiveMessage`, in declaration order."""

OP_PAYLOAD_TYPES: tuple[type[WireStruct], ...] = get_args(OpPayload)
"""Every member of :data:`OpPayload`, in declaration order."""


USER_SERVER_MESSAGE_TYPES: tuple[type[WireStruct], ...] = get_args(UserServerMessage)
"""Every member of :data:`UserServerMessage`, in declaration order."""

USER_CLIENT_MESSAGE_TYPES: tuple[type[WireStruct], ...] = get_args(UserClientMessage)
"""Every member of :data:`UserClientMessage`, in declaration order."""


def tag_of(struct: type[msgspec.Struct] | msgspec.Struct) -> str:
    """The tag (``type`` / ``op_type`` value) of a tagged Struct class or instance."""
    cls = struct if isinstance(struct, type) else type(struct)
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str):
        raise TypeError(f"{cls.__name__} is not a tagged wire struct")
    return tag
