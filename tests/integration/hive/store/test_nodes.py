"""Node registry and node API keys."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from integration.hive.store._world import World, make_node, make_org
from vk_hive.errors import InvalidInput, NotFound
from vk_hive.store.models import LocalProjectInfo, NodeRegistration
from vk_hive.store.repositories import (
    node_api_keys,
    node_local_projects,
    nodes,
    project_links,
    swarm_projects,
)
from vk_shared.status import NodeStatus


@pytest.mark.asyncio
async def test_create_never_adopts_a_node_by_machine_id_and_connected_refreshes(
    world: World,
) -> None:
    """Registering a node whose machine id another node has creates a second node (a claimed
    machine id is metadata); ``connected`` refreshes one node's details and marks it online."""
    async with world.db.acquire() as conn:
        await nodes.heartbeat(conn, world.node.id, NodeStatus.OFFLINE)
        twin = await nodes.create(
            conn, world.org_id, NodeRegistration(name="twin", machine_id="m-n1")
        )
        again = await nodes.connected(
            conn,
            world.node.id,
            NodeRegistration(name="renamed", machine_id="m-new", public_url="http://x"),
        )
        listed = await nodes.list_by_organization(conn, world.org_id)
    assert twin.id != world.node.id
    assert again.id == world.node.id
    assert again.status == NodeStatus.ONLINE
    assert (again.machine_id, again.public_url) == ("m-new", "http://x")
    assert [n.name for n in listed] == ["n2", "renamed", "twin"]


@pytest.mark.asyncio
async def test_mark_stale_offline_only_affects_silent_nodes(world: World) -> None:
    """Online nodes without a recent heartbeat go offline; fresh ones stay online."""
    async with world.db.acquire() as conn:
        await conn.execute(
            "UPDATE nodes SET last_heartbeat_at = now() - interval '5 minutes' WHERE id = $1",
            world.node.id,
        )
        stale = await nodes.mark_stale_offline(conn, dt.timedelta(seconds=90))
        statuses = {
            s.id: s.status
            for s in await nodes.get_statuses_by_ids(conn, [world.node.id, world.other_node.id])
        }
    assert world.node.id in stale
    assert world.other_node.id not in stale
    assert statuses == {world.node.id: NodeStatus.OFFLINE, world.other_node.id: NodeStatus.ONLINE}


@pytest.mark.asyncio
async def test_merge_nodes_moves_links_inventory_and_keys(world: World) -> None:
    """Merge moves what the target lacks, drops duplicates, rebinds usable keys, deletes source."""
    async with world.db.acquire() as conn:
        solo = await swarm_projects.create(conn, world.org_id, "solo")
        local = uuid.uuid4()
        await node_local_projects.bulk_upsert(
            conn,
            world.other_node.id,
            [LocalProjectInfo(local_project_id=local, name="solo", git_repo_path="/s")],
        )
        await project_links.link_node(conn, solo.id, world.other_node.id, local, "/s")
        await node_local_projects.link_to_swarm(conn, world.other_node.id, local, solo.id)
        usable = await node_api_keys.create(conn, world.org_id, "k1", None, "h1", "p1")
        revoked = await node_api_keys.create(conn, world.org_id, "k2", None, "h2", "p2")
        for key in (usable, revoked):
            await node_api_keys.bind_to_node(conn, key.id, world.other_node.id)
        await node_api_keys.revoke(conn, revoked.id, world.org_id)
        with pytest.raises(InvalidInput):
            await nodes.merge_nodes(conn, world.node.id, world.node.id)
        await nodes.merge_nodes(conn, world.other_node.id, world.node.id)
        links = await project_links.list_by_node(conn, world.node.id)
        inventory = await node_local_projects.list_by_node(conn, world.node.id)
        usable_after = await node_api_keys.find_by_id(conn, usable.id)
        revoked_after = await node_api_keys.find_by_id(conn, revoked.id)
        assert await nodes.find_by_id(conn, world.other_node.id) is None
    assert sorted(link.swarm_project_id for link in links) == sorted([world.project.id, solo.id])
    assert [(p.local_project_id, p.swarm_project_id) for p in inventory] == [(local, solo.id)]
    assert usable_after is not None
    assert usable_after.node_id == world.node.id
    assert revoked_after is not None
    assert revoked_after.node_id is None


@pytest.mark.asyncio
async def test_merge_nodes_refuses_other_organizations(world: World) -> None:
    """Nodes of different organizations cannot be merged."""
    async with world.db.acquire() as conn:
        other_org = await make_org(conn, "other")
        stranger = await make_node(conn, other_org, "stranger")
        with pytest.raises(InvalidInput):
            await nodes.merge_nodes(conn, stranger.id, world.node.id)
        with pytest.raises(NotFound):
            await nodes.merge_nodes(conn, uuid.uuid4(), world.node.id)


@pytest.mark.asyncio
async def test_api_key_lookup_revoke_scoped_to_org_and_binding(world: World) -> None:
    """Keys are found by prefix, listed newest first, revoked only within their org, bound once."""
    async with world.db.acquire() as conn:
        first = await node_api_keys.create(conn, world.org_id, "a", world.user_id, "ha", "abcd1234")
        second = await node_api_keys.create(conn, world.org_id, "b", None, "hb", "abcd1234")
        assert {k.id for k in await node_api_keys.find_by_prefix(conn, "abcd1234")} >= {
            first.id,
            second.id,
        }
        listed = await node_api_keys.list_by_organization(conn, world.org_id)
        assert [k.id for k in listed] == [second.id, first.id]
        other_org = await make_org(conn, "other")
        with pytest.raises(NotFound):
            await node_api_keys.revoke(conn, first.id, other_org)
        assert await node_api_keys.bind_to_node(conn, first.id, world.node.id) is not None
        assert await node_api_keys.bind_to_node(conn, first.id, world.other_node.id) is None
        revoked = await node_api_keys.revoke(conn, second.id, world.org_id)
        assert revoked.revoked_at is not None
        assert await node_api_keys.bind_to_node(conn, second.id, world.node.id) is None
        bound = await node_api_keys.find_by_node_id(conn, world.node.id)
    assert bound is not None
    assert bound.id == first.id


@pytest.mark.asyncio
async def test_takeover_counting_block_and_unblock(world: World) -> None:
    """Takeovers count within a window, restart after it; unblock clears block and counters."""
    async with world.db.acquire() as conn:
        key = await node_api_keys.create(conn, world.org_id, "k", None, "h", "pppppppp")
        window = dt.timedelta(minutes=5)
        counts = [await node_api_keys.increment_takeover(conn, key.id, window) for _ in range(3)]
        assert counts == [1, 2, 3]
        await conn.execute(
            "UPDATE node_api_keys SET takeover_window_start = now() - interval '6 minutes' "
            "WHERE id = $1",
            key.id,
        )
        assert await node_api_keys.increment_takeover(conn, key.id, window) == 1
        await node_api_keys.block_key(conn, key.id, "duplicate use")
        assert (
            await node_api_keys.update_node_binding(
                conn, key.id, world.node.id, reset_takeover=True
            )
            is None
        )
        unblocked = await node_api_keys.unblock_key(conn, key.id, world.org_id)
        assert unblocked is not None
        assert (unblocked.blocked_at, unblocked.takeover_count) == (None, 0)
        assert await node_api_keys.unblock_key(conn, key.id, world.org_id) is None


@pytest.mark.asyncio
async def test_public_url_update_and_delete_cascade(world: World) -> None:
    """Updating an unknown node is NotFound; deleting a node removes its links."""
    async with world.db.acquire() as conn:
        await nodes.update_public_url(conn, world.node.id, "http://n1:3000")
        node = await nodes.get(conn, world.node.id)
        with pytest.raises(NotFound):
            await nodes.update_public_url(conn, uuid.uuid4(), None)
        await nodes.delete(conn, world.node.id)
        with pytest.raises(NotFound):
            await nodes.delete(conn, world.node.id)
        links = await project_links.list_nodes(conn, world.project.id)
    assert node.public_url == "http://n1:3000"
    assert [link.node_id for link in links] == [world.other_node.id]
