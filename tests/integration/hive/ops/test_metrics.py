"""``GET /metrics`` of a hive that served node sessions: every series is there and plausible."""

from __future__ import annotations

import uuid

import pytest

from support.node_link import wait_for
from vk_hive import __version__
from vk_hive.metrics import OP_OUTCOMES
from vk_shared.wire import Activity, OpRejected, OpType, TaskAssign

from .conftest import World, running_world, scrape

pytestmark = pytest.mark.asyncio


async def test_metrics_report_sessions_ops_leases_fanout_and_requests(world: World) -> None:
    """After a node connected, got a task assigned and its activity, and sent an op batch twice,
    /metrics shows one connected node, one active lease, applied and duplicate ops, the batch
    histogram, the fan-out lag, the REST requests by route template and the version."""
    node = await world.node()
    created = await world.create_task(start_attempt=True, title="run me", description="echo hi")
    await node.client.expect(TaskAssign)
    await node.client.expect(Activity, within=10)
    op = node.task_op(title="from the node")
    ack = await node.batch(op)
    assert ack.applied_through_seq == op.seq
    await node.batch(op)  # resent: a duplicate

    m = await scrape(world.http)
    assert m.value("vk_hive_info", version=__version__) == 1
    assert m.value("vk_hive_connected_nodes") == 1
    assert m.value("vk_hive_active_leases") == 1
    assert m.value("vk_hive_database_up") == 1
    applied = m.value("vk_hive_ops_applied_total", op_type="task.upsert", outcome="applied")
    assert applied == 1
    assert m.value("vk_hive_ops_applied_total", op_type="task.upsert", outcome="duplicate") == 1
    # Every op type and outcome is exported from the start (zero until it happens).
    for op_type in OpType:
        for outcome in OP_OUTCOMES:
            m.value("vk_hive_ops_applied_total", op_type=op_type.value, outcome=outcome)
    assert m.types["vk_hive_op_batch_apply_seconds"] == "histogram"
    assert m.value("vk_hive_op_batch_apply_seconds_count") == 2
    assert 0 < m.value("vk_hive_op_batch_apply_seconds_sum") < 10
    assert m.value("vk_hive_leases_reclaimed_total") == 0
    assert m.total("vk_hive_activity_fanout_lag_seconds_count") >= 1
    assert 0 <= m.total("vk_hive_activity_fanout_lag_seconds_sum") < 60
    assert (
        m.value("vk_hive_http_requests_total", method="POST", route="/v1/tasks", status="201") == 1
    )
    assert m.value("vk_hive_http_request_duration_seconds_count", route="/v1/tasks") == 1
    task_id = created["task"]["id"]
    r = await world.http.get(f"/v1/tasks/{task_id}", headers=world.headers)
    assert r.status_code == 200

    await node.client.close()

    async def gone() -> bool:
        return len(world.gateway.registry) == 0

    await wait_for(gone, what="the session to end")
    m = await scrape(world.http)
    assert m.value("vk_hive_connected_nodes") == 0
    # Route templates, not paths: one series for every task id.
    assert (
        m.value(
            "vk_hive_http_requests_total",
            method="GET",
            route="/v1/tasks/{task_id}",
            status="200",
        )
        == 1
    )
    assert m.value("vk_hive_http_requests_total", route="/metrics", status="200") >= 1


async def test_parked_and_skipped_ops_are_counted_by_type(world: World) -> None:
    """An op of a local project the hive has not heard of parks; an op of a known but unlinked
    project is skipped (rejected); both are counted under their op type and outcome."""
    linked = await world.node()
    await linked.batch(linked.task_op(title="parks", project_id=uuid.uuid4()))
    unlinked = await world.node(link=False)
    await unlinked.batch(unlinked.task_op(title="skipped"))
    await unlinked.client.expect(OpRejected)
    m = await scrape(world.http)
    assert m.value("vk_hive_ops_applied_total", op_type="task.upsert", outcome="parked") == 1
    assert m.value("vk_hive_ops_applied_total", op_type="task.upsert", outcome="skipped") == 1
    assert m.value("vk_hive_ops_applied_total", op_type="task.upsert", outcome="applied") == 0
    assert m.value("vk_hive_connected_nodes") == 2


async def test_reclaimed_leases_are_counted(hive_dsn: str) -> None:
    """A lease whose holder disappeared is reclaimed by the sweeper and counted, and the active
    lease gauge follows the database."""
    async with running_world(hive_dsn, lease_ttl_s=0.3, lease_grace_s=0.1) as world:
        node = await world.node()
        await world.create_task(start_attempt=True)
        await node.client.expect(TaskAssign)
        assert (await scrape(world.http)).value("vk_hive_active_leases") == 1
        await node.client.close()

        async def reclaimed() -> bool:
            return (await scrape(world.http)).value("vk_hive_leases_reclaimed_total") >= 1

        await wait_for(reclaimed, what="the sweeper to reclaim the lease")
        assert (await scrape(world.http)).value("vk_hive_active_leases") == 0


async def test_health_reports_database_and_version(world: World) -> None:
    """GET /v1/health (no auth) reports the database as reachable and the hive's version."""
    r = await world.http.get("/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["version"] == __version__
    assert r.headers["x-request-id"]
