"""Constrained scalar types, base classes and structures shared by both directions.

Wire conventions (all messages):

* Every frame is one Struct of a flat tagged union; the tag field is ``type``.
* Structs are frozen and keyword-only. Fields the receiver does not know are **ignored**
  (``forbid_unknown_fields=False``) so a newer peer may add optional fields; an unknown ``type`` tag
  is rejected. Every field added after v1 must have a default; tags are never reused.
* UUIDs are hyphenated strings (JSON) / strings (msgpack). Timestamps must carry a timezone
  (naive timestamps are rejected); senders use UTC. Durations are relative milliseconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta

from vk_shared.protocol import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TASK_TEXT_BYTES,
    MAX_TEXT_LENGTH,
)

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "ActivityCursor",
    "AwareDatetime",
    "BranchName",
    "Count",
    "Description",
    "ExecutorName",
    "FencingToken",
    "Identifier",
    "JsonObject",
    "LinkedProjectInfo",
    "LocalProjectInfo",
    "Name",
    "NodeCapabilities",
    "PositiveMillis",
    "Seq",
    "ShortText",
    "SwarmLabelInfo",
    "TaskDetails",
    "Text",
    "Title",
    "WireStruct",
]

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

# --- constrained scalars ---------------------------------------------------------------------

Count = Annotated[int, Meta(ge=0, le=INT64_MAX)]
"""A non-negative 64-bit integer (counts, versions, ids of log rows)."""

Seq = Annotated[int, Meta(ge=0, le=INT64_MAX)]
"""A position in a sequence (outbox seq, activity seq); 0 means "nothing yet"."""

FencingToken = Annotated[int, Meta(ge=1, le=INT64_MAX)]
"""A lease fencing token; strictly increasing per hive."""

PositiveMillis = Annotated[int, Meta(ge=1, le=INT32_MAX)]
"""A relative duration in milliseconds (never an absolute time)."""

AwareDatetime = Annotated[datetime, Meta(tz=True)]
"""A timestamp with a timezone (RFC 3339); naive timestamps are rejected."""

Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
"""A short non-empty human-readable name."""

ShortText = Annotated[str, Meta(max_length=MAX_NAME_LENGTH)]
"""A short string that may be empty (os, arch, colours, icons)."""

BranchName = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
"""A git branch name."""

Identifier = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH)]
"""An opaque non-UUID identifier (machine id, idempotency key, error code)."""

Text = Annotated[str, Meta(max_length=MAX_TEXT_LENGTH)]
"""Free-form text: reasons, messages, URLs, filesystem paths."""

Title = Annotated[str, Meta(min_length=1, max_length=MAX_TASK_TEXT_BYTES)]
"""A task title (the hive also caps title + description together)."""

Description = Annotated[str, Meta(max_length=MAX_TASK_TEXT_BYTES)]
"""A task description."""

ExecutorName = Annotated[str, Meta(pattern="^[A-Z][A-Z0-9_]{0,63}$")]
"""An executor profile name such as ``SCRIPT`` or ``CLAUDE_CODE``."""

JsonObject = dict[str, Any]
"""An arbitrary JSON object carried verbatim."""


class WireStruct(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False, omit_defaults=False
):
    """Base of every wire structure: immutable, keyword-only, tolerant of unknown fields."""


# --- shared structures -----------------------------------------------------------------------


class NodeCapabilities(WireStruct, frozen=True, kw_only=True):
    """What a node can run, reported in ``auth``."""

    executors: Annotated[
        list[ExecutorName],
        Meta(max_length=64, description="Executor profiles this node can run."),
    ] = []
    max_concurrent: Annotated[
        int, Meta(ge=1, le=1024, description="Most attempts the node runs at once.")
    ] = 1
    os: Annotated[ShortText, Meta(description="Operating system, e.g. `linux`.")] = ""
    arch: Annotated[ShortText, Meta(description="CPU architecture, e.g. `x86_64`.")] = ""
    version: Annotated[ShortText, Meta(description="vk-node version.")] = ""
    git_commit: Annotated[ShortText, Meta(description="vk-node build commit.")] = ""
    git_branch: Annotated[ShortText, Meta(description="vk-node build branch.")] = ""


class ActivityCursor(WireStruct, frozen=True, kw_only=True):
    """The last activity event a node applied for one swarm project."""

    project_id: Annotated[UUID, Meta(description="Swarm project id.")]
    seq: Annotated[Seq, Meta(description="Last applied per-project activity seq (0 = none).")]


class LocalProjectInfo(WireStruct, frozen=True, kw_only=True):
    """One local project of a node (its inventory, linked or not)."""

    local_project_id: Annotated[UUID, Meta(description="Project id in the node's database.")]
    name: Annotated[Name, Meta(description="Project name.")]
    git_repo_path: Annotated[Text, Meta(description="Repository path on the node.")]
    default_branch: Annotated[BranchName, Meta(description="Default base branch.")] = "main"


class LinkedProjectInfo(WireStruct, frozen=True, kw_only=True):
    """A link between a swarm project and a node's local project."""

    link_id: Annotated[UUID, Meta(description="Id of the link row on the hive.")]
    project_id: Annotated[UUID, Meta(description="Swarm project id.")]
    local_project_id: Annotated[UUID, Meta(description="Project id on the linked node.")]
    project_name: Annotated[Name, Meta(description="Swarm project name.")]
    git_repo_path: Annotated[Text, Meta(description="Repository path on the linked node.")]
    default_branch: Annotated[BranchName, Meta(description="Default base branch.")] = "main"
    source_node_id: Annotated[UUID, Meta(description="Node that holds the local project.")]
    source_node_name: Annotated[Name, Meta(description="Name of that node.")]
    source_node_public_url: Annotated[
        Text | None, Meta(description="Public URL of that node, if it has one.")
    ] = None
    is_owned: Annotated[bool, Meta(description="Whether that node owns the link.")] = True


class SwarmLabelInfo(WireStruct, frozen=True, kw_only=True):
    """A hive-managed label of the organization."""

    id: Annotated[UUID, Meta(description="Hive label id.")]
    name: Annotated[Name, Meta(description="Label name.")]
    icon: Annotated[ShortText, Meta(description="Icon name.")] = ""
    color: Annotated[ShortText, Meta(description="Colour, e.g. `#ff8800`.")] = ""
    version: Annotated[Count, Meta(description="Label version; higher wins.")] = 0


class TaskDetails(WireStruct, frozen=True, kw_only=True):
    """What a node needs to start an assigned task."""

    title: Annotated[Title, Meta(description="Task title.")]
    description: Annotated[Description | None, Meta(description="Task description.")] = None
    executor: Annotated[ExecutorName, Meta(description="Executor profile to run.")]
    executor_variant: Annotated[
        Name | None, Meta(description="Profile variant, e.g. a model name.")
    ] = None
    base_branch: Annotated[BranchName, Meta(description="Branch the attempt starts from.")]
