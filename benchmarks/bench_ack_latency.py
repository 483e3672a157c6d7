"""2. Write-to-ack latency on the node at a fixed offered load.

Every node (own swarm project) first syncs a handful of tasks, then updates them ``rate`` times
a second each (open loop: the schedule does not wait for acks) for ``duration`` seconds. For every
write, latency = time from the local commit of the write (task update + its ``task.upsert`` op
in one transaction) to the arrival of the ``op_ack`` covering its seq. The first second is a
warm-up and not counted. When the writers fall behind the schedule (the worker's loop is
saturated), ``achieved_writes_per_s`` says so; writes still unacked 30 s after the last one are
counted in ``unacked``, not in the percentiles.
"""

from __future__ import annotations

import math

from .common import BenchContext, metric, percentile, poll_until, running_hive
from .nodes import Fleet

NAME = "ack_latency"


async def run(ctx: BenchContext) -> None:
    nodes, rate, duration = (10, 20.0, 3.0) if ctx.quick else (100, 20.0, 20.0)
    async with running_hive(ctx, "ack") as hive:
        keys = await hive.api_keys(nodes)
        projects = await hive.swarm_projects(nodes)
        fleet = Fleet(2, ctx.workdir / "ack")
        fleet.start()
        try:
            await fleet.setup(hive.url, hive.specs(keys, ctx.workdir / "ack", projects))
            await fleet.call("prefill_tasks", per_node=10)
            await fleet.call("start_links")
            assert await fleet.total("wait_connected", within=120.0) == nodes
            await poll_until(
                lambda: fleet.total("backlog"), lambda v: v == 0, within=120, interval=0.2
            )
            ctx.note(f"ack: {nodes} nodes x {rate:g} writes/s for {duration:g}s")
            pids = {"hive": hive.pid, "nodes0": fleet.pids[0]}
            await ctx.profile("ack", pids, duration - 1)
            results = await fleet.call("load", rate=rate, duration=duration, warmup=1.0)
        finally:
            await fleet.close()
    latencies = [x * 1000 for r in results for x in r["latencies"]]
    writes = sum(r["writes"] for r in results)
    unacked = sum(r["unacked"] for r in results)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    common = {
        "nodes": nodes,
        "offered_ops_per_s": nodes * rate,
        "achieved_writes_per_s": writes / max(r["elapsed"] for r in results),
        "writes": writes,
        "measured": len(latencies),
        "unacked": unacked,
    }
    ctx.emit(
        metric(
            "write_to_ack_latency_p50",
            p50,
            "ms",
            target="< 5 ms",
            met=not math.isnan(p50) and p50 < 5 and unacked == 0,
            **common,
        )
    )
    ctx.emit(
        metric(
            "write_to_ack_latency_p99",
            p99,
            "ms",
            target="< 50 ms",
            met=not math.isnan(p99) and p99 < 50 and unacked == 0,
            **common,
        )
    )
