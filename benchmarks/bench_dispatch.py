"""4. Dispatch latency: ``POST /v1/tasks`` with ``start_attempt`` → ``task_assign`` at a node.

All nodes link one swarm project and are connected; the benchmark creates tasks one after the
other (a fixed pace, so the hive is not saturated) and takes, for each, the time from just before
the request to the node's receipt of its ``task_assign`` (the link's handler is replaced by a
recorder: no attempt runs, and the lease TTL is long so nothing is reclaimed meanwhile). Every
dispatch also streams its activity events to all the nodes that link the project.

* ``mode: hive`` — protocol-only nodes (they only note the ``task_assign`` and the cursor);
* ``mode: e2e`` — real links and stores (each node applies the activity events in SQLite).

The HTTP client keeps its connection alive with TCP_NODELAY: without it, loopback requests to
uvicorn wait ~40 ms for Nagle + delayed ACK, which would measure the client, not the hive.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

from .common import BenchContext, metric, percentile, poll_until, running_hive
from .nodes import Fleet

NAME = "dispatch"


async def run(ctx: BenchContext) -> None:
    for mode in ctx.hive_side_modes():
        await _measure(ctx, mode)


async def _measure(ctx: BenchContext, mode: str) -> None:
    nodes, count, pace = ctx.sized(full=(100, 300, 0.02), quick=(10, 50, 0.02), smoke=(2, 10, 0.02))
    env = {"VK_HIVE_LEASE_TTL_S": "600", "VK_HIVE_HEARTBEAT_INTERVAL_S": "5"}
    label = f"dispatch-{mode}"
    async with running_hive(ctx, label.replace("-", "_"), env) as hive:
        keys = await hive.api_keys(nodes)
        fleet = Fleet(1 if mode == "hive" else 2, ctx.workdir / label, mode)
        fleet.start()
        try:
            await fleet.setup(hive.url, hive.specs(keys, ctx.workdir / label))
            await fleet.call("start_links")
            assert await fleet.total("wait_connected", within=120.0) == nodes

            async def linked() -> int:
                conn = await hive.connect_db()
                try:
                    return int(await conn.fetchval("SELECT count(*) FROM swarm_project_nodes"))
                finally:
                    await conn.close()

            await poll_until(linked, lambda v: v >= nodes, within=60, interval=0.2)
            ctx.note(f"{label}: {nodes} connected nodes, {count} tasks")
            sent: dict[str, float] = {}
            errors = 0
            await ctx.profile(label, {"hive": hive.pid}, count * pace)
            for i in range(count):
                t0 = time.monotonic()
                r = await hive.http.post(
                    "/v1/tasks",
                    json={
                        "project_id": hive.swarm_project_id,
                        "title": f"dispatch {i}",
                        "description": "echo hi",
                        "executor": "SCRIPT",
                        "start_attempt": True,
                    },
                )
                body = r.json()
                if r.status_code != 201 or body.get("assignment") is None:
                    errors += 1
                else:
                    sent[str(body["task"]["id"])] = t0
                await asyncio.sleep(max(0.0, t0 + pace - time.monotonic()))
            received: dict[str, float] = {}

            async def arrived() -> int:
                for part in await fleet.call("assigns"):
                    received.update(part)
                return len(received.keys() & sent.keys())

            # A second for the last assignments; those still missing then are reported.
            with contextlib.suppress(TimeoutError):
                await poll_until(arrived, lambda n: n >= len(sent), within=1.0, interval=0.05)
        finally:
            await fleet.close()
    latencies = [(received[k] - t) * 1000 for k, t in sent.items() if k in received]
    missing = len(sent) - len(latencies)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    common = {
        "mode": mode,
        "nodes": nodes,
        "tasks": count,
        "received": len(latencies),
        "missing": missing,
        "errors": errors,
        "http_client": "httpx keep-alive with TCP_NODELAY",
    }
    ctx.emit(metric("dispatch_latency_p50", p50, "ms", target="(p99 < 50 ms)", met=True, **common))
    ctx.emit(
        metric(
            "dispatch_latency_p99",
            p99,
            "ms",
            target="< 50 ms",
            met=not math.isnan(p99) and p99 < 50 and missing == 0 and errors == 0,
            **common,
        )
    )
