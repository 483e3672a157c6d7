"""5. Idle connected nodes: the hive's memory, CPU share and event-loop lag.

``nodes`` simulated nodes connect (one swarm project, nothing to sync) and heartbeat every
second (``VK_HIVE_HEARTBEAT_INTERVAL_S=1``, 30 times the default rate; each heartbeat is one
database round trip on the hive). Over a ``window`` of seconds after they are all connected:
the hive process's RSS (``VmRSS`` of ``/proc/<pid>/status``), its CPU share (utime+stime of
``/proc/<pid>/stat`` over wall time; 1.0 = one core) and the p99 of its event-loop lag, from
the ``vk_hive_event_loop_lag_seconds`` histogram on ``/metrics`` (bucket-interpolated, over
the window only).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path

from support.metrics import Samples

from .common import BenchContext, Hive, metric, running_hive
from .nodes import Fleet

NAME = "idle"

_LAG = "vk_hive_event_loop_lag_seconds"


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _lag_buckets(hive: Hive) -> dict[float, float]:
    r = await hive.http.get("/metrics")
    r.raise_for_status()
    m = Samples(r.text)
    return {
        float(labels["le"]): value for name, labels, value in m.samples if name == f"{_LAG}_bucket"
    }


def _quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Quantile of the observations between two scrapes of a histogram (linear within the
    bucket; the top finite bound when it falls in +Inf)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cum in zip(bounds, counts, strict=True):
        if cum >= rank:
            if math.isinf(bound):
                return lower
            inside = cum - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cum
    return lower


async def run(ctx: BenchContext) -> None:
    nodes, workers, window = (50, 2, 3.0) if ctx.quick else (1000, 4, 20.0)
    env = {"VK_HIVE_HEARTBEAT_INTERVAL_S": "1", "VK_HIVE_HEARTBEAT_TIMEOUT_S": "60"}
    async with running_hive(ctx, "idle", env) as hive:
        keys = await hive.api_keys(nodes)
        fleet = Fleet(workers, ctx.workdir / "idle")
        fleet.start()
        try:
            await fleet.setup(hive.url, hive.specs(keys, ctx.workdir / "idle"))
            rss_before = _rss_mib(hive.pid)
            await fleet.call("start_links")
            connected = await fleet.total("wait_connected", within=300.0)
            ctx.note(f"idle: {connected}/{nodes} connected; settling, then {window:g}s window")
            await asyncio.sleep(3.0)
            sessions_before = await fleet.total("sessions")
            lag0 = await _lag_buckets(hive)
            cpu0, t0 = _cpu_s(hive.pid), time.monotonic()
            await ctx.profile("idle", {"hive": hive.pid}, window - 1)
            rss_peak = 0.0
            while time.monotonic() - t0 < window:
                await asyncio.sleep(1.0)
                rss_peak = max(rss_peak, _rss_mib(hive.pid))
            cpu1, t1 = _cpu_s(hive.pid), time.monotonic()
            lag1 = await _lag_buckets(hive)
            still = await fleet.total("connected")
            reconnects = await fleet.total("sessions") - sessions_before
        finally:
            await fleet.close()
    cpu_share = (cpu1 - cpu0) / (t1 - t0)
    p99 = _quantile(lag0, lag1, 0.99)
    common = {"nodes": nodes, "connected": still, "reconnects": reconnects, "window_s": window}
    ctx.emit(
        metric(
            "idle_hive_rss",
            rss_peak,
            "MiB",
            target="< 400 MiB",
            met=rss_peak < 400 and still == nodes,
            rss_before_nodes_mib=rss_before,
            **common,
        )
    )
    ctx.emit(
        metric(
            "idle_hive_cpu_share",
            cpu_share,
            "cores",
            target="(reported; 1.0 = one core busy)",
            met=True,
            heartbeats_per_s=nodes,
            **common,
        )
    )
    ctx.emit(
        metric(
            "idle_hive_loop_lag_p99",
            p99 * 1000,
            "ms",
            target="< 50 ms",
            met=not math.isnan(p99) and p99 < 0.05,
            source=f"{_LAG} on /metrics",
            **common,
        )
    )
