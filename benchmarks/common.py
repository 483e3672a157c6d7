"""Shared pieces of the benchmarks: the run context, metric lines, percentiles, a real hive
process on a fresh database, REST helpers and PostgreSQL polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx

from support.cluster import HiveProcess
from support.postgres import DatabaseFactory

from .nodes import Fleet, NodeSpec

__all__ = [
    "MODES",
    "SCALES",
    "BenchContext",
    "Hive",
    "Streamed",
    "copy_baseline",
    "metric",
    "percentile",
    "poll_until",
    "running_hive",
    "stream_prefilled",
]

T = TypeVar("T")


def py_spy_path() -> Path:
    """py-spy on the PATH, else next to this interpreter (a venv without it activated)."""
    found = shutil.which("py-spy")
    return Path(found) if found else Path(sys.executable).parent / "py-spy"


MODES = ("hive", "e2e")
"""``hive``: protocol-only simulated nodes (:mod:`benchmarks.simnode`), thousands per process,
to measure the hive's capacity; ``e2e``: real links and node stores (:mod:`benchmarks.nodes`)."""

SCALES = ("full", "quick", "smoke")
"""Node counts and durations of a run: ``full`` (the figures quoted in docs/performance.md),
``quick`` (smaller, a couple of minutes: figures for a quick comparison) and ``smoke`` (the
smallest that still runs every step and prints every line: a check of the harness, not a
measurement)."""


@dataclass
class BenchContext:
    scale: str
    workdir: Path
    dbs: DatabaseFactory
    profile_dir: Path | None = None
    modes: tuple[str, ...] = MODES
    full_e2e: bool = True
    """Whether the end-to-end variants of the hive-side benchmarks (apply, ack latency, logs,
    dispatch) run too; a full run without ``--mode`` leaves them out to stay under 15 minutes."""
    lines: list[dict[str, Any]] = field(default_factory=list)
    _profilers: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def profile(self, label: str, pids: dict[str, int], seconds: float) -> None:
        """With ``--profile DIR``: sample each process with py-spy for ``seconds`` (collapsed
        stacks in ``DIR/<label>-<name>.txt``); a no-op otherwise."""
        if self.profile_dir is None:
            return
        spy = str(py_spy_path())
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            out = self.profile_dir / f"{label}-{name}.txt"
            proc = await asyncio.create_subprocess_exec(
                spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds))),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            self._profilers.append(proc)

    async def profiles_done(self) -> None:
        for proc in self._profilers:
            await proc.wait()
        self._profilers.clear()

    def sized(self, *, full: T, quick: T, smoke: T) -> T:
        """The figure of this run's :data:`SCALES` entry."""
        return {"full": full, "quick": quick, "smoke": smoke}[self.scale]

    def hive_side_modes(self) -> tuple[str, ...]:
        """The modes a hive-side benchmark runs in (see :attr:`full_e2e`)."""
        return tuple(m for m in self.modes if m == "hive" or self.full_e2e)

    def emit(self, line: dict[str, Any]) -> None:
        """Print one metric line (JSON) now and keep it for the summary."""
        self.lines.append(line)
        print(json.dumps(line, sort_keys=False), flush=True)

    def note(self, text: str) -> None:
        """Progress on stderr (stdout carries only metric lines)."""
        print(f"[bench] {text}", file=sys.stderr, flush=True)


def metric(
    name: str,
    value: float,
    unit: str,
    *,
    target: str,
    met: bool,
    baseline: float | None = None,
    ratio: float | None = None,
    mode: str = "e2e",
    **extra: Any,
) -> dict[str, Any]:
    """One metric line; ``mode`` says which simulated nodes produced it (``MODES``)."""
    line: dict[str, Any] = {
        "metric": name,
        "mode": mode,
        "value": _round(value),
        "unit": unit,
        "baseline": None if baseline is None else _round(baseline),
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "met": bool(met),
    }
    line.update({k: _round(v) if isinstance(v, float) else v for k, v in extra.items()})
    line["loadavg_1m"] = round(os.getloadavg()[0], 2)
    return line


def _round(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    digits = max(0, 3 - math.floor(math.log10(abs(value))))
    return round(value, digits)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def poll_until(
    probe: Callable[[], Awaitable[Any]],
    done: Callable[[Any], bool],
    *,
    within: float,
    interval: float = 0.02,
) -> list[tuple[float, Any]]:
    """Call ``probe`` every ``interval`` s until ``done(value)``; the (monotonic time, value)
    samples. Raises TimeoutError after ``within`` s."""
    samples: list[tuple[float, Any]] = []
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        samples.append((time.monotonic(), value))
        if done(value):
            return samples
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {within:g}s (last value {value!r})")
        await asyncio.sleep(interval)


def nodelay_client(base_url: str, token: str | None = None) -> httpx.AsyncClient:
    """Keep-alive HTTP client with TCP_NODELAY (no Nagle + delayed-ACK stall on loopback)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.AsyncHTTPTransport(
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0, transport=transport)


@dataclass
class Hive:
    process: HiveProcess
    dsn: str
    http: httpx.AsyncClient
    organization_id: str
    swarm_project_id: str
    more: list[HiveProcess] = field(default_factory=list)
    """Further ``vk-hive serve`` processes on the same database (``running_hive(processes=)``)."""

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def urls(self) -> list[str]:
        """Every process's URL (the first is :attr:`url`)."""
        return [p.url for p in (self.process, *self.more)]

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    @property
    def pids(self) -> list[int]:
        return [int(p.pid or 0) for p in (self.process, *self.more)]

    async def api_keys(
        self, count: int, concurrency: int = 8, organizations: Sequence[str] = ()
    ) -> list[str]:
        """``count`` node API keys: of the hive's organization, or key ``i`` of
        ``organizations[i % len(organizations)]``."""
        sem = asyncio.Semaphore(concurrency)
        orgs = list(organizations) or [self.organization_id]

        async def one(i: int) -> str:
            async with sem:
                r = await self.http.post(
                    "/v1/nodes/api-keys",
                    json={"organization_id": orgs[i % len(orgs)], "name": f"bench-{i}"},
                )
                r.raise_for_status()
                return str(r.json()["secret"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    async def api_keys_in_db(self, count: int, organizations: Sequence[str] = ()) -> list[str]:
        """Like :meth:`api_keys`, written straight into the database with the hive's own
        ``create_api_key`` in one transaction (thousands of REST calls take a minute)."""
        from vk_hive.auth.api_keys import create_api_key

        orgs = [uuid.UUID(o) for o in (list(organizations) or [self.organization_id])]
        conn = await self.connect_db()
        try:
            async with conn.transaction():
                return [
                    (
                        await create_api_key(
                            conn, orgs[i % len(orgs)], f"bench-{i}", created_by=None
                        )
                    ).secret
                    for i in range(count)
                ]
        finally:
            await conn.close()

    async def organizations(self, count: int) -> list[str]:
        """``count`` more organizations (the admin is their admin); their ids."""
        out = []
        for i in range(count):
            r = await self.http.post("/v1/organizations", json={"name": f"bench org {i}"})
            r.raise_for_status()
            out.append(str(r.json()["id"]))
        return out

    async def swarm_projects(self, count: int, concurrency: int = 8) -> list[str]:
        """``count`` more swarm projects of the organization; their ids."""
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> str:
            async with sem:
                r = await self.http.post(
                    "/v1/swarm/projects",
                    json={"organization_id": self.organization_id, "name": f"bench-{i}"},
                )
                r.raise_for_status()
                return str(r.json()["id"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    def specs(
        self, keys: list[str], root: Path, projects: list[str] | None = None
    ) -> list[NodeSpec]:
        """One node spec per key: data under ``root/node<i>``, linked to ``projects[i]`` (else
        the hive's one swarm project)."""
        return [
            NodeSpec(
                i,
                key,
                str(root / f"node{i}"),
                projects[i] if projects is not None else self.swarm_project_id,
            )
            for i, key in enumerate(keys)
        ]

    async def connect_db(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn)


APPLIED_POLL_S = 0.02
"""How often :func:`stream_prefilled` reads the hive's cursors."""


@dataclass(frozen=True)
class Streamed:
    """When the links started, when the first and the last op were seen applied (monotonic)."""

    started: float
    first: float
    done: float

    @property
    def seconds(self) -> float:
        """From the first applied op to the last, at least one poll interval (a stream that
        lands whole between two polls, as a smoke run's can, took no longer than that)."""
        return max(self.done - self.first, APPLIED_POLL_S)


async def stream_prefilled(
    ctx: BenchContext, hive: Hive, fleet: Fleet, conn: asyncpg.Connection, ops: int, label: str
) -> Streamed:
    """Start every link of ``fleet`` (outboxes already filled) and poll the hive's cursors
    (``node_op_cursors``, every 20 ms) until ``ops`` ops are applied."""

    async def applied() -> int:
        sql = "SELECT COALESCE(SUM(applied_through_seq), 0) FROM node_op_cursors"
        return int(await conn.fetchval(sql))

    started = time.monotonic()
    await fleet.call("start_links")
    seconds = ctx.sized(full=10, quick=4, smoke=1)
    await ctx.profile(label, {"hive": hive.pid, "nodes0": fleet.pids[0]}, seconds)
    samples = await poll_until(applied, lambda v: v >= ops, within=600, interval=APPLIED_POLL_S)
    first = next(t for t, v in samples if v > 0)
    return Streamed(started, first, samples[-1][0])


async def copy_baseline(
    conn: asyncpg.Connection, table: str, chunk: int, skip: tuple[str, ...] = ()
) -> tuple[int, float]:
    """The raw-COPY baseline: every row of ``table``, fetched back and written with
    ``copy_records_to_table`` (``chunk`` rows per COPY) into ``bench_copy_<table>`` (``LIKE …
    INCLUDING ALL``: same columns, defaults, constraints and indexes); (rows, seconds)."""
    records = await conn.fetch(f"SELECT * FROM {table}")
    copy = f"bench_copy_{table}"
    await conn.execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")
    # an asyncpg Record iterates over its values: .keys() is needed
    columns = [c for c in records[0].keys() if c not in skip]  # noqa: SIM118
    started = time.perf_counter()
    for i in range(0, len(records), chunk):
        rows = [tuple(r[c] for c in columns) for r in records[i : i + chunk]]
        await conn.copy_records_to_table(copy, records=rows, columns=columns)
    return len(records), time.perf_counter() - started


@contextlib.asynccontextmanager
async def running_hive(
    ctx: BenchContext,
    name: str,
    env: dict[str, str] | None = None,
    processes: int = 1,
    stop_within: float = 20.0,
) -> AsyncIterator[Hive]:
    """``vk-hive serve`` (its own process; ``processes`` of them on one database, each on its
    own port) on a fresh database, an admin with an organization, and one swarm project.
    Stopped on exit (SIGTERM, SIGKILL after ``stop_within`` s); the database is dropped by the
    runner."""
    dsn = await ctx.dbs.create(name)
    base = {"VK_HIVE_LOG_LEVEL": "info", "VK_HIVE_HEARTBEAT_TIMEOUT_S": "60"}
    base.update(env or {})
    process = HiveProcess(dsn, ctx.workdir / name, name="hive", env=base)
    more = [
        HiveProcess(dsn, ctx.workdir / name, name=f"hive{i + 1}", env=base)
        for i in range(1, processes)
    ]
    http: httpx.AsyncClient | None = None
    try:
        # All at once: each serve migrates the empty database as it starts, under the
        # migrations' advisory lock (one applies them, the others find them applied).
        for p in (process, *more):
            p.start_timeout = 60.0
        await asyncio.gather(*(asyncio.to_thread(p.start) for p in (process, *more)))
        boot = await asyncio.to_thread(process.bootstrap)
        http = nodelay_client(process.url, boot.token)
        r = await http.post(
            "/v1/swarm/projects", json={"organization_id": boot.organization_id, "name": "bench"}
        )
        r.raise_for_status()
        yield Hive(process, dsn, http, boot.organization_id, str(r.json()["id"]), more)
    finally:
        if http is not None:
            await http.aclose()
        for p in (*more, process):
            await asyncio.to_thread(p.stop, stop_within)
