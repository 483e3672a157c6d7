"""A node process streams 10,000 ops while the hive process is SIGKILLed and started again."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from support.cluster import Cluster, ClusterNode

TASKS = 2_500
EDITS = 3  # each task: one create and EDITS title changes -> TASKS * (1 + EDITS) ops
OPS = TASKS * (1 + EDITS)
WORKERS = 8
KILL_AFTER = OPS * 2 // 5


async def _write_ops(node: ClusterNode, on_progress: Callable[[int], Any]) -> None:
    """TASKS creates and TASKS*EDITS title edits through the node's REST API, WORKERS at a
    time; ``on_progress(done)`` is awaited after each request."""
    transport = httpx.AsyncHTTPTransport(
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        limits=httpx.Limits(max_connections=WORKERS),
    )
    done = 0
    async with httpx.AsyncClient(
        base_url=node.process.url + "/api", transport=transport, timeout=30
    ) as http:

        async def worker(first: int) -> None:
            nonlocal done
            for i in range(first, TASKS, WORKERS):
                r = await http.post(
                    "/tasks", json={"project_id": node.project_id, "title": f"t{i}"}
                )
                assert r.status_code in (200, 201), r.text
                task_id = r.json()["id"]
                done += 1
                await on_progress(done)
                for k in range(1, EDITS + 1):
                    r = await http.patch(f"/tasks/{task_id}", json={"title": f"t{i} v{k}"})
                    assert r.status_code == 200, r.text
                    done += 1
                    await on_progress(done)

        await asyncio.gather(*(worker(w) for w in range(WORKERS)))


@pytest.mark.timeout(240)  # 10k REST writes: ~60 s on an idle 2-core machine
def test_ten_thousand_ops_survive_a_hive_sigkill_exactly_once(make_cluster) -> None:
    """10,000 task writes on a node, with the hive SIGKILLed and restarted on the same port in
    the middle, reach the hive exactly once: one node_op_log row per outbox op, one hive task per
    local task with its final title, and the node's outbox drains to zero."""
    cluster: Cluster = make_cluster(nodes_count=1)
    node = cluster.nodes[0]
    node_uuid = uuid.UUID(node.node_id)
    hive = cluster.hive
    restart: dict[str, float] = {}

    async def on_progress(done: int) -> None:
        if done == KILL_AFTER:
            applied = await asyncio.to_thread(_hive_op_count, cluster, node_uuid)
            restart["applied_before"] = float(applied)
            await asyncio.to_thread(hive.kill)
            restart["killed"] = time.monotonic()
            await asyncio.to_thread(hive.start)
            restart["back"] = time.monotonic()

    started = time.monotonic()
    asyncio.run(_write_ops(node, on_progress))
    written = time.monotonic()

    def drained() -> bool:
        rows = node.process.sql("SELECT COUNT(*) AS n FROM node_outbox WHERE acked_at IS NULL")
        return rows[0]["n"] == 0

    cluster.wait(drained, what="the node's outbox to drain", timeout=120)
    finished = time.monotonic()

    write_s, total_s = written - started, finished - started
    print(
        f"\n{OPS} node ops: written in {write_s:.1f}s ({OPS / write_s:.0f} ops/s), on the hive "
        f"after {total_s:.1f}s ({OPS / total_s:.0f} ops/s end to end); hive down for "
        f"{restart['back'] - restart['killed']:.1f}s after {restart['applied_before']:.0f} ops"
    )
    # The kill really happened mid-stream.
    assert 0 < restart["applied_before"] < OPS

    outbox = node.process.sql(
        "SELECT COUNT(*) AS ops, COUNT(DISTINCT idempotency_key) AS keys, "
        "COUNT(rejected_at) AS rejected, COUNT(acked_at) AS acked FROM node_outbox"
    )[0]
    assert outbox == {"ops": OPS, "keys": OPS, "rejected": 0, "acked": OPS}
    assert _hive_op_count(cluster, node_uuid) == OPS

    hive_tasks = hive.sql(
        "SELECT source_task_id::text AS id, title FROM shared_tasks WHERE source_node_id = $1",
        node_uuid,
    )
    assert len(hive_tasks) == TASKS
    assert len({t["id"] for t in hive_tasks}) == TASKS
    final_titles = {f"t{i} v{EDITS}" for i in range(TASKS)}
    assert {t["title"] for t in hive_tasks} == final_titles

    def node_titles() -> dict[str, str]:
        rows = node.process.sql(
            "SELECT id, title FROM tasks WHERE project_id = ?", uuid.UUID(node.project_id)
        )
        return {t["id"]: t["title"] for t in rows}

    # Echoes of the node's own older writes, replayed after the reconnect, never roll a task
    # back: as soon as the outbox is drained the node holds exactly the hive's titles.
    assert node_titles() == {t["id"]: t["title"] for t in hive_tasks}
    status = node.process.status()
    assert status["outbox_unacked"] == 0
    assert status["outbox_last_acked_seq"] == OPS
    assert node.process.link_status()["sessions"] == 2


def _hive_op_count(cluster: Cluster, node_id: uuid.UUID) -> int:
    rows = cluster.hive.sql("SELECT COUNT(*) AS n FROM node_op_log WHERE node_id = $1", node_id)
    return int(rows[0]["n"])
