"""Node gateway authentication: keys, binding, takeover, subprotocols."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from support.hive_client import HiveClient
from vk_hive.store.repositories import labels, node_api_keys, nodes
from vk_shared.wire import AuthResult, ErrorMessage, NodeStatusChanged

from .conftest import World, running_world

pytestmark = pytest.mark.asyncio


async def _node_rows(world: World) -> list[tuple[uuid.UUID, str]]:
    async with world.db.acquire() as conn:
        return [(n.id, str(n.status)) for n in await nodes.list_by_organization(conn, world.org_id)]


async def test_good_key_gets_auth_result_with_links_and_labels(world: World) -> None:
    """A valid key authenticates: auth_result names the node, org, its links and the labels."""
    async with world.db.transaction() as conn:
        await labels.create(conn, world.org_id, "bug")
    key = await world.api_key()
    first = await world.node(api_key=key, machine_id="mach-a")
    assert first.auth.organization_id == world.org_id
    assert first.auth.lease_ttl_ms == 30_000
    assert first.auth.heartbeat_interval_ms == 1_000
    assert [label.name for label in first.auth.swarm_labels] == ["bug"]
    await first.client.close()
    for _ in range(100):  # the hive marks the first session offline
        if not world.gateway.registry.is_connected(first.id):
            break
        await __import__("asyncio").sleep(0.02)
    again = await world.client()
    result = await again.auth(key, machine_id="mach-a")
    assert isinstance(result, AuthResult)
    assert result.node_id == first.id
    assert [p.project_id for p in result.linked_projects] == [world.project_id]
    link = result.linked_projects[0]
    assert link.local_project_id == first.local_project_id
    assert link.project_name == "main project"
    async with world.db.acquire() as conn:
        key_row = (await node_api_keys.list_by_organization(conn, world.org_id))[0]
    assert key_row.node_id == first.id


@pytest.mark.parametrize("case", ["unknown", "revoked", "blocked"])
async def test_bad_key_is_refused_with_1008_and_changes_nothing(world: World, case: str) -> None:
    """Unknown, revoked and blocked keys get error{auth_failed} and close 1008; no node appears."""
    key = await world.api_key()
    async with world.db.transaction() as conn:
        row = (await node_api_keys.list_by_organization(conn, world.org_id))[0]
        if case == "revoked":
            await node_api_keys.revoke(conn, row.id, world.org_id)
        elif case == "blocked":
            await node_api_keys.block_key(conn, row.id, "testing")
    if case == "unknown":
        key = "f" * 64
    client = await world.client()
    result = await client.auth(key)
    assert isinstance(result, ErrorMessage)
    assert result.code == "auth_failed"
    closed = await client.closed()
    assert closed.code == 1008
    assert await _node_rows(world) == []


async def test_revoking_the_key_of_a_connected_node_disconnects_it(world: World) -> None:
    """Revoking a key over REST closes the session of the node using it (1008, "API key
    revoked") and the node is offline; the same key is refused on its next auth."""
    key = await world.api_key()
    node = await world.node(api_key=key, machine_id="laptop")
    async with world.db.acquire() as conn:
        row = await node_api_keys.find_by_node_id(conn, node.id)
    assert row is not None
    r = await world.http.delete(f"/v1/nodes/api-keys/{row.id}", headers=world.headers)
    assert r.status_code == 204, r.text
    closed = await node.client.closed()
    assert closed.code == 1008
    assert closed.reason == "API key revoked"
    for _ in range(100):
        if await _node_rows(world) == [(node.id, "offline")]:
            break
        await asyncio.sleep(0.02)
    assert await _node_rows(world) == [(node.id, "offline")]
    again = await world.client()
    result = await again.auth(key, machine_id="laptop")
    assert isinstance(result, ErrorMessage)
    assert result.code == "auth_failed"


async def test_wrong_protocol_version_is_refused(world: World) -> None:
    """A node speaking another protocol version gets error{protocol_version} and 1008."""
    client = await world.client()
    result = await client.auth(await world.api_key(), protocol_version=2)
    assert isinstance(result, ErrorMessage)
    assert result.code == "protocol_version"
    assert (await client.closed()).code == 1008
    assert await _node_rows(world) == []


async def test_takeover_is_refused_and_blocks_the_key_after_the_limit(world: World) -> None:
    """A second machine with a key bound to an online node is refused; the 4th try blocks it."""
    key = await world.api_key()
    first = await world.node(api_key=key, machine_id="owner-machine")
    messages = []
    for _ in range(world.settings.takeover_limit + 1):
        intruder = await world.client()
        result = await intruder.auth(key, machine_id="intruder")
        assert isinstance(result, ErrorMessage)
        assert result.code == "auth_failed"
        messages.append(result.message)
        assert (await intruder.closed()).code == 1008
    assert "online from another node instance" in messages[0]
    assert "blocked" in messages[-1]
    async with world.db.acquire() as conn:
        row = await node_api_keys.find_by_node_id(conn, first.id)
    assert row is not None
    assert row.blocked_at is not None
    # The legitimate node keeps its connection.
    assert world.gateway.registry.is_connected(first.id)


async def test_key_moves_to_a_new_machine_when_the_bound_node_is_offline(world: World) -> None:
    """A key whose node is offline may be used from another machine: the same node moves there
    (its machine id is updated)."""
    key = await world.api_key()
    first = await world.node(api_key=key, machine_id="old-machine")
    await first.client.close()
    for _ in range(100):
        if not world.gateway.registry.is_connected(first.id):
            break
        await __import__("asyncio").sleep(0.02)
    moved = await world.client()
    result = await moved.auth(key, machine_id="new-machine")
    assert isinstance(result, AuthResult)
    assert result.node_id == first.id
    async with world.db.acquire() as conn:
        node = await nodes.get(conn, first.id)
    assert node.machine_id == "new-machine"


async def test_no_subprotocol_is_refused(world: World) -> None:
    """A connection offering no supported subprotocol is closed with 1002 and a reason."""
    client = await world.client(subprotocols=["chat"])
    closed = await client.closed()
    assert closed.code == 1002
    assert "vk.v1" in closed.reason


async def test_json_subprotocol_works(world: World) -> None:
    """vk.v1 (JSON text frames) is accepted when msgpack is not offered."""
    client = await world.client(subprotocols=["vk.v1"])
    assert client.ws.subprotocol == "vk.v1"
    result = await client.auth(await world.api_key())
    assert isinstance(result, AuthResult)


async def test_auth_timeout_closes(hive_dsn: str) -> None:
    """A connection that sends no auth within the timeout gets error{auth_timeout} and 1008.
    Only this hive has a short auth timeout: the other tests' nodes authenticate from the test's
    own event loop, which a loaded machine can hold up for longer than a second."""
    async with running_world(hive_dsn, auth_timeout_s=1.0) as world:
        client = await world.client()
        closed = await client.closed(within=5)
        assert closed.code == 1008
        assert isinstance(client.buffer[0], ErrorMessage)
        assert client.buffer[0].code == "auth_timeout"


async def test_second_connection_replaces_the_first(world: World) -> None:
    """The same node connecting again replaces its older session, which is closed."""
    key = await world.api_key()
    first = await world.node(api_key=key, machine_id="same")
    second = await world.client()
    result = await second.auth(key, machine_id="same")
    assert isinstance(result, AuthResult)
    assert result.node_id == first.id
    closed = await first.client.closed()
    assert "replaced" in closed.reason
    assert world.gateway.registry.get(first.id) is not None
    async with world.db.acquire() as conn:
        node = await nodes.get(conn, first.id)
    assert str(node.status) == "online"


async def test_node_status_reaches_the_nodes_sharing_a_project_and_nobody_else(
    world: World,
) -> None:
    """node_status pushes (online, offline after the grace) go to the nodes that link one of the
    node's projects; a node of the organization on another project and a node of another
    organization get none."""
    watcher = await world.node()
    elsewhere = await world.node(project_id=await world.project("elsewhere"))
    other_org = await world.other_org()
    stranger = await world.node(api_key=await world.api_key(other_org), link=False)
    newcomer = await world.node()
    online = await watcher.client.expect(
        NodeStatusChanged, where=lambda m: m.node_id == newcomer.id
    )
    assert online.status == "online"
    await newcomer.client.close()
    offline = await watcher.client.expect(
        NodeStatusChanged, where=lambda m: m.node_id == newcomer.id and m.status == "offline"
    )
    assert offline.status == "offline"
    for bystander in (elsewhere, stranger):
        seen = await bystander.client.drain(0.2)
        assert not [
            m for m in seen if isinstance(m, NodeStatusChanged) and m.node_id == newcomer.id
        ]


async def test_a_node_reconnecting_within_the_grace_is_never_announced_offline(
    world: World,
) -> None:
    key = await world.api_key()
    watcher = await world.node()
    flapping = await world.node(api_key=key, machine_id="flap")
    await watcher.client.expect(NodeStatusChanged, where=lambda m: m.node_id == flapping.id)
    await flapping.client.close()
    await world.node(api_key=key, machine_id="flap")
    await asyncio.sleep(world.settings.status_offline_grace_s + 0.5)
    seen = await watcher.client.drain(0.2)
    statuses = [
        m.status for m in seen if isinstance(m, NodeStatusChanged) and m.node_id == flapping.id
    ]
    assert "offline" not in statuses


async def test_client_helper_reports_close(world: World) -> None:
    """The test client reports the hive's close code (sanity check of the helper)."""
    client = await HiveClient.connect(world.url, subprotocols=["nope"])
    try:
        assert (await client.closed()).code == 1002
    finally:
        await client.close()
