"""Anti-entropy (DESIGN.md §6): compare a node's bucketed digest with the hive's tasks."""

from __future__ import annotations

import uuid

import asyncpg

from vk_hive.store.repositories import op_log, shared_tasks
from vk_shared.digest import bucket_of, compute_buckets, mismatched_buckets
from vk_shared.protocol import MAX_DIGEST_PULL_ENTITIES
from vk_shared.wire import Digest, DigestResult

__all__ = ["digest_result"]


async def digest_result(
    conn: asyncpg.Connection, node_id: uuid.UUID, digest: Digest
) -> DigestResult:
    """Buckets over (task id, version) of the live tasks in the projects the node links; the
    mismatched buckets, the hive's task ids in them, and where the node must resend from."""
    entries = await shared_tasks.list_versions_for_linked_projects(conn, node_id)
    ours = compute_buckets(entries, digest.bucket_count)
    mismatched = mismatched_buckets(ours, digest.buckets)
    wanted = set(mismatched)
    pull = sorted(
        task_id for task_id, _ in entries if bucket_of(task_id, digest.bucket_count) in wanted
    )[:MAX_DIGEST_PULL_ENTITIES]
    applied = await op_log.get_applied_through(conn, node_id)
    resend = applied + 1 if digest.last_seq > applied else None
    return DigestResult(resend_from_seq=resend, pull_entities=pull, mismatched_buckets=mismatched)
