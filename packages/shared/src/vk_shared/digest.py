"""Bucketed task digests for anti-entropy (DESIGN.md §6).

Both sides hash the same ``(shared task id, version)`` pairs the same way, so a converged node and
hive produce identical buckets and a ``digest`` names only the buckets that differ. A bucket is
``sha256(task_id.bytes)`` modulo the bucket count; a bucket's hash is SHA-256 over its entries
sorted by id, one ``"<uuid>:<version>\\n"`` line each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from uuid import UUID

from vk_shared.protocol import DIGEST_BUCKETS
from vk_shared.wire.node import DigestBucket

__all__ = ["bucket_of", "compute_buckets", "mismatched_buckets"]


def bucket_of(task_id: UUID, bucket_count: int = DIGEST_BUCKETS) -> int:
    """The bucket a task id falls into."""
    if bucket_count < 1:
        raise ValueError("bucket_count must be positive")
    digest = hashlib.sha256(task_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") % bucket_count


def compute_buckets(
    entries: Iterable[tuple[UUID, int]], bucket_count: int = DIGEST_BUCKETS
) -> list[DigestBucket]:
    """The non-empty buckets over ``(task id, version)`` pairs, ordered by bucket index."""
    grouped: dict[int, list[tuple[UUID, int]]] = {}
    for task_id, version in entries:
        grouped.setdefault(bucket_of(task_id, bucket_count), []).append((task_id, version))
    result = []
    for index in sorted(grouped):
        rows = sorted(grouped[index])
        hasher = hashlib.sha256()
        for task_id, version in rows:
            hasher.update(f"{task_id}:{version}\n".encode())
        result.append(DigestBucket(bucket=index, count=len(rows), hash=hasher.hexdigest()))
    return result


def mismatched_buckets(ours: Sequence[DigestBucket], theirs: Sequence[DigestBucket]) -> list[int]:
    """Indexes of buckets whose count or hash differ (absent = empty), ascending."""
    mine: Mapping[int, tuple[int, str]] = {b.bucket: (b.count, b.hash) for b in ours}
    other: Mapping[int, tuple[int, str]] = {b.bucket: (b.count, b.hash) for b in theirs}
    return sorted(i for i in mine.keys() | other.keys() if mine.get(i) != other.get(i))
