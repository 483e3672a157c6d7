"""Hive → node: activity applied to local tasks, the dirty guard, deletes, replay from the
cursor after a reconnect, resync from a snapshot, and a quiet digest when converged."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from support.node_link import Node, World, wait_for
from vk_node.link import HiveLink, activity
from vk_node.link.inbound import Pull
from vk_node.link.rest import SyncError
from vk_node.link.window import SendWindow
from vk_node.store import outbox
from vk_node.store.models import Task
from vk_node.store.repositories import cached_nodes as nodes_repo
from vk_node.store.repositories import shared_activity_cursors as cursors_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.status import NodeStatus, NodeTaskStatus
from vk_shared.wire import (
    AckedTask,
    Activity,
    ActivitySkipped,
    NodeStatusChanged,
    OpAck,
    OpRejected,
)


async def _hive_task(world: World, title: str, **extra: Any) -> dict[str, Any]:
    r = await world.http.post(
        "/v1/tasks",
        json={"project_id": str(world.swarm_project_id), "title": title, **extra},
    )
    assert r.status_code == 201, r.text
    return dict(r.json()["task"])


async def _local(node: Node, shared_id: str) -> Task | None:
    async with node.store.read() as conn:
        return await tasks_repo.find_by_shared_task_id(conn, uuid.UUID(shared_id))


async def _local_with(node: Node, shared_id: str, title: str) -> Task:
    async def probe() -> Task | None:
        task = await _local(node, shared_id)
        return task if task is not None and task.title == title else None

    return await wait_for(probe, what=f"local task {title!r}")


async def _known_to_hive(conn: Any, node: Node, shared: uuid.UUID, title: str) -> Task:
    """A local task as if the hive had sent it (version 1)."""
    return await tasks_repo.upsert_remote_task(
        conn,
        project_id=node.project_id,
        shared_task_id=shared,
        title=title,
        description=None,
        status=NodeTaskStatus.TODO,
        remote_version=1,
    )


def _activity(
    world: World, seq: int, payload: dict[str, Any], kind: str = "task.updated"
) -> Activity:
    """An activity event of the world's project, as the hive would send it."""
    return Activity(
        project_id=world.swarm_project_id,
        seq=seq,
        event_id=uuid.uuid4(),
        event_type=kind,
        created_at=datetime.now(UTC),
        payload=payload,
    )


async def _new_link(node: Node) -> None:
    """Start a new link on the node's store (its old one was closed)."""
    node.link = HiveLink(node.store, node.settings, node.executor)
    await node.link.start()
    await node.ready()


@pytest.mark.asyncio
async def test_hive_edits_and_deletes_reach_the_local_task(world: World) -> None:
    """A hive-created task appears locally, a REST edit updates it, a delete only unlinks it."""
    node = await world.node()
    await node.ready()
    hive_task = await _hive_task(world, "from the hive")
    await _local_with(node, hive_task["id"], "from the hive")
    r = await world.http.patch(f"/v1/tasks/{hive_task['id']}", json={"title": "edited on the hive"})
    assert r.status_code == 200, r.text
    local = await _local_with(node, hive_task["id"], "edited on the hive")
    assert local.remote_version >= 2
    r = await world.http.delete(f"/v1/tasks/{hive_task['id']}")
    assert r.status_code == 204, r.text

    async def unlinked() -> bool:
        async with node.store.read() as conn:
            row = await tasks_repo.find_by_id(conn, local.id)
        return row is not None and row.shared_task_id is None

    await wait_for(unlinked, what="the local task to be unlinked")


@pytest.mark.asyncio
async def test_the_dirty_guard_keeps_a_task_with_unacked_ops(world: World) -> None:
    """An event for a task that still has unacked ops leaves it unchanged; its cursor moves."""
    node = await world.node()
    await node.link.close()  # nothing gets sent or acked while we look
    swarm = world.swarm_project_id
    shared = uuid.uuid4()
    async with node.store.transaction() as conn:
        task = await _known_to_hive(conn, node, shared, "old")
        await tasks_repo.update(  # an unacked task.upsert op
            conn,
            task.id,
            title="local edit",
            description=None,
            status=NodeTaskStatus.TODO,
            parent_task_id=None,
        )
    event = Activity(
        project_id=swarm,
        seq=7,
        event_id=uuid.uuid4(),
        event_type="task.updated",
        created_at=datetime.now(UTC),
        payload={"task": {"id": str(shared), "title": "hive edit", "status": "todo", "version": 5}},
    )
    async with node.store.transaction() as conn:
        assert await activity.apply_activity(conn, event, None) == "dirty"
        cursor = await cursors_repo.get(conn, swarm)
        kept = await tasks_repo.get(conn, task.id)
    assert kept.title == "local edit"
    assert cursor is not None
    assert cursor.last_seq == 7


@pytest.mark.asyncio
async def test_reconnect_replays_only_missed_events_and_the_digest_then_asks_nothing(
    world: World,
) -> None:
    """After a reconnect the node gets exactly the events it missed (none twice); a digest of
    the converged node names nothing to resend or pull."""
    node = await world.node()
    await node.ready()
    first = await _hive_task(world, "one")
    await _local_with(node, first["id"], "one")
    await node.link.close()
    second = await _hive_task(world, "two")
    r = await world.http.patch(f"/v1/tasks/{first['id']}", json={"title": "one, edited"})
    assert r.status_code == 200, r.text
    await _new_link(node)
    await _local_with(node, second["id"], "two")
    await _local_with(node, first["id"], "one, edited")
    # The connect-time digest may pull the two tasks before their events are applied: wait for
    # the events themselves, then check that none came twice.

    async def both_events() -> bool:
        return node.link.stats.activity_applied + node.link.stats.activity_seen >= 2

    await wait_for(both_events, what="the two missed events")
    assert node.link.stats.activity_seen == 0
    assert node.link.stats.activity_applied == 2

    async def answered() -> Any:
        return node.link.stats.last_digest_result

    # The digest sent on connect went out before the missed events were applied; wait for its
    # answer first, so the answer read below is the one to the digest sent now.
    await wait_for(answered, what="the digest_result of the connect-time digest")
    node.link.stats.last_digest_result = None
    assert await node.link.send_digest()
    result = await wait_for(answered, what="the digest_result")
    assert result.resend_from_seq is None
    assert result.pull_entities == []
    assert result.mismatched_buckets == []


@pytest.mark.asyncio
async def test_resync_required_pulls_and_applies_a_snapshot(world: World) -> None:
    """A cursor the hive cannot replay from gets resync_required; the node applies the project
    snapshot (new tasks upserted, vanished ones unlinked) and continues from latest_seq."""
    node = await world.node()
    await node.ready()
    kept = await _hive_task(world, "kept")
    await _local_with(node, kept["id"], "kept")
    await node.link.close()
    stale_id = uuid.uuid4()
    async with node.store.transaction() as conn:
        stale = await _known_to_hive(conn, node, stale_id, "gone on the hive")
        await cursors_repo.delete(conn, world.swarm_project_id)
        await cursors_repo.upsert(conn, world.swarm_project_id, 1_000_000)
    added = await _hive_task(world, "added while away")
    await _new_link(node)

    async def resynced() -> bool:
        return node.link.stats.resyncs == 1

    await wait_for(resynced, what="the snapshot to be applied")
    await _local_with(node, added["id"], "added while away")
    async with node.store.read() as conn:
        gone = await tasks_repo.get(conn, stale.id)
        cursor = await cursors_repo.get(conn, world.swarm_project_id)
    assert gone.shared_task_id is None
    assert cursor is not None
    assert cursor.last_seq < 1_000_000


@pytest.mark.asyncio
async def test_an_ack_gives_own_tasks_their_shared_id_and_version_and_nothing_else(
    world: World,
) -> None:
    """The node's create and edit of a task, both sent: the ``op_ack`` naming them records the
    task's shared id and the version of the last op — the local content stays as it is; an
    acked task entry for an op this session did not send changes nothing; ``activity_skipped``
    only moves the project's cursor."""
    node = await world.node()
    await node.link.close()  # nothing gets sent or acked while we look
    shared, local_id, other_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with node.store.transaction() as conn:
        await tasks_repo.create(conn, local_id, project_id=node.project_id, title="first")
        await tasks_repo.update(
            conn,
            local_id,
            title="second",
            description=None,
            status=NodeTaskStatus.TODO,
            parent_task_id=None,
        )
        await tasks_repo.create(conn, other_id, project_id=node.project_id, title="not sent")

    link = HiveLink(node.store, node.settings, node.executor)  # not started: driven by hand
    session: Any = SimpleNamespace(node_id=uuid.uuid4(), inbound=asyncio.Queue())
    window = SendWindow(0, window=4, park_retry_s=1.0, ack_timeout_s=60.0)
    window.sent(1, 2, 0.0)
    link.sender.window = window
    ack = OpAck(
        applied_through_seq=3,  # beyond what was sent: cut to 2
        tasks=[
            AckedTask(seq=1, id=shared, version=1),
            AckedTask(seq=2, id=shared, version=2),
            AckedTask(seq=3, id=uuid.uuid4(), version=1),
        ],
    )
    skip = ActivitySkipped(project_id=world.swarm_project_id, seq=2)
    try:
        await link.acks.on_ack(session, ack)
        await link.inbound.apply(session, skip)
    finally:
        await link.close()
    async with node.store.read() as conn:
        mine = await tasks_repo.get(conn, local_id)
        other = await tasks_repo.get(conn, other_id)
        cursor = await cursors_repo.get(conn, world.swarm_project_id)
        unacked = await outbox.backlog_count(conn)
    assert (mine.title, mine.shared_task_id, mine.remote_version) == ("second", shared, 2)
    assert other.shared_task_id is None
    assert unacked == 1
    assert cursor is not None
    assert cursor.last_seq == 2


def _sent_in_session(link: HiveLink, seq: int) -> None:
    """As if the link's current session had sent op ``seq`` (a link driven by hand has no
    sender running; acks and rejections count only for seqs sent in the session)."""
    window = SendWindow(seq - 1, window=4, park_retry_s=1.0, ack_timeout_s=60.0)
    window.sent(seq, seq, 0.0)
    link.sender.window = window


@pytest.mark.asyncio
async def test_a_copy_held_back_by_the_dirty_guard_is_pulled_once_the_ops_are_acked(
    world: World,
) -> None:
    """A hive event that arrives while the task still has an unacked op (e.g. the echo of that
    op, racing its ack) is skipped; once the op is acked the node pulls the task, so its version
    does not stay behind the hive's."""
    node = await world.node()
    await node.ready()
    hive = await _hive_task(world, "hive's")
    local = await _local_with(node, hive["id"], "hive's")
    node_id = (await node.link.status()).node_id
    assert node_id is not None
    await node.link.close()
    r = await world.http.patch(f"/v1/tasks/{hive['id']}", json={"title": "edited on the hive"})
    assert r.status_code == 200, r.text
    edited = r.json()
    async with node.store.transaction() as conn:
        seq = await outbox.enqueue_task_upsert(conn, local.id)  # a local write, not acked yet
    assert seq is not None

    link = HiveLink(node.store, node.settings, node.executor)  # not started: driven by hand
    session: Any = SimpleNamespace(node_id=node_id, inbound=asyncio.Queue())
    event = _activity(world, 10_000, {"task": edited, "user": None})
    try:
        await link.inbound.apply(session, event)
        assert (await _local(node, hive["id"])).remote_version == 1  # type: ignore[union-attr]
        assert session.inbound.empty()
        _sent_in_session(link, seq)
        await link.acks.on_ack(session, OpAck(applied_through_seq=seq))
        pull = session.inbound.get_nowait()
        await link.inbound.apply(session, pull)
    finally:
        await link.close()
    copy = await _local(node, hive["id"])
    assert copy is not None
    assert (copy.title, copy.remote_version) == ("edited on the hive", edited["version"])


@pytest.mark.asyncio
async def test_a_refused_archive_is_taken_back_even_before_the_task_is_linked(
    world: World,
) -> None:
    """The hive accepts a node's new task but refuses its archive (say the hive moved the task
    meanwhile); the refusal arrives before the hive's copy names the task. The local archive is
    dropped at once, and the hive's copy that follows (not archived) is taken whole, so the node
    does not keep an archive the hive never had at the hive's version."""
    node = await world.node()
    await node.link.close()  # driven by hand below
    node_id, shared, local_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with node.store.transaction() as conn:
        await tasks_repo.create(conn, local_id, project_id=node.project_id, title="mine")
        assert await tasks_repo.archive_many(conn, [local_id]) == 1
        await outbox.ack_through(conn, 1)  # the create was applied; the archive is seq 2
        archive_op = (await outbox.peek_from_seq(conn, 2, 1))[0]

    link = HiveLink(node.store, node.settings, node.executor)  # not started
    _sent_in_session(link, 2)
    session: Any = SimpleNamespace(node_id=node_id, inbound=asyncio.Queue())
    created = _activity(
        world,
        1,
        {
            "task": {
                "id": str(shared),
                "title": "mine",
                "status": "todo",
                "version": 1,
                "source_node_id": str(node_id),
                "source_task_id": str(local_id),
            },
            "user": None,
            "origin": {"node_id": str(node_id), "seq": 1},
        },
        "task.created",
    )
    try:
        await link.sessions.dispatch(
            session,
            OpRejected(
                seq=2,
                idempotency_key=archive_op.idempotency_key,
                code="illegal_transition",
                reason="moved",
            ),
        )
        assert session.inbound.empty()  # no shared id yet: nothing to pull
        async with node.store.read() as conn:
            refused = await tasks_repo.get(conn, local_id)
        assert (refused.archived_at, refused.remote_version) == (None, 0)
        await link.inbound.apply(session, created)
    finally:
        await link.close()
    async with node.store.read() as conn:
        task = await tasks_repo.get(conn, local_id)
    assert (task.shared_task_id, task.remote_version, task.archived_at) == (shared, 1, None)


@pytest.mark.asyncio
async def test_a_burst_of_events_and_statuses_is_applied_whole_and_in_order(world: World) -> None:
    """Events and node statuses queued back to back (a replay, a connect storm) are applied in
    runs of one kind per transaction: every event lands, the cursor ends at the last seq, an
    event that cannot be parsed is skipped without costing its neighbours, and a status between
    two runs is applied too."""
    node = await world.node()
    await node.link.close()  # driven by hand below
    node_id = uuid.uuid4()
    other = uuid.uuid4()
    link = HiveLink(node.store, node.settings, node.executor)  # not started
    session: Any = SimpleNamespace(
        node_id=node_id, organization_id=uuid.uuid4(), inbound=asyncio.Queue()
    )
    shared = [uuid.uuid4() for _ in range(450)]
    for i, task_id in enumerate(shared, start=1):
        task = {"id": str(task_id), "title": f"burst {i}", "status": "todo", "version": 1}
        payload: dict[str, Any] = {"task": task} if i != 7 else {"task": {"id": "not a uuid"}}
        session.inbound.put_nowait(_activity(world, i, payload, "task.created"))
        if i == 300:
            session.inbound.put_nowait(
                NodeStatusChanged(node_id=other, status=NodeStatus.ONLINE, name="peer")
            )
    inbound = asyncio.create_task(link.inbound.run(session))
    try:

        async def drained() -> bool:
            async with node.store.read() as conn:
                cursor = await cursors_repo.get(conn, world.swarm_project_id)
            return cursor is not None and cursor.last_seq == len(shared)

        await wait_for(drained, what="the whole burst")
    finally:
        inbound.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await inbound
        await link.close()
    async with node.store.read() as conn:
        titles = {t: await tasks_repo.find_by_shared_task_id(conn, t) for t in shared}
        peer = await nodes_repo.find_by_id(conn, other)
    missing = [i for i, t in enumerate(shared, start=1) if titles[t] is None]
    assert missing == [7]
    assert titles[shared[-1]].title == f"burst {len(shared)}"  # type: ignore[union-attr]
    assert peer is not None
    assert peer.status == "online"
    assert link.stats.activity_applied == len(shared)


async def _linked_then_deleted_unseen(world: World, node: Node) -> tuple[Task, str]:
    """A hive task linked locally, then deleted on the hive while the node's link was closed,
    with the node's cursor already at the delete's seq (its event will not come again, and no
    snapshot either)."""
    await node.ready()
    hive = await _hive_task(world, "deleted unseen")
    local = await _local_with(node, hive["id"], "deleted unseen")
    await node.link.close()
    r = await world.http.delete(f"/v1/tasks/{hive['id']}")
    assert r.status_code == 204, r.text
    hive_db = await asyncpg.connect(world.dsn)
    try:
        latest = await hive_db.fetchval(
            "SELECT MAX(seq) FROM activity WHERE project_id = $1", world.swarm_project_id
        )
    finally:
        await hive_db.close()
    async with node.store.transaction() as conn:
        await cursors_repo.upsert(conn, world.swarm_project_id, int(latest))
    return local, hive["id"]


@pytest.mark.asyncio
async def test_the_digest_unlinks_a_task_deleted_on_the_hive_whose_event_never_came(
    world: World,
) -> None:
    """The hive names only its live tasks in a digest result: a task it deleted that the node
    still links is found by its mismatched bucket and pulled, and the pull unlinks it; the next
    digest is quiet."""
    node = await world.node()
    local, _ = await _linked_then_deleted_unseen(world, node)
    await _new_link(node)  # its connect-time digest has the deleted task's bucket mismatched

    async def unlinked() -> bool:
        async with node.store.read() as conn:
            return (await tasks_repo.get(conn, local.id)).shared_task_id is None

    await wait_for(unlinked, what="the deleted task to be unlinked")

    async def answered() -> Any:
        return node.link.stats.last_digest_result

    node.link.stats.last_digest_result = None
    assert await node.link.send_digest()
    result = await wait_for(answered, what="the digest_result")
    assert (result.pull_entities, result.mismatched_buckets) == ([], [])


@pytest.mark.asyncio
async def test_a_failed_pull_is_asked_again_with_the_next_pull(world: World) -> None:
    """A pull whose request fails (the hive's REST does not answer) stays owed: the next pull
    asks for those tasks too, and a task the hive deleted is then unlinked."""
    node = await world.node()
    local, shared = await _linked_then_deleted_unseen(world, node)
    node_id = (await node.link.status()).node_id
    link = HiveLink(node.store, node.settings, node.executor)  # not started: driven by hand
    session: Any = SimpleNamespace(node_id=node_id, inbound=asyncio.Queue())
    hive_base = link.sync.base_url
    try:
        link.sync.base_url = f"http://127.0.0.1:{_closed_port()}"
        link.inbound.pull_later(session, [uuid.UUID(shared)])
        with pytest.raises(SyncError):
            await link.inbound.apply(session, session.inbound.get_nowait())
        async with node.store.read() as conn:
            assert (await tasks_repo.get(conn, local.id)).shared_task_id == uuid.UUID(shared)
        link.sync.base_url = hive_base
        await link.inbound.apply(session, Pull([]))  # any later pull, even of nothing new
    finally:
        await link.close()
    async with node.store.read() as conn:
        assert (await tasks_repo.get(conn, local.id)).shared_task_id is None


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
