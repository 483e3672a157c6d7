"""Messages of the user activity stream ``GET /v1/ws`` (browsers and API clients).

JSON text frames, one message each, tagged by ``type`` like the node protocol. The hive sends
:data:`UserServerMessage`, a client sends :data:`UserClientMessage` (decode them with
:mod:`vk_shared.codec`). A session is bound to one organization. Where a message has the same
shape as a message of the node channel it is the same Struct (``activity``, ``resync_required``,
``node_status``, ``error``), so one encoder serves both channels.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias
from uuid import UUID

from msgspec import Meta

from vk_shared.protocol import MAX_LOG_CONTENT_BYTES, MAX_NAME_LENGTH, MAX_USER_LOG_LINES
from vk_shared.wire.common import AwareDatetime, Count, Seq, WireStruct
from vk_shared.wire.hive import Activity, ErrorMessage, NodeStatusChanged, ResyncRequired

__all__ = [
    "FollowLogs",
    "Hello",
    "LogLine",
    "LogLines",
    "Ping",
    "Pong",
    "ProjectCursor",
    "Subscribe",
    "UnfollowLogs",
    "UserClientMessage",
    "UserServerMessage",
]


class _UserMessage(WireStruct, frozen=True, tag_field="type"):
    """Base of the user stream's own messages."""


class ProjectCursor(WireStruct, frozen=True, kw_only=True):
    """A swarm project of the organization and where its activity stream stands."""

    project_id: Annotated[UUID, Meta(description="Swarm project id.")]
    latest_seq: Annotated[
        Seq, Meta(description="Seq of the project's latest event (0 = none yet).")
    ]


class Hello(_UserMessage, tag="hello", frozen=True, kw_only=True):
    """First frame of a session: who it is bound to. The activity of every listed project (and
    of projects created later) streams live after each project's ``latest_seq``."""

    organization_id: Annotated[UUID, Meta(description="Organization the session is bound to.")]
    user_id: Annotated[UUID, Meta(description="The authenticated user.")]
    projects: Annotated[
        list[ProjectCursor],
        Meta(max_length=100_000, description="Every swarm project of the organization."),
    ] = []


class LogLine(WireStruct, frozen=True, kw_only=True):
    """One output line of an execution process as the hive stored it."""

    id: Annotated[Count, Meta(description="Hive log row id; increases within a process.")]
    output_type: Annotated[
        str, Meta(max_length=MAX_NAME_LENGTH, description="Stream it came from, e.g. `stdout`.")
    ]
    content: Annotated[str, Meta(max_length=MAX_LOG_CONTENT_BYTES, description="Captured text.")]
    timestamp: Annotated[AwareDatetime, Meta(description="When the node captured it.")]


class LogLines(_UserMessage, tag="log_lines", frozen=True, kw_only=True):
    """New lines of a followed execution process, in id order, never sent twice."""

    execution_process_id: Annotated[UUID, Meta(description="Execution process id.")]
    lines: Annotated[
        list[LogLine], Meta(max_length=MAX_USER_LOG_LINES, description="Lines in id order.")
    ] = []


class Ping(_UserMessage, tag="ping", frozen=True, kw_only=True):
    """Either side may send it: the hive answers a client's with ``pong``; a client may ignore
    the hive's."""


class Pong(_UserMessage, tag="pong", frozen=True, kw_only=True):
    """The answer to a client's ``ping``."""


class Subscribe(_UserMessage, tag="subscribe", frozen=True, kw_only=True):
    """Replay a project of the organization from after ``after``, then stream it live (resume
    after a reconnect). A cursor older than retention is answered with ``resync_required``."""

    project_id: Annotated[UUID, Meta(description="Swarm project id.")]
    after: Annotated[Seq, Meta(description="Last seq the client has (0 = from the start).")] = 0


class FollowLogs(_UserMessage, tag="follow_logs", frozen=True, kw_only=True):
    """Stream an execution process's lines: the ones after ``after_id``, then new ones as the
    hive receives them."""

    execution_process_id: Annotated[UUID, Meta(description="Execution process id.")]
    after_id: Annotated[
        Count, Meta(description="Last line id the client has (0 = from the start).")
    ] = 0


class UnfollowLogs(_UserMessage, tag="unfollow_logs", frozen=True, kw_only=True):
    """Stop streaming an execution process's lines."""

    execution_process_id: Annotated[UUID, Meta(description="Execution process id.")]


UserServerMessage: TypeAlias = (
    Hello | Activity | ResyncRequired | NodeStatusChanged | LogLines | ErrorMessage | Ping | Pong
)
"""Every message the hive sends on ``/v1/ws`` (tagged union, tag field ``type``)."""

UserClientMessage: TypeAlias = Subscribe | FollowLogs | UnfollowLogs | Ping
"""Every message a client may send on ``/v1/ws`` (tagged union, tag field ``type``)."""
