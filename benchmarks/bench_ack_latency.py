"""2. Write-to-ack latency on the node at a fixed offered load.

Every node (own swarm project) first syncs a handful of tasks, then updates them ``rate`` times
a second each (open loop: the schedule does not wait for acks) for ``duration`` seconds. For every
write, latency = time from the write to the arrival of the ``op_ack`` covering its seq. The
first second is a warm-up and not counted. When the writers fall behind the schedule (the
worker's loop is saturated), ``achieved_writes_per_s`` says so; writes still unacked 30 s after
the last one are counted in ``unacked``, not in the percentiles.

* ``mode: hive`` — protocol-only nodes: a write is the op appended to the in-memory outbox (and
  sent at once when the window has room); what is measured is the hive's apply and ack.
* ``mode: e2e`` — real links and stores: a write is the local commit (task update + its
  ``task.upsert`` op in one transaction).
"""

from __future__ import annotations

import math

from .common import BenchContext, metric, percentile, poll_until, running_hive
from .nodes import Fleet

NAME = "ack_latency"


async def run(ctx: BenchContext) -> None:
    for mode in ctx.hive_side_modes():
        await _measure(ctx, mode)


async def _measure(ctx: BenchContext, mode: str) -> None:
    nodes, rate, duration = ctx.sized(
        full=(100, 20.0, 20.0), quick=(10, 20.0, 3.0), smoke=(2, 20.0, 2.0)
    )
    workers = 1 if mode == "hive" else 2
    label = f"ack-{mode}"
    async with running_hive(ctx, label.replace("-", "_")) as hive:
        keys = await hive.api_keys(nodes)
        projects = await hive.swarm_projects(nodes)
        fleet = Fleet(workers, ctx.workdir / label, mode)
        fleet.start()
        try:
            await fleet.setup(hive.url, hive.specs(keys, ctx.workdir / label, projects))
            await fleet.call("prefill_tasks", per_node=10)
            await fleet.call("start_links")
            assert await fleet.total("wait_connected", within=120.0) == nodes
            await poll_until(
                lambda: fleet.total("backlog"), lambda v: v == 0, within=120, interval=0.2
            )
            ctx.note(f"{label}: {nodes} nodes x {rate:g} writes/s for {duration:g}s")
            pids = {"hive": hive.pid, "nodes0": fleet.pids[0]}
            await ctx.profile(label, pids, duration - 1)
            results = await fleet.call("load", rate=rate, duration=duration, warmup=1.0)
            link: dict[str, int] = {}
            if mode == "hive":
                for part in await fleet.call("stats"):
                    for key in ("rejected", "parks", "ack_timeouts"):
                        link[key] = link.get(key, 0) + part[key]
                    for key in ("op_ack", "activity_skipped", "activity"):
                        name = f"{key}_frames"
                        link[name] = link.get(name, 0) + part["frames"].get(key, 0)
        finally:
            await fleet.close()
    latencies = [x * 1000 for r in results for x in r["latencies"]]
    writes = sum(r["writes"] for r in results)
    unacked = sum(r["unacked"] for r in results)
    offered = nodes * rate
    elapsed = max(r["elapsed"] for r in results)
    achieved = writes / elapsed
    # What the hive acked while the schedule ran (hive mode: writing costs the nodes nothing, so
    # whether the offered load was carried is decided by the acks).
    behind = sum(r.get("unacked_at_end", 0) for r in results)
    acked_rate = (writes - behind) / elapsed
    # Achieved within 2 %: the last ticks of the schedule are still in flight at its end.
    reached = min(achieved, acked_rate) >= 0.98 * offered
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    common = {
        "mode": mode,
        "nodes": nodes,
        "offered_ops_per_s": offered,
        "achieved_writes_per_s": achieved,
        "offered_load_achieved": reached,
        "writes": writes,
        "measured": len(latencies),
        "unacked": unacked,
        **link,
    }
    if mode == "hive":
        common.update(acked_during_schedule_per_s=acked_rate, unacked_at_schedule_end=behind)
    ok = unacked == 0 and (reached or mode == "e2e")
    ctx.emit(
        metric(
            "write_to_ack_latency_p50",
            p50,
            "ms",
            target="< 5 ms" + (", offered load achieved" if mode == "hive" else ""),
            met=not math.isnan(p50) and p50 < 5 and ok,
            **common,
        )
    )
    ctx.emit(
        metric(
            "write_to_ack_latency_p99",
            p99,
            "ms",
            target="< 50 ms" + (", offered load achieved" if mode == "hive" else ""),
            met=not math.isnan(p99) and p99 < 50 and ok,
            **common,
        )
    )
