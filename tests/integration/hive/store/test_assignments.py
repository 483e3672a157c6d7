"""Assignments, leases and fencing tokens against real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid

import pytest

from integration.hive.store._world import World
from vk_hive.errors import AlreadyAssigned
from vk_hive.store.models import Assignment, SharedTask
from vk_hive.store.repositories import assignments, shared_tasks
from vk_hive.store.repositories.shared_tasks import NewTask

TTL = dt.timedelta(seconds=60)
EXPIRED = dt.timedelta(seconds=-1)
NO_GRACE = dt.timedelta(0)


async def _task(world: World) -> SharedTask:
    async with world.db.acquire() as conn:
        created = await shared_tasks.create(
            conn,
            NewTask(organization_id=world.org_id, swarm_project_id=world.project.id, title="t"),
        )
    return created.task


@pytest.mark.asyncio
async def test_concurrent_try_claim_has_exactly_one_winner(world: World) -> None:
    """Two nodes claiming the same task at once: exactly one gets the lease."""
    task = await _task(world)

    async def claim(node_id: uuid.UUID, link_id: uuid.UUID) -> Assignment | None:
        async with world.db.transaction() as conn:
            return await assignments.try_claim(conn, task.id, node_id, link_id, TTL, grace=NO_GRACE)

    results = await asyncio.gather(
        claim(world.node.id, world.link.id), claim(world.other_node.id, world.other_link.id)
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].fencing_token > 0
    assert winners[0].lease_expires_at is not None


@pytest.mark.asyncio
async def test_live_lease_blocks_claim_and_expired_lease_is_taken_over(world: World) -> None:
    """A live lease refuses other claimants; an expired one is taken over with a larger token."""
    task = await _task(world)
    async with world.db.acquire() as conn:
        first = await assignments.try_claim(
            conn, task.id, world.node.id, world.link.id, TTL, grace=NO_GRACE
        )
        assert first is not None
        blocked = await assignments.try_claim(
            conn, task.id, world.other_node.id, world.other_link.id, TTL, grace=NO_GRACE
        )
        assert blocked is None
        await conn.execute(
            "UPDATE node_task_assignments SET lease_expires_at = now() - interval '1 second'"
        )
        within_grace = await assignments.try_claim(
            conn,
            task.id,
            world.other_node.id,
            world.other_link.id,
            TTL,
            grace=dt.timedelta(seconds=30),
        )
        assert within_grace is None
        second = await assignments.try_claim(
            conn, task.id, world.other_node.id, world.other_link.id, TTL, grace=NO_GRACE
        )
    assert second is not None
    assert second.id == first.id
    assert second.node_id == world.other_node.id
    assert second.fencing_token > first.fencing_token
    assert second.execution_status == "pending"


@pytest.mark.asyncio
async def test_reclaim_bumps_token_frees_lease_and_stale_renew_fails(world: World) -> None:
    """Reclaiming an expired lease gives a new token and NULL lease; the old holder cannot renew."""
    task = await _task(world)
    async with world.db.acquire() as conn:
        claimed = await assignments.try_claim(
            conn, task.id, world.node.id, world.link.id, EXPIRED, grace=NO_GRACE
        )
        assert claimed is not None
        assert await assignments.renew_lease(conn, claimed.id, world.node.id, TTL) is None
        reclaimed = [
            r
            for r in await assignments.reclaim_expired_leases(conn, grace=NO_GRACE)
            if r.task_id == task.id
        ]
        assert [r.assignment_id for r in reclaimed] == [claimed.id]
        assert reclaimed[0].fencing_token > claimed.fencing_token
        row = await assignments.find_by_id(conn, claimed.id)
        assert row is not None
        assert row.lease_expires_at is None
        assert row.completed_at is None
        again_reclaimed = await assignments.reclaim_expired_leases(conn, grace=NO_GRACE)
        assert task.id not in {r.task_id for r in again_reclaimed}
        assert await assignments.renew_lease(conn, claimed.id, world.node.id, TTL) is None
        again = await assignments.try_claim(
            conn, task.id, world.other_node.id, world.other_link.id, TTL, grace=NO_GRACE
        )
    assert again is not None
    assert again.fencing_token > reclaimed[0].fencing_token


@pytest.mark.asyncio
async def test_every_token_a_lease_carried_is_kept_with_its_holder_and_interval(
    world: World,
) -> None:
    """node_lease_tokens (filled by a trigger) keeps each token of one assignment row: the
    first holder's, the reclaim's (held by nobody), the taking-over node's; each ends when the
    next begins, the last when the assignment is closed."""
    task = await _task(world)
    async with world.db.acquire() as conn:
        first = await assignments.try_claim(
            conn, task.id, world.node.id, world.link.id, EXPIRED, grace=NO_GRACE
        )
        assert first is not None
        await assignments.reclaim_expired_leases(conn, grace=NO_GRACE)
        taken = await assignments.try_claim(
            conn, task.id, world.other_node.id, world.other_link.id, TTL, grace=NO_GRACE
        )
        assert taken is not None
        assert taken.id == first.id
        await assignments.complete(conn, taken.id, "completed")
        rows = await conn.fetch(
            "SELECT fencing_token, assignment_id, task_id, holder_node_id, granted_at, ended_at "
            "FROM node_lease_tokens WHERE task_id = $1 ORDER BY fencing_token",
            task.id,
        )
    assert [r["holder_node_id"] for r in rows] == [world.node.id, None, world.other_node.id]
    assert rows[0]["fencing_token"] == first.fencing_token
    assert rows[-1]["fencing_token"] == taken.fencing_token
    assert {r["assignment_id"] for r in rows} == {first.id}
    for earlier, later in itertools.pairwise(rows):
        assert earlier["ended_at"] is not None
        assert earlier["ended_at"] <= later["granted_at"]
    assert rows[-1]["ended_at"] is not None


@pytest.mark.asyncio
async def test_reclaim_waits_for_grace(world: World) -> None:
    """A lease that expired less than ``grace`` ago is not reclaimed yet."""
    task = await _task(world)
    async with world.db.acquire() as conn:
        await assignments.try_claim(
            conn, task.id, world.node.id, world.link.id, EXPIRED, grace=NO_GRACE
        )
        early = await assignments.reclaim_expired_leases(conn, grace=dt.timedelta(minutes=1))
        assert task.id not in {r.task_id for r in early}
        late = await assignments.reclaim_expired_leases(conn, grace=NO_GRACE)
        assert task.id in {r.task_id for r in late}


@pytest.mark.asyncio
async def test_renew_extends_only_the_holders_live_lease(world: World) -> None:
    """Renewal keeps the token and moves the expiry; another node cannot renew it."""
    task = await _task(world)
    async with world.db.acquire() as conn:
        claimed = await assignments.try_claim(
            conn, task.id, world.node.id, world.link.id, dt.timedelta(seconds=5), grace=NO_GRACE
        )
        assert claimed is not None
        assert await assignments.renew_lease(conn, claimed.id, world.other_node.id, TTL) is None
        renewed = await assignments.renew_lease(conn, claimed.id, world.node.id, TTL)
        assert renewed is not None
        assert renewed.fencing_token == claimed.fencing_token
        assert renewed.lease_expires_at is not None
        assert claimed.lease_expires_at is not None
        assert renewed.lease_expires_at > claimed.lease_expires_at
        live = await assignments.find_active_lease_for_node(conn, claimed.id, world.node.id)
        assert live is not None


@pytest.mark.asyncio
async def test_create_complete_and_update_lifecycle(world: World) -> None:
    """One active assignment per task; started_at set on first running; complete frees it."""
    task = await _task(world)
    async with world.db.acquire() as conn:
        first = await assignments.create(conn, task.id, world.node.id, world.link.id)
        with pytest.raises(AlreadyAssigned):
            await assignments.create(conn, task.id, world.other_node.id, world.other_link.id)
        running = await assignments.update(conn, first.id, execution_status="running")
        assert running.started_at is not None
        again = await assignments.update(conn, first.id, execution_status="running")
        assert again.started_at == running.started_at
        done = await assignments.complete(conn, first.id, "completed")
        assert done.completed_at is not None
        assert await assignments.find_active_for_task(conn, task.id) is None
        second = await assignments.create(conn, task.id, world.other_node.id, world.other_link.id)
        latest = await assignments.find_latest_by_task_id(conn, task.id)
        assert latest is not None
        assert latest.id == second.id
        assert [a.id for a in await assignments.list_by_task(conn, task.id)] == [
            second.id,
            first.id,
        ]


@pytest.mark.asyncio
async def test_fail_node_assignments(world: World) -> None:
    """Failing a node closes its active rows as failed."""
    task = await _task(world)
    async with world.db.acquire() as conn:
        active = await assignments.create(conn, task.id, world.node.id, world.link.id)
        assert await assignments.fail_node_assignments(conn, world.node.id) == [task.id]
        assert await assignments.list_active_by_node(conn, world.node.id) == []
        closed = await assignments.find_by_id(conn, active.id)
        assert closed is not None
        assert closed.execution_status == "failed"


@pytest.mark.asyncio
async def test_fence_read_holds_off_a_concurrent_reclaim_until_it_commits(world: World) -> None:
    """A fence check (lock=True) inside an apply transaction makes a concurrent reclaim of that
    lease wait until the apply commits; a fence check made after the reclaim sees no active
    assignment, so a fenced write can never land after its token was revoked."""
    task = await _task(world)
    async with world.db.acquire() as conn:
        claimed = await assignments.try_claim(
            conn, task.id, world.node.id, world.link.id, EXPIRED, grace=NO_GRACE
        )
    assert claimed is not None
    reclaim_done = asyncio.Event()

    async def reclaim() -> None:
        async with world.db.transaction() as conn:
            await assignments.reclaim_expired_leases(conn, grace=NO_GRACE)
            await assignments.complete(conn, claimed.id, "failed")
        reclaim_done.set()

    async with world.db.transaction() as apply_conn:
        fenced = await assignments.find_active_for_task(apply_conn, task.id, lock=True)
        assert fenced is not None
        assert fenced.fencing_token == claimed.fencing_token
        sweeper = asyncio.create_task(reclaim())
        await asyncio.sleep(0.3)
        assert not reclaim_done.is_set()  # blocked by the apply's share lock
    await asyncio.wait_for(sweeper, 10)
    async with world.db.transaction() as conn:
        assert await assignments.find_active_for_task(conn, task.id, lock=True) is None
        closed = await assignments.find_by_id(conn, claimed.id, lock=True)
    assert closed is not None
    assert closed.completed_at is not None
