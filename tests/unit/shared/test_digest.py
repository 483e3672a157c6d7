"""Bucketed anti-entropy digests (vk_shared.digest)."""

from __future__ import annotations

import uuid

from vk_shared.digest import bucket_of, compute_buckets, mismatched_buckets

ENTRIES = [(uuid.UUID(int=i * 7919 + 13), i % 5) for i in range(200)]


def test_buckets_do_not_depend_on_input_order() -> None:
    """Node and hive get identical buckets whatever order they list their tasks in."""
    assert compute_buckets(ENTRIES) == compute_buckets(list(reversed(ENTRIES)))


def test_buckets_cover_every_entry_once() -> None:
    """Counts add up to the number of tasks and only non-empty buckets are listed, in order."""
    buckets = compute_buckets(ENTRIES, 16)
    assert sum(b.count for b in buckets) == len(ENTRIES)
    assert [b.bucket for b in buckets] == sorted({bucket_of(t, 16) for t, _ in ENTRIES})


def test_a_version_change_flags_exactly_its_bucket() -> None:
    """Changing one task's version (or dropping it) mismatches only that task's bucket."""
    ours = compute_buckets(ENTRIES)
    task, version = ENTRIES[42]
    changed = compute_buckets([*ENTRIES[:42], (task, version + 1), *ENTRIES[43:]])
    dropped = compute_buckets([*ENTRIES[:42], *ENTRIES[43:]])
    assert mismatched_buckets(ours, changed) == [bucket_of(task)]
    assert mismatched_buckets(ours, dropped) == [bucket_of(task)]
    assert mismatched_buckets(ours, compute_buckets(ENTRIES)) == []


def test_a_missing_bucket_counts_as_empty() -> None:
    """A bucket present on one side only is reported; two empty digests match."""
    ours = compute_buckets(ENTRIES[:1])
    assert mismatched_buckets(ours, []) == [ours[0].bucket]
    assert mismatched_buckets([], []) == []
