"""5. Idle connected nodes: how many stay connected, the hive's memory, CPU share and loop lag.

``nodes`` simulated nodes connect (nothing to sync) and heartbeat at the
default interval (``VK_HIVE_HEARTBEAT_INTERVAL_S=30``, timeout 90 s; each heartbeat is one
database round trip on the hive; the WebSocket pings of both sides every 20 s). Once they are
all connected (or the connect phase gave up) and have settled, over a ``window`` of seconds: the
nodes connected at the start and at the end and the lowest count sampled each second, the new
sessions (reconnects), the hive process's RSS (``VmRSS`` of ``/proc/<pid>/status``), its CPU
share (utime+stime of ``/proc/<pid>/stat`` over wall time; 1.0 = one core) and the p99 of its
event-loop lag, from the ``vk_hive_event_loop_lag_seconds`` histogram on ``/metrics``
(bucket-interpolated, over the window only).

* ``mode: hive`` — 5,000 protocol-only nodes in two worker processes, in organizations of 100
  (``NODES_PER_ORG``), linking no project; then the same nodes spread
  over two ``vk-hive serve`` processes on the one database (``hive_processes: 2``: RSS and CPU
  summed over both, loop lag the worse of the two; baseline = the one-process figure).
* ``mode: e2e`` — 1,000 real links, each with its node store, in four worker processes, in one
  organization, all linking one swarm project.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.metrics import Samples

from .common import BenchContext, metric, running_hive
from .nodes import Fleet

NAME = "idle"

_LAG = "vk_hive_event_loop_lag_seconds"

NODES_PER_ORG = 100
"""Hive mode: the nodes are spread over organizations of this size. Every connect and disconnect
is sent to each connected node of the organization (``node_status``), so a connect storm of N
nodes in one organization is N²/2 frames: 12.5 million for 5,000, which this machine's hive
does not get through (docs/performance.md); organizations of 100 keep that part to 250,000 frames
and leave what this measures: holding the connections."""

CONNECT_WITHIN_S = 300.0

STOP_WITHIN_S = 3.0
"""How long a hive gets to stop after the nodes went: nothing is measured then, and it was
still working through the thousands of disconnects (each an offline status to the others of
the organization) when the 20 s of the other benchmarks ran out, 20 s per run of this one."""


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _lag_buckets(http: httpx.AsyncClient, url: str) -> dict[float, float]:
    r = await http.get(f"{url}/metrics")
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


class _Phases:
    """Progress notes with the seconds each phase of one idle run took (where the wall time of
    ``make bench`` goes)."""

    def __init__(self, ctx: BenchContext, label: str) -> None:
        self._ctx, self._label = ctx, label
        self._last = time.monotonic()

    def __call__(self, what: str) -> None:
        now = time.monotonic()
        self._ctx.note(f"{self._label}: {what} ({now - self._last:.1f}s)")
        self._last = now


@dataclass(frozen=True)
class Idle:
    nodes: int
    connected_once: int
    connected_start: int
    connected_end: int
    connected_min: int
    reconnects: int
    rss_mib: float
    rss_before_mib: float
    cpu_share: float
    lag_p99_s: float
    window_s: float
    connect_s: float
    organizations: int

    @property
    def held(self) -> bool:
        """Every node connected for the whole window, with no new session."""
        return self.connected_min == self.nodes and self.reconnects == 0


async def run(ctx: BenchContext) -> None:
    if "hive" in ctx.modes:
        one = await _idle(ctx, "hive", processes=1)
        _emit(ctx, one, "hive", 1, None)
        _emit(ctx, await _idle(ctx, "hive", processes=2), "hive", 2, one)
    if "e2e" in ctx.modes:
        _emit(ctx, await _idle(ctx, "e2e", processes=1), "e2e", 1, None)


def _emit(ctx: BenchContext, r: Idle, mode: str, processes: int, one: Idle | None) -> None:
    common = {
        "mode": mode,
        "hive_processes": processes,
        "nodes": r.nodes,
        "connected": r.connected_end,
        "connected_min": r.connected_min,
        "reconnects": r.reconnects,
        "window_s": r.window_s,
        "heartbeat_interval_s": 30,
        "organizations": r.organizations,
    }

    def against(value: float, of_one: float) -> dict[str, float | None]:
        if one is None:
            return {}
        return {"baseline": of_one, "ratio": value / of_one if of_one else None}

    if mode == "e2e":
        must = (r.nodes - 1, "at least 999 of 1,000 for the whole window, 0 reconnects")
        rss_limit, rss_target = 400.0, "< 400 MiB"
    else:
        must = (r.nodes, "all for the whole window, 0 reconnects")
        rss_limit, rss_target = 1024.0, "< 1 GiB"
    if one is not None:
        must = (r.nodes, "all for the whole window, 0 reconnects (baseline: 1 hive process)")
    kept = r.connected_min >= must[0] and r.reconnects == 0
    ctx.emit(
        metric(
            "idle_connected_nodes",
            r.connected_min,
            "nodes",
            target=must[1],
            met=kept,
            connected_once=r.connected_once,
            connected_at_window_start=r.connected_start,
            connect_s=r.connect_s,
            **against(r.connected_min, one.connected_min if one else 0),
            **common,
        )
    )
    ctx.emit(
        metric(
            "idle_hive_rss",
            r.rss_mib,
            "MiB",
            target=rss_target,
            met=r.rss_mib < rss_limit and kept,
            rss_before_nodes_mib=r.rss_before_mib,
            **against(r.rss_mib, one.rss_mib if one else 0),
            **common,
        )
    )
    ctx.emit(
        metric(
            "idle_hive_cpu_share",
            r.cpu_share,
            "cores",
            target="(reported; 1.0 = one core busy)",
            met=True,
            **against(r.cpu_share, one.cpu_share if one else 0),
            **common,
        )
    )
    ctx.emit(
        metric(
            "idle_hive_loop_lag_p99",
            r.lag_p99_s * 1000,
            "ms",
            target="< 50 ms",
            met=not math.isnan(r.lag_p99_s) and r.lag_p99_s < 0.05,
            source=f"{_LAG} on /metrics",
            **against(r.lag_p99_s * 1000, one.lag_p99_s * 1000 if one else 0),
            **common,
        )
    )


async def _idle(ctx: BenchContext, mode: str, processes: int) -> Idle:
    if mode == "hive":
        nodes, workers, window = ctx.sized(
            full=(5000, 2, 40.0), quick=(200, 2, 5.0), smoke=(4, 2, 2.0)
        )
    else:
        nodes, workers, window = ctx.sized(
            full=(1000, 4, 20.0), quick=(50, 2, 3.0), smoke=(4, 2, 2.0)
        )
    env = {"VK_HIVE_HEARTBEAT_INTERVAL_S": "30", "VK_HIVE_HEARTBEAT_TIMEOUT_S": "90"}
    label = f"idle-{mode}-{processes}"
    phase = _Phases(ctx, label)
    async with running_hive(
        ctx, label.replace("-", "_"), env, processes=processes, stop_within=STOP_WITHIN_S
    ) as hive:
        phase("hive started")
        if mode == "hive":
            orgs = await hive.organizations(max(1, nodes // NODES_PER_ORG))
            keys = await hive.api_keys_in_db(nodes, organizations=orgs)
            specs = hive.specs(keys, ctx.workdir / label, [""] * nodes)  # link no project
        else:
            orgs = [hive.organization_id]
            keys = await hive.api_keys_in_db(nodes)
            specs = hive.specs(keys, ctx.workdir / label)
        phase(f"{len(orgs)} organizations, {nodes} API keys")
        fleet = Fleet(workers, ctx.workdir / label, mode)
        fleet.start()
        try:
            await fleet.setup(hive.urls, specs)
            phase(f"{workers} node workers set up")
            rss_before = sum(_rss_mib(pid) for pid in hive.pids)
            started = time.monotonic()
            await fleet.call("start_links")
            connected = await fleet.total("wait_connected", within=CONNECT_WITHIN_S)
            connect_s = time.monotonic() - started
            phase(f"{connected}/{nodes} connected; settling, then {window:g}s window")
            await asyncio.sleep(ctx.sized(full=10.0, quick=3.0, smoke=0.5))
            sessions_before = await fleet.total("sessions")
            at_start = await fleet.total("connected")
            lag0 = [await _lag_buckets(hive.http, url) for url in hive.urls]
            cpu0, t0 = sum(_cpu_s(pid) for pid in hive.pids), time.monotonic()
            await ctx.profile(label, {"hive": hive.pid}, window - 1)
            rss_peak, lowest = 0.0, at_start
            while time.monotonic() - t0 < window:
                await asyncio.sleep(1.0)
                rss_peak = max(rss_peak, sum(_rss_mib(pid) for pid in hive.pids))
                lowest = min(lowest, await fleet.total("connected"))
            cpu1, t1 = sum(_cpu_s(pid) for pid in hive.pids), time.monotonic()
            lag1 = [await _lag_buckets(hive.http, url) for url in hive.urls]
            still = await fleet.total("connected")
            reconnects = await fleet.total("sessions") - sessions_before
            phase("window measured")
        finally:
            await fleet.close()
            phase("nodes stopped")
    phase("hive stopped")
    return Idle(
        nodes=nodes,
        connected_once=connected,
        connected_start=at_start,
        connected_end=still,
        connected_min=min(lowest, still),
        reconnects=reconnects,
        rss_mib=rss_peak,
        rss_before_mib=rss_before,
        cpu_share=(cpu1 - cpu0) / (t1 - t0),
        lag_p99_s=max(_quantile(a, b, 0.99) for a, b in zip(lag0, lag1, strict=True)),
        window_s=window,
        connect_s=connect_s,
        organizations=len(orgs),
    )
