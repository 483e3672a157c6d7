"""Supporting repositories: merges, labels, templates, images, activity, drafts, queued
messages, activity cursors, cached nodes and webhooks."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from vk_node.store import Conflict, Store
from vk_node.store.repositories import (
    activity,
    cached_nodes,
    drafts,
    images,
    labels,
    merges,
    queued_messages,
    shared_activity_cursors,
    tasks,
    templates,
    webhooks,
)
from vk_shared.status import NodeTaskStatus

from . import _seed


@pytest.mark.asyncio
async def test_merges_direct_pr_and_row_check(store: Store) -> None:
    """Direct and PR merges are stored; the PR monitor closes PRs; the row CHECK holds."""
    async with store.transaction() as conn:
        _, _, a, _ = await _seed.world(conn, linked=False)
        await merges.create_direct(conn, a.id, "main", "abc1234")
        pr = await merges.create_pr(conn, a.id, "main", 7, "https://x/pr/7")
        assert [m.id for m in await merges.get_open_prs(conn)] == [pr.id]
        merged = await merges.update_status(
            conn, pr.id, "merged", merge_commit_sha="def5678", merged_at=datetime.now(UTC)
        )
        assert merged.pr_status == "merged"
        assert await merges.get_open_prs(conn) == []
        latest = await merges.find_latest_by_task_attempt_id(conn, a.id)
        assert latest is not None
        assert latest.id == pr.id
        with pytest.raises(sqlite3.IntegrityError):
            await conn.execute(
                "INSERT INTO merges (id, task_attempt_id, merge_type, target_branch_name) "
                "VALUES (?, ?, 'direct', 'main')",
                (uuid4().bytes, a.id.bytes),
            )


@pytest.mark.asyncio
async def test_labels_task_labels_and_hive_version_rule(store: Store) -> None:
    """Task labels are replaced wholesale; a hive label applies only with a higher version."""
    shared = uuid4()
    async with store.transaction() as conn:
        p = await _seed.project(conn, linked=False)
        t = await _seed.task(conn, p)
        g = await labels.create(conn, uuid4(), name="global")
        own = await labels.create(conn, uuid4(), name="own", project_id=p.id)
        assert [x.name for x in await labels.find_for_project(conn, p.id)] == ["global", "own"]
        await labels.set_task_labels(conn, t.id, [g.id, own.id, g.id])
        assert [x.name for x in await labels.find_by_task_id(conn, t.id)] == ["global", "own"]
        await labels.set_task_labels(conn, t.id, [own.id])
        assert [x.name for x in await labels.find_by_task_id(conn, t.id)] == ["own"]
        v2 = await labels.upsert_from_hive(
            conn, shared_label_id=shared, name="hive", icon="i", color="#000", version=2
        )
        old = await labels.upsert_from_hive(
            conn, shared_label_id=shared, name="older", icon="i", color="#000", version=1
        )
        assert (old.id, old.name) == (v2.id, "hive")
        new = await labels.upsert_from_hive(
            conn, shared_label_id=shared, name="newer", icon="i", color="#fff", version=3
        )
        assert (new.id, new.name, new.version) == (v2.id, "newer", 3)
        assert new.synced_at is not None
        assert (await labels.update(conn, g.id, name="g2", icon="tag", color="#1")).version == 2


@pytest.mark.asyncio
async def test_templates_reject_spaces_and_empty_content(store: Store) -> None:
    """Template names cannot contain whitespace and content cannot be empty."""
    async with store.transaction() as conn:
        ok = await templates.create(conn, uuid4(), template_name="review", content="Review it")
        with pytest.raises(Conflict):
            await templates.create(conn, uuid4(), template_name="two words", content="x")
        with pytest.raises(Conflict):
            await templates.create(conn, uuid4(), template_name="empty", content="")
        await templates.update(conn, ok.id, template_name="review2", content="y")
        assert [x.template_name for x in await templates.find_all(conn)] == ["review2"]


@pytest.mark.asyncio
async def test_images_dedup_and_orphans(store: Store) -> None:
    """Images dedup by hash, associate once per task, and become orphans when unlinked."""
    async with store.transaction() as conn:
        p = await _seed.project(conn, linked=False)
        t = await _seed.task(conn, p)
        img = await images.create(conn, file_path="a.png", original_name="a.png", hash="h1")
        again = await images.create(conn, file_path="b.png", original_name="b.png", hash="h1")
        assert again.id == img.id
        await images.associate(conn, t.id, [img.id, img.id])
        assert [x.id for x in await images.find_by_task_id(conn, t.id)] == [img.id]
        assert await images.find_orphaned_images(conn) == []
        await images.delete_by_task_id(conn, t.id)
        assert [x.id for x in await images.find_orphaned_images(conn)] == [img.id]


@pytest.mark.asyncio
async def test_activity_feed_and_dismissals(store: Store) -> None:
    """The feed lists in-review and running tasks; dismissals hide them until a status change."""
    async with store.transaction() as conn:
        p = await _seed.project(conn, linked=False)
        review = await _seed.task(conn, p, title="review")
        await tasks.update_status(conn, review.id, NodeTaskStatus.INREVIEW)
        running = await _seed.task(conn, p, title="running")
        await tasks.update_status(conn, running.id, NodeTaskStatus.INPROGRESS)
        await _seed.process(conn, await _seed.attempt(conn, running))
        await _seed.task(conn, p, title="todo")
        assert {x.title for x in await activity.feed(conn)} == {"review", "running"}
        await activity.dismiss(conn, review.id)
        await activity.dismiss(conn, review.id)
        assert await activity.is_dismissed(conn, review.id)
        assert {x.title for x in await activity.feed(conn)} == {"running"}
        assert (await activity.counts(conn)).dismissed == 1
        await tasks.update_status(conn, review.id, NodeTaskStatus.DONE)
        assert not await activity.is_dismissed(conn, review.id)
        assert {x.title for x in await activity.feed(conn)} == {"review", "running"}


@pytest.mark.asyncio
async def test_drafts_versions_queue_and_send(store: Store) -> None:
    """Drafts bump versions, queue only with a prompt, and one sender claims a queued draft."""
    async with store.transaction() as conn:
        _, _, a, _ = await _seed.world(conn, linked=False)
        d = await drafts.upsert(conn, a.id, "follow_up", prompt="  ")
        assert d.version == 1
        assert not await drafts.set_queued(conn, a.id, "follow_up", True)  # blank prompt
        img = uuid4()
        d = await drafts.update_partial(conn, a.id, "follow_up", prompt="go", image_ids=[img])
        assert d is not None
        assert (d.version, d.image_ids) == (2, [img])
        assert not await drafts.set_queued(conn, a.id, "follow_up", True, expected_version=1)
        assert await drafts.set_queued(conn, a.id, "follow_up", True, expected_version=2)
        assert await drafts.try_mark_sending(conn, a.id, "follow_up")
        assert not await drafts.try_mark_sending(conn, a.id, "follow_up")
        await drafts.clear_after_send(conn, a.id, "follow_up")
        d = await drafts.find_by_task_attempt_and_type(conn, a.id, "follow_up")
        assert d is not None
        assert (d.prompt, d.queued, d.sending) == ("", False, False)


@pytest.mark.asyncio
async def test_queued_messages_keep_dense_positions(store: Store) -> None:
    """Messages append at the end, removal closes gaps, reorder and pop follow positions; the
    attempts with messages are listed once each."""
    async with store.transaction() as conn:
        _, _, a, _ = await _seed.world(conn, linked=False)
        assert await queued_messages.attempts_with_messages(conn) == []
        m = [await queued_messages.add(conn, a.id, f"m{i}") for i in range(4)]
        assert await queued_messages.attempts_with_messages(conn) == [a.id]
        assert [x.position for x in m] == [0, 1, 2, 3]
        await queued_messages.remove(conn, m[1].id)
        listed = await queued_messages.list_messages(conn, a.id)
        assert [(x.content, x.position) for x in listed] == [("m0", 0), ("m2", 1), ("m3", 2)]
        await queued_messages.reorder(conn, a.id, [m[3].id, m[0].id, m[2].id])
        popped = await queued_messages.pop_next(conn, a.id)
        assert popped is not None
        assert popped.content == "m3"
        listed = await queued_messages.list_messages(conn, a.id)
        assert [(x.content, x.position) for x in listed] == [("m0", 0), ("m2", 1)]


@pytest.mark.asyncio
async def test_activity_cursor_never_moves_back(store: Store) -> None:
    """The per-project activity cursor only advances."""
    remote = uuid4()
    async with store.transaction() as conn:
        assert await shared_activity_cursors.upsert(conn, remote, 5) == 5
        assert await shared_activity_cursors.upsert(conn, remote, 3) == 5
        assert await shared_activity_cursors.upsert(conn, remote, 9) == 9
        assert [c.last_seq for c in await shared_activity_cursors.list_all(conn)] == [9]


@pytest.mark.asyncio
async def test_cached_nodes_upsert_and_stale_removal(store: Store) -> None:
    """Cached nodes are upserted from hive pushes and pruned against a snapshot."""
    org = uuid4()
    now = datetime.now(UTC)
    async with store.transaction() as conn:
        ids = [uuid4(), uuid4()]
        for i, node_id in enumerate(ids):
            await cached_nodes.upsert(
                conn, node_id=node_id, organization_id=org, name=f"n{i}", machine_id=f"m{i}",
                status="online", capabilities={"executors": ["SCRIPT"]}, public_url=None,
                last_heartbeat_at=now, connected_at=now, disconnected_at=None,
                created_at=now, updated_at=now,
            )  # fmt: skip
        assert await cached_nodes.remove_stale(conn, org, [ids[0]]) == 1
        (kept,) = await cached_nodes.list_for_organization(conn, org)
        assert (kept.id, kept.status) == (ids[0], "online")


@pytest.mark.asyncio
async def test_webhooks_applicable_with_override(store: Store) -> None:
    """Applicable hooks are the project's plus globals, unless a project hook overrides them."""
    async with store.transaction() as conn:
        p = await _seed.project(conn, linked=False)
        g = await webhooks.create(conn, uuid4(), name="g", url="https://g")
        ph = await webhooks.create(conn, uuid4(), name="p", url="https://p", project_id=p.id)
        await webhooks.create(conn, uuid4(), name="off", url="https://o", active=False)
        applicable = await webhooks.find_applicable(conn, p.id, "executor_finish")
        assert {h.id for h in applicable} == {g.id, ph.id}
        assert applicable[0].headers == {}
        await webhooks.update(
            conn, ph.id, name="p", url="https://p", events=["executor_finish"], headers={},
            secret=None, payload_template=None, override_global=True, active=True,
        )  # fmt: skip
        assert [h.id for h in await webhooks.find_applicable(conn, p.id, "executor_finish")] == [
            ph.id
        ]
        assert await webhooks.find_applicable(conn, p.id, "other_event") == []
