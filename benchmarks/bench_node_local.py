"""6. Node-local: durable writes, log capture and REST writes (no hive involved).

* writes: sequential writes on one node store, each a task update plus its outbox op in one
  ``store.write()`` transaction (``BEGIN IMMEDIATE`` … ``COMMIT`` in one round trip to the
  writer thread, WAL, ``synchronous=NORMAL``: durable across a process crash, the product's
  setting); latency p99 and writes/s;
* log capture: one SCRIPT run whose process prints lines as fast as it can, through the real
  executor (pipes, line splitting, batched inserts into ``log_entries`` with their
  ``logs.append`` ops); lines/s from the run's start to the last line committed;
* REST write: a real ``vk-node serve`` (standalone, default settings, fresh data dir) and one
  keep-alive HTTP/1.1 client sending sequential ``PATCH /api/tasks/{id}``; req/s, with the same
  client against ``GET /api/health`` as the baseline (the ratio is the cost of the write).

Every line is end to end (``"mode": "e2e"``): what a caller of the store or of the API sees.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import BenchContext, metric, percentile
from .nodes import Fleet, NodeSpec

NAME = "node_local"

MODE = "e2e"

WRITE_TARGET_PER_S = 5_000
REST_TARGET_PER_S = 2_000
P99_TARGET_MS = 5.0


async def run(ctx: BenchContext) -> None:
    writes, lines = ctx.sized(full=(5_000, 500_000), quick=(300, 20_000), smoke=(50, 2_000))
    root = ctx.workdir / "local"
    fleet = Fleet(1, root)
    fleet.start()
    try:
        spec = NodeSpec(0, "unused", str(root / "node0"), "00000000-0000-0000-0000-000000000000")
        # Not linked to a hive: no link runs, writes still append their outbox ops.
        await fleet.setup("http://127.0.0.1:9", [spec], {"executors": "SCRIPT"})
        await fleet.call("prefill_tasks", per_node=100)
        seconds = ctx.sized(full=8, quick=3, smoke=1)
        await ctx.profile("node_local", {"node": fleet.pids[0]}, seconds)
        (latencies,) = await fleet.call("local_writes", count=writes)
        (capture,) = await fleet.call("log_capture", lines=lines, within=300.0)
    finally:
        await fleet.close()
    _emit_writes(ctx, latencies, writes)
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
            mode=MODE,
        )
    )
    await _rest_writes(ctx, root / "serve", ctx.sized(full=5_000, quick=500, smoke=50))


def _emit_writes(ctx: BenchContext, latencies: list[float], writes: int) -> None:
    ms = [x * 1000 for x in latencies]
    p50, p99 = percentile(ms, 50), percentile(ms, 99)
    durability = "WAL, synchronous=NORMAL, one BEGIN IMMEDIATE transaction per write"
    ctx.emit(
        metric(
            "node_write_latency_p99",
            p99,
            "ms",
            target=f"< {P99_TARGET_MS:g} ms",
            met=p99 < P99_TARGET_MS,
            p50_ms=p50,
            writes=writes,
            durability=durability,
            mode=MODE,
        )
    )
    per_s = len(latencies) / sum(latencies) if latencies else math.nan
    ctx.emit(
        metric(
            "node_write_throughput",
            per_s,
            "writes/s",
            target=f">= {WRITE_TARGET_PER_S:,} writes/s, p99 < {P99_TARGET_MS:g} ms",
            met=per_s >= WRITE_TARGET_PER_S and p99 < P99_TARGET_MS,
            p50_ms=p50,
            p99_ms=p99,
            writes=writes,
            sequential=True,
            durability=durability,
            mode=MODE,
        )
    )


# --- REST: a real `vk-node serve` and one keep-alive client ---------------------------------------


async def _rest_writes(ctx: BenchContext, root: Path, count: int) -> None:
    with _Serve(root) as serve:
        await asyncio.to_thread(serve.wait_ready, 30.0)
        task_path = await asyncio.to_thread(serve.make_task)
        await ctx.profile("node_rest", {"serve": serve.pid}, ctx.sized(full=6, quick=3, smoke=1))
        writes, health = await asyncio.to_thread(serve.measure, task_path, count)
    ms = [x * 1000 for x in writes]
    base_ms = [x * 1000 for x in health]
    rate = len(writes) / sum(writes)
    base_rate = len(health) / sum(health)
    p99 = percentile(ms, 99)
    ctx.emit(
        metric(
            "node_rest_write_throughput",
            rate,
            "req/s",
            baseline=base_rate,
            ratio=rate / base_rate,
            target=f">= {REST_TARGET_PER_S:,} req/s, p99 < {P99_TARGET_MS:g} ms",
            met=rate >= REST_TARGET_PER_S and p99 < P99_TARGET_MS,
            p50_ms=percentile(ms, 50),
            p99_ms=p99,
            requests=len(writes),
            baseline_endpoint="GET /api/health",
            baseline_p50_ms=percentile(base_ms, 50),
            baseline_p99_ms=percentile(base_ms, 99),
            request="PATCH /api/tasks/{id} (title + status), one keep-alive client, sequential",
            server="vk-node serve, standalone, default settings",
            mode=MODE,
        )
    )


class _Serve:
    """``vk-node serve`` on a free loopback port with a fresh data dir (killed on exit)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_NODE_", "VK_HIVE_"))}
        env.update(
            {
                "VK_NODE_DATA_DIR": str(root / "data"),
                "VK_NODE_HOST": "127.0.0.1",
                "VK_NODE_PORT": str(self.port),
                "VK_NODE_NAME": "bench",
            }
        )
        self._log = (root / "serve.log").open("wb")
        binary = Path(sys.executable).parent / "vk-node"
        self._proc = subprocess.Popen(
            [str(binary), "serve"], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid = self._proc.pid

    def __enter__(self) -> _Serve:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    def wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"vk-node serve exited ({self._proc.returncode})")
            try:
                with _KeepAlive(self.port) as client:
                    if client.request("GET", "/api/health")[0] == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("vk-node serve did not answer /api/health")

    def make_task(self) -> str:
        """A project (on a fresh git repository) and one task; the task's path."""
        from support.cluster import make_demo_repo

        repo = make_demo_repo(self.root / "repo")
        with _KeepAlive(self.port) as client:
            project = client.json(
                "POST", "/api/projects", {"name": "bench", "git_repo_path": str(repo)}
            )
            task = client.json("POST", "/api/tasks", {"project_id": project["id"], "title": "t"})
            path = f"/api/tasks/{task['id']}"
            client.json("PATCH", path, {"status": "inprogress"})
        return path

    def measure(self, task_path: str, count: int) -> tuple[list[float], list[float]]:
        """Warm-up, then ``count`` sequential PATCHes and ``count`` health checks (alternating
        halves, so both see the same machine); per-request seconds."""
        statuses = ("inreview", "inprogress")  # a status change on every write
        writes: list[float] = []
        health: list[float] = []
        with _KeepAlive(self.port) as client:

            def patch(k: int) -> float:
                body = {"title": f"rest write {k}", "status": statuses[k % 2]}
                t0 = time.perf_counter()
                status, _ = client.request("PATCH", task_path, body)
                elapsed = time.perf_counter() - t0
                if status != 200:
                    raise RuntimeError(f"PATCH answered {status}")
                return elapsed

            def check() -> float:
                t0 = time.perf_counter()
                status, _ = client.request("GET", "/api/health")
                elapsed = time.perf_counter() - t0
                if status != 200:
                    raise RuntimeError(f"health answered {status}")
                return elapsed

            for k in range(min(200, count)):
                patch(k)
                check()
            half = count // 2
            for part in (0, 1):
                writes += [patch(k) for k in range(half * part, half * (part + 1))]
                health += [check() for _ in range(half)]
        return writes, health


class _KeepAlive:
    """A minimal HTTP/1.1 keep-alive client on one socket (TCP_NODELAY): the client's own cost
    stays small next to the server's."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def __enter__(self) -> _KeepAlive:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.request(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path} answered {status}: {data[:200]!r}")
        return json.loads(data)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        self._sock.sendall(head.encode() + b"\r\n" + payload)
        while b"\r\n\r\n" not in self._buf:
            self._recv()
        header, _, self._buf = self._buf.partition(b"\r\n\r\n")
        lines = header.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self._buf) < length:
            self._recv()
        data, self._buf = self._buf[:length], self._buf[length:]
        return status, data

    def _recv(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buf += chunk
