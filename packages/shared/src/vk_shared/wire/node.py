"""Messages a node sends to the hive (the :data:`NodeMessage` union, tag field ``type``)."""

from __future__ import annotations

from typing import Annotated, TypeAlias
from uuid import UUID

from msgspec import Meta

from vk_shared.protocol import (
    DIGEST_BUCKETS,
    MAX_ASSIGNMENT_IDS,
    MAX_DIGEST_BUCKETS,
    MAX_OPS_PER_BATCH,
)
from vk_shared.status import NodeStatus
from vk_shared.wire.common import (
    ActivityCursor,
    BranchName,
    Count,
    Identifier,
    LocalProjectInfo,
    Name,
    NodeCapabilities,
    Seq,
    Text,
    WireStruct,
)
from vk_shared.wire.ops import OutboxOp

__all__ = [
    "Auth",
    "Deregister",
    "Digest",
    "DigestBucket",
    "Heartbeat",
    "LeaseRenew",
    "LinkProject",
    "NodeMessage",
    "OpBatch",
    "ProjectsSync",
    "UnlinkProject",
]

DigestHash = Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]


class _NodeMessage(WireStruct, frozen=True, tag_field="type"):
    """Base of node → hive messages."""


class Auth(_NodeMessage, tag="auth", frozen=True, kw_only=True):
    """First frame of every connection: who the node is and where it left off."""

    api_key: Annotated[
        str, Meta(min_length=1, max_length=512, description="Node API key (secret).")
    ]
    machine_id: Annotated[
        Identifier,
        Meta(
            description="Id of this node instance (generated once per node data dir). "
            "Metadata: the API key decides which node the connection is."
        ),
    ]
    name: Annotated[Name, Meta(description="Node name (default: hostname).")]
    capabilities: Annotated[NodeCapabilities, Meta(description="What the node can run.")]
    public_url: Annotated[
        Text | None, Meta(description="URL where users can reach the node, if any.")
    ] = None
    protocol_version: Annotated[
        int, Meta(ge=1, le=65535, description="Protocol version the node speaks.")
    ]
    activity_cursors: Annotated[
        list[ActivityCursor],
        Meta(max_length=10_000, description="Last applied activity seq per linked project."),
    ] = []
    last_acked_seq: Annotated[
        Seq,
        Meta(
            description="Highest outbox seq the node has seen acked (0 = none); where the "
            "hive starts the op sequence of a new node instance."
        ),
    ] = 0
    features: Annotated[
        list[Identifier],
        Meta(
            max_length=64,
            description="Optional behaviours the node supports (`ack_tasks`: take task ids and "
            "versions from `op_ack.tasks`, no echo of its own ops' events). Unknown names are "
            "ignored.",
        ),
    ] = []

    def __repr__(self) -> str:
        # The API key is a secret: keep it out of logs and tracebacks.
        return (
            f"Auth(api_key='***', machine_id={self.machine_id!r}, name={self.name!r}, "
            f"protocol_version={self.protocol_version!r})"
        )


class Heartbeat(_NodeMessage, tag="heartbeat", frozen=True, kw_only=True):
    """Periodic liveness and load report."""

    status: Annotated[NodeStatus, Meta(description="Node status.")]
    running: Annotated[Count, Meta(description="Attempts running now.")]
    capacity: Annotated[Count, Meta(description="Attempts the node could start now.")]


class ProjectsSync(_NodeMessage, tag="projects_sync", frozen=True, kw_only=True):
    """The node's full local project inventory (replaces the previous one)."""

    projects: Annotated[
        list[LocalProjectInfo], Meta(max_length=10_000, description="All local projects.")
    ] = []


class LinkProject(_NodeMessage, tag="link_project", frozen=True, kw_only=True):
    """Link a local project to a swarm project of the node's organization."""

    project_id: Annotated[UUID, Meta(description="Swarm project id.")]
    local_project_id: Annotated[UUID, Meta(description="Local project id.")]
    git_repo_path: Annotated[Text, Meta(description="Repository path on the node.")]
    default_branch: Annotated[BranchName, Meta(description="Default base branch.")] = "main"


class UnlinkProject(_NodeMessage, tag="unlink_project", frozen=True, kw_only=True):
    """Remove the node's link to a swarm project."""

    project_id: Annotated[UUID, Meta(description="Swarm project id.")]


class OpBatch(_NodeMessage, tag="op_batch", frozen=True, kw_only=True):
    """Outbox ops in ascending ``seq`` order; answered by ``op_ack`` (and maybe rejections)."""

    ops: Annotated[
        list[OutboxOp],
        Meta(min_length=1, max_length=MAX_OPS_PER_BATCH, description="Ops, ascending seq."),
    ]


class LeaseRenew(_NodeMessage, tag="lease_renew", frozen=True, kw_only=True):
    """Renew the leases of assignments the node holds; each renewal is a ``lease_grant``."""

    assignment_ids: Annotated[
        list[UUID],
        Meta(min_length=1, max_length=MAX_ASSIGNMENT_IDS, description="Assignments to renew."),
    ]


class DigestBucket(WireStruct, frozen=True, kw_only=True):
    """Summary of the tasks whose id hashes into one bucket (see ``vk_shared.digest``)."""

    bucket: Annotated[
        int, Meta(ge=0, lt=MAX_DIGEST_BUCKETS, description="Bucket index (< bucket_count).")
    ]
    count: Annotated[Count, Meta(description="Number of tasks in the bucket.")]
    hash: Annotated[DigestHash, Meta(description="SHA-256 (hex) over the bucket's entries.")]


class Digest(_NodeMessage, tag="digest", frozen=True, kw_only=True):
    """Anti-entropy summary of the node's hive-known tasks; answered by ``digest_result``."""

    bucket_count: Annotated[
        int, Meta(ge=1, le=MAX_DIGEST_BUCKETS, description="Buckets the ids are hashed into.")
    ] = DIGEST_BUCKETS
    buckets: Annotated[
        list[DigestBucket],
        Meta(max_length=MAX_DIGEST_BUCKETS, description="Non-empty buckets; absent = empty."),
    ] = []
    last_seq: Annotated[Seq, Meta(description="Highest outbox seq the node has written.")]

    def __post_init__(self) -> None:
        seen: set[int] = set()
        for entry in self.buckets:
            if entry.bucket >= self.bucket_count:
                raise ValueError(f"bucket {entry.bucket} is not below bucket_count")
            if entry.bucket in seen:
                raise ValueError(f"bucket {entry.bucket} is listed twice")
            seen.add(entry.bucket)


class Deregister(_NodeMessage, tag="deregister", frozen=True, kw_only=True):
    """The node leaves the swarm for good (the hive deletes it)."""

    reason: Annotated[Text | None, Meta(description="Why it leaves.")] = None


NodeMessage: TypeAlias = (
    Auth
    | Heartbeat
    | ProjectsSync
    | LinkProject
    | UnlinkProject
    | OpBatch
    | LeaseRenew
    | Digest
    | Deregister
)
"""Every message a node may send (tagged union, tag field ``type``)."""
