"""Node identity with default settings (no machine id set): an id generated per store, two nodes
on one host are two nodes on the hive, and the link takes acks and rejections only for what its
session sent."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from support.node_link import World, wait_for
from vk_node.link import HiveLink
from vk_node.link.identity import host_machine_id, resolve_machine_id
from vk_node.settings import load_settings
from vk_node.store import Store, outbox
from vk_node.store.repositories import link_state
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.wire import OpAck, OpRejected

pytestmark = pytest.mark.asyncio


async def test_the_machine_id_is_generated_once_per_store_and_can_be_overridden(
    tmp_path: Path,
) -> None:
    """A new store gets a random 32-hex id on first start, kept across reopening; another store
    on the same host gets another id; ``VK_NODE_MACHINE_ID`` overrides without replacing it."""
    default = load_settings(env={}).settings
    first = await Store.open(tmp_path / "a" / "db.sqlite")
    try:
        mid = await resolve_machine_id(first, default)
        assert len(mid) == 32
        assert int(mid, 16) >= 0
        assert mid != host_machine_id()
        override = load_settings(env={"VK_NODE_MACHINE_ID": "chosen-id"}).settings
        assert await resolve_machine_id(first, override) == "chosen-id"
    finally:
        await first.close()
    reopened = await Store.open(tmp_path / "a" / "db.sqlite")
    other = await Store.open(tmp_path / "b" / "db.sqlite")
    try:
        assert await resolve_machine_id(reopened, default) == mid
        assert await resolve_machine_id(other, default) not in (mid, host_machine_id())
    finally:
        await reopened.close()
        await other.close()


async def test_a_store_with_hive_history_keeps_the_host_derived_id(tmp_path: Path) -> None:
    """A store that talked to a hive before ids were kept per store (it has a recorded node id)
    keeps the host-derived id it was known by, so the hive sees the same instance."""
    store = await Store.open(tmp_path / "db.sqlite")
    try:
        async with store.transaction() as conn:
            await link_state.save(
                conn,
                state="disconnected",
                hive_url="http://hive",
                node_id=uuid.uuid4(),
                organization_id=uuid.uuid4(),
                connected_since=None,
                last_error=None,
                backoff_until=None,
                pid=None,
            )
        assert await resolve_machine_id(store, load_settings(env={}).settings) == host_machine_id()
    finally:
        await store.close()


async def test_two_nodes_with_default_settings_on_one_host_are_two_online_nodes(
    world: World,
) -> None:
    """Two nodes on one host with their own data dirs and keys, no machine id configured, are
    two nodes on the hive, both online, and neither session replaces the other."""
    a = await world.node()
    b = await world.node()
    await a.ready()
    await b.ready()
    assert a.link.machine_id != b.link.machine_id
    a_id, b_id = (await a.link.status()).node_id, (await b.link.status()).node_id
    assert a_id is not None
    assert b_id is not None
    assert a_id != b_id
    await asyncio.sleep(2.5)  # a few heartbeat intervals: a flapping pair would reconnect
    assert (a.link.stats.sessions, b.link.stats.sessions) == (1, 1)
    r = await world.http.get("/v1/nodes", params={"organization_id": str(world.org_id)})
    assert r.status_code == 200, r.text
    listed = {n["id"]: n["status"] for n in r.json()}
    assert listed == {str(a_id): "online", str(b_id): "online"}


async def test_acks_and_rejections_for_ops_not_sent_in_the_session_change_nothing(
    world: World,
) -> None:
    """An ``op_ack`` beyond what the session sent, an ``op_rejected`` of an unsent seq, and one
    that names a sent seq with another op's key leave the outbox as it was; the real ack of
    what was sent still works."""
    node = await world.node()
    await node.ready()
    await wait_for(lambda: _drained(node.store), what="the link-time ops acked")
    await node.link.close()  # drive a link by hand from here
    seqs = [await _new_task(node) for _ in range(3)]
    async with node.store.read() as conn:
        before = await outbox.last_acked_seq(conn)
        first = (await outbox.peek_from_seq(conn, seqs[0], 1))[0]
    assert seqs == [before + 1, before + 2, before + 3]

    link = HiveLink(node.store, node.settings, node.executor)  # not started
    session: Any = SimpleNamespace(node_id=uuid.uuid4(), inbound=asyncio.Queue())
    try:
        await link.sessions.dispatch(session, OpAck(applied_through_seq=seqs[-1] + 20))
        await link.sessions.dispatch(
            session, OpRejected(seq=seqs[1], idempotency_key="x", code="forbidden", reason="?")
        )
        assert await _state(node.store) == (before, 3, 0)

        window = _session_sent(link, seqs[0], seqs[0])
        await link.sessions.dispatch(
            session,
            OpRejected(seq=seqs[0], idempotency_key="not-mine", code="forbidden", reason="?"),
        )
        await link.sessions.dispatch(session, OpAck(applied_through_seq=seqs[-1]))
        assert window.acked_through == seqs[0]
        assert await _state(node.store) == (seqs[0], 2, 0)
        await link.sessions.dispatch(
            session,
            OpRejected(
                seq=seqs[0], idempotency_key=first.idempotency_key, code="forbidden", reason="!"
            ),
        )
        assert await _state(node.store) == (seqs[0], 2, 1)
    finally:
        await link.close()


async def _new_task(node: Any) -> int:
    """Create a task of the linked project; the seq of the op its creation appended."""
    async with node.store.transaction() as conn:
        await tasks_repo.create(conn, uuid.uuid4(), project_id=node.project_id, title="t")
        return await outbox.last_seq(conn)


def _session_sent(link: HiveLink, first: int, last: int) -> Any:
    from vk_node.link.window import SendWindow

    window = SendWindow(first - 1, window=4, park_retry_s=1.0, ack_timeout_s=60.0)
    window.sent(first, last, 0.0)
    link.sender.window = window
    return window


async def _drained(store: Store) -> bool:
    async with store.read() as conn:
        return await outbox.backlog_count(conn) == 0


async def _state(store: Store) -> tuple[int, int, int]:
    """(last acked seq, unacked ops, rejected ops)."""
    async with store.read() as conn:
        rejected = await conn.execute_fetchall(
            "SELECT count(*) FROM node_outbox WHERE rejected_at IS NOT NULL"
        )
        return (
            await outbox.last_acked_seq(conn),
            await outbox.backlog_count(conn),
            int(next(iter(rejected))[0]),
        )
