"""Dispatch pushes, lease renewal, the lease sweeper with re-dispatch, operator cancel."""

from __future__ import annotations

import uuid

import pytest

from vk_hive.store.repositories import assignments
from vk_shared.wire import LeaseGrant, LeaseRenew, LeaseRevoked, TaskAssign, TaskCancel

from .conftest import World, running_world

pytestmark = pytest.mark.asyncio


async def test_start_attempt_sends_task_assign_to_the_capable_node(world: World) -> None:
    """REST create with start_attempt pushes task_assign (token, ttl) to the connected node that
    can run the executor."""
    cannot = await world.node(executors=("CODEX",))
    can = await world.node(executors=("SCRIPT",))
    created = await world.create_task(start_attempt=True, title="run me", description="echo hi")
    assign = await can.client.expect(TaskAssign)
    assert str(assign.task_id) == created["task"]["id"]
    assert assign.fencing_token >= 1
    assert 0 < assign.lease_ttl_ms <= 30_000
    assert assign.local_project_id == can.local_project_id
    assert assign.task.title == "run me"
    assert assign.task.base_branch == "main"
    assert not [m for m in await cannot.client.drain(0.2) if isinstance(m, TaskAssign)]


async def test_lease_renew_grants_held_leases_and_revokes_others(world: World) -> None:
    """lease_renew answers lease_grant for held assignments and lease_revoked for the rest."""
    node = await world.node()
    await world.create_task(start_attempt=True)
    assign = await node.client.expect(TaskAssign)
    bogus = uuid.uuid4()
    await node.client.send(LeaseRenew(assignment_ids=[assign.assignment_id, bogus]))
    grant = await node.client.expect(LeaseGrant)
    assert grant.assignment_id == assign.assignment_id
    assert grant.fencing_token == assign.fencing_token
    assert grant.ttl_ms == 30_000
    revoked = await node.client.expect(LeaseRevoked)
    assert revoked.assignment_id == bogus


async def test_expired_lease_is_reclaimed_and_redispatched_with_a_higher_token(
    hive_dsn: str,
) -> None:
    """After ttl + grace the sweeper closes the assignment and re-dispatches the task to another
    connected node with a higher fencing token."""
    async with running_world(hive_dsn, lease_ttl_s=0.5, lease_grace_s=0.2) as world:
        first = await world.node()
        await world.create_task(start_attempt=True)
        assign = await first.client.expect(TaskAssign)
        second = await world.node()
        await first.client.close()  # the holder goes away without renewing
        again = await second.client.expect(TaskAssign, within=10)
        assert again.task_id == assign.task_id
        assert again.fencing_token > assign.fencing_token
        async with world.db.acquire() as conn:
            old = await assignments.find_by_id(conn, assign.assignment_id)
        assert old is not None
        assert old.completed_at is not None
        assert old.execution_status == "failed"


async def test_operator_cancel_sends_task_cancel(world: World) -> None:
    """PATCH status=cancelled closes the assignment and sends task_cancel to its holder."""
    node = await world.node()
    created = await world.create_task(start_attempt=True)
    assign = await node.client.expect(TaskAssign)
    r = await world.http.patch(
        f"/v1/tasks/{created['task']['id']}", json={"status": "cancelled"}, headers=world.headers
    )
    assert r.status_code == 200, r.text
    cancel = await node.client.expect(TaskCancel)
    assert cancel.assignment_id == assign.assignment_id
    async with world.db.acquire() as conn:
        row = await assignments.find_by_id(conn, assign.assignment_id)
    assert row is not None
    assert row.execution_status == "cancelled"
    assert row.completed_at


async def test_delete_sends_task_cancel(world: World) -> None:
    """Deleting an assigned task tells the holder to stop."""
    node = await world.node()
    created = await world.create_task(start_attempt=True)
    assign = await node.client.expect(TaskAssign)
    r = await world.http.delete(f"/v1/tasks/{created['task']['id']}", headers=world.headers)
    assert r.status_code == 204, r.text
    assert (await node.client.expect(TaskCancel)).assignment_id == assign.assignment_id
