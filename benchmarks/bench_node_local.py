"""6. Node-local: durable write latency and log capture throughput (no hive involved).

* write latency: sequential writes on one node store, each a task update plus its outbox op in
  one ``store.transaction()`` (``BEGIN IMMEDIATE`` … ``COMMIT``, WAL, ``synchronous=NORMAL``:
  durable across a process crash, the product's setting);
* log capture: one SCRIPT run whose process prints lines as fast as it can, through the real
  executor (pipes, line splitting, batched inserts into ``log_entries`` with their
  ``logs.append`` ops); lines/s from the run's start to the last line committed.
"""

from __future__ import annotations

import math

from .common import BenchContext, metric, percentile
from .nodes import Fleet, NodeSpec

NAME = "node_local"


async def run(ctx: BenchContext) -> None:
    writes, lines = (300, 20_000) if ctx.quick else (5_000, 500_000)
    root = ctx.workdir / "local"
    fleet = Fleet(1, root)
    fleet.start()
    try:
        spec = NodeSpec(0, "unused", str(root / "node0"), "00000000-0000-0000-0000-000000000000")
        # Not linked to a hive: no link runs, writes still append their outbox ops.
        await fleet.setup("http://127.0.0.1:9", [spec], {"executors": "SCRIPT"})
        await fleet.call("prefill_tasks", per_node=100)
        await ctx.profile("node_local", {"node": fleet.pids[0]}, 3 if ctx.quick else 8)
        (latencies,) = await fleet.call("local_writes", count=writes)
        (capture,) = await fleet.call("log_capture", lines=lines, within=300.0)
    finally:
        await fleet.close()
    ms = [x * 1000 for x in latencies]
    p50, p99 = percentile(ms, 50), percentile(ms, 99)
    ctx.emit(
        metric(
            "node_write_latency_p99",
            p99,
            "ms",
            target="(none set; reported)",
            met=not math.isnan(p99),
            p50_ms=p50,
            writes=writes,
            durability="WAL, synchronous=NORMAL, one BEGIN IMMEDIATE transaction per write",
        )
    )
    rate = capture["lines"] / capture["seconds"]
    ctx.emit(
        metric(
            "log_capture_throughput",
            rate,
            "lines/s",
            target="(none set; reported)",
            met=capture["lines"] >= lines,
            lines=capture["lines"],
            expected_lines=lines,
            seconds=capture["seconds"],
        )
    )
