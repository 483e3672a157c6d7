"""A key is its node (DESIGN.md §10): what a client claims about itself (machine id, name) never
makes it another node; a key used from a new node instance is a move with a new op-sequence
epoch while the old instance is offline, and is refused while it is online."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from vk_hive.store.repositories import node_api_keys, nodes, op_log
from vk_shared.wire import AuthResult, ErrorMessage, OpRejected, TaskAssign

from .conftest import Node, World

pytestmark = pytest.mark.asyncio


async def _wait_offline(world: World, node_id: uuid.UUID) -> None:
    for _ in range(250):
        if not world.gateway.registry.is_connected(node_id):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the session did not end")


async def _cursor(world: World, node_id: uuid.UUID) -> tuple[int, int]:
    async with world.db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT applied_through_seq, epoch FROM node_op_cursors WHERE node_id = $1", node_id
        )
    assert row is not None
    return int(row["applied_through_seq"]), int(row["epoch"])


async def _applied(world: World, node: Node, count: int) -> None:
    """Apply ``count`` new-task ops of ``node`` (cursor → ``node.seq``)."""
    ops = [node.task_op(title=f"t{i}") for i in range(count)]
    ack = await node.batch(*ops)
    assert ack.applied_through_seq == node.seq


async def test_a_new_key_claiming_another_nodes_machine_id_gets_a_node_of_its_own(
    world: World,
) -> None:
    """A second key of the organization presenting a connected node's machine id becomes a new
    node: the real node keeps its session, its task_assign and its applied-through cursor; the
    impostor's rejected ops touch only its own cursor; revoking its key leaves the victim."""
    victim = await world.node(machine_id="victim-machine")
    await _applied(world, victim, 3)

    impostor_key = await world.api_key()
    impostor = await world.node(api_key=impostor_key, machine_id="victim-machine")
    assert impostor.id != victim.id
    assert impostor.auth.applied_through_seq == 0
    assert world.gateway.registry.is_connected(victim.id)
    assert not victim.client.ws.close_code

    bogus = [impostor.task_op(shared_task_id=uuid.uuid4()) for _ in range(5)]
    await impostor.batch(*bogus)
    assert await _cursor(world, victim.id) == (3, 0)
    assert (await _cursor(world, impostor.id))[0] == 5

    created = await world.create_task(title="for the victim", description="echo hi")
    task_id = created["task"]["id"]
    r = await world.http.post(
        f"/v1/tasks/{task_id}/assign",
        json={"node_id": str(victim.id)},
        headers=world.headers,
    )
    assert r.status_code in (200, 201), r.text
    assign = await victim.client.expect(TaskAssign)
    assert str(assign.task_id) == task_id
    assert not [m for m in await impostor.client.drain(0.3) if isinstance(m, TaskAssign)]

    async with world.db.transaction() as conn:
        key_row = await node_api_keys.find_by_node_id(conn, impostor.id)
        assert key_row is not None
        await node_api_keys.revoke(conn, key_row.id, world.org_id)
    world.gateway.disconnect(impostor.id, "API key revoked")
    await _wait_offline(world, impostor.id)
    assert world.gateway.registry.is_connected(victim.id)
    await _applied(world, victim, 1)
    assert await _cursor(world, victim.id) == (4, 0)


async def test_the_same_key_from_another_instance_is_refused_while_the_node_is_online(
    world: World,
) -> None:
    """A bound key presented by another node instance while its node is online is refused with
    a reason naming the node; the node keeps its one session (no eviction, no ping-pong)."""
    key = await world.api_key()
    owner = await world.node(api_key=key, machine_id="instance-a")
    other = await world.client()
    result = await other.auth(key, machine_id="instance-b")
    assert isinstance(result, ErrorMessage)
    assert result.code == "auth_failed"
    assert "online from another node instance" in result.message
    assert owner.auth.node_id.hex not in result.message  # names the node by name, not id
    assert (await other.closed()).code == 1008
    assert world.gateway.registry.is_connected(owner.id)
    await _applied(world, owner, 1)
    async with world.db.acquire() as conn:
        node = await nodes.get(conn, owner.id)
    assert node.machine_id == "instance-a"


async def test_a_key_moved_to_a_new_instance_starts_a_new_op_sequence(world: World) -> None:
    """The same key from a new instance while the old one is offline is the same node with a new
    epoch: the cursor restarts at the new instance's last acked seq, its ops from seq 1 are
    applied (not taken for duplicates of the old outbox's), and old rejections are not replayed."""
    key = await world.api_key()
    old = await world.node(api_key=key, machine_id="old-data-dir")
    await _applied(world, old, 2)
    bad = old.task_op(shared_task_id=uuid.uuid4())
    await old.batch(bad)
    await old.client.expect(OpRejected)
    assert await _cursor(world, old.id) == (3, 0)
    await old.client.close()
    await _wait_offline(world, old.id)

    moved = await world.node(api_key=key, machine_id="new-data-dir")
    assert moved.id == old.id
    assert moved.auth.applied_through_seq == 0
    assert await _cursor(world, old.id) == (0, 1)
    fresh = [moved.task_op(title=f"new {i}") for i in range(3)]
    ack = await moved.batch(*fresh)
    assert ack.applied_through_seq == 3
    assert not [m for m in await moved.client.drain(0.2) if isinstance(m, OpRejected)]
    async with world.db.acquire() as conn:
        node = await nodes.get(conn, old.id)
        rows = await conn.fetch(
            "SELECT epoch, count(*) AS n, count(reject_code) AS rejected FROM node_op_log "
            "WHERE node_id = $1 GROUP BY epoch ORDER BY epoch",
            old.id,
        )
        titles = await conn.fetch(
            "SELECT title FROM shared_tasks WHERE owner_node_id = $1 ORDER BY title", old.id
        )
    assert node.machine_id == "new-data-dir"
    assert [(r["epoch"], r["n"], r["rejected"]) for r in rows] == [(0, 3, 1), (1, 3, 0)]
    assert [r["title"] for r in titles] == ["new 0", "new 1", "new 2", "t0", "t1"]


async def test_a_keys_first_use_starts_at_the_instances_own_last_acked_seq(
    world: World,
) -> None:
    """A node instance whose outbox already has acked history (its key was re-issued) starts its
    new node's op sequence where it left off, so its next op is not taken for a gap."""
    key = await world.api_key()
    client = await world.client()
    result = await client.auth(key, machine_id="upgraded", last_acked_seq=40)
    assert isinstance(result, AuthResult)
    assert result.applied_through_seq == 40
    node = Node(client=client, auth=result, api_key=key, local_project_id=uuid.uuid4(), seq=40)
    async with world.db.acquire() as conn:
        assert await op_log.get_applied_through(conn, node.id) == 40
    ack = await node.batch(node.task_op(shared_task_id=uuid.uuid4()))  # skipped, not a gap
    assert ack.applied_through_seq == 41


async def test_two_keys_reconnecting_with_one_machine_id_stay_two_online_nodes(
    world: World,
) -> None:
    """Two nodes with their own keys and the same machine id (two data dirs that share an id)
    reconnect in turns and remain two nodes, both online — neither replaces the other."""
    a = await world.node(machine_id="same-host")
    b = await world.node(machine_id="same-host")
    assert a.id != b.id
    for _ in range(3):
        again = await world.client()
        result = await again.auth(a.api_key, machine_id="same-host")
        assert isinstance(result, AuthResult)
        assert result.node_id == a.id
        assert world.gateway.registry.is_connected(b.id)
        a.client = again
    async with world.db.acquire() as conn:
        listed = {n.id: str(n.status) for n in await nodes.list_by_organization(conn, world.org_id)}
    assert listed == {a.id: "online", b.id: "online"}


async def test_an_outbox_restored_behind_the_cursor_gets_a_new_epoch_at_its_first_new_op(
    world: World,
) -> None:
    """A node whose store was restored from an older backup resends its old ops (duplicates),
    then writes new ops at seqs the hive's cursor already passed: the first new op starts a new
    epoch there, so it is applied and a parked op after it is acked as parked — not covered by
    the cursor of the lost timeline."""
    node = await world.node(machine_id="restored")
    backup = [node.task_op(title=f"kept {i}") for i in range(2)]
    lost = [node.task_op(title=f"lost {i}") for i in range(3)]
    ack = await node.batch(*backup, *lost)
    assert ack.applied_through_seq == 5

    node.seq = 2  # the store comes back from a backup taken after seq 2
    again = await node.batch(*backup)
    assert again.applied_through_seq == 2  # duplicates; an ack covers its batch only
    assert await _cursor(world, node.id) == (5, 0)  # nothing diverged yet
    new = node.task_op(title="written after the restore")
    orphan = node.task_op(project_id=uuid.uuid4())  # a project not linked yet: parked
    ack = await node.batch(new, orphan)
    assert ack.applied_through_seq == new.seq == 3
    assert await _cursor(world, node.id) == (3, 1)
    async with world.db.acquire() as conn:
        titles = await conn.fetch(
            "SELECT title FROM shared_tasks WHERE owner_node_id = $1 ORDER BY title", node.id
        )
    assert "written after the restore" in [r["title"] for r in titles]
