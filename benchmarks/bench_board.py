"""7. The board: a project page with 1,000 tasks, and how fast a change reaches an open board.

- ``board_page_ms``: ``GET /projects/{id}`` (the server-rendered kanban, signed in with a
  browser session cookie from a one-time login link) of a swarm project holding 1,000 tasks (a
  third labelled, half with an executing node), sequential requests on one keep-alive
  connection; the page reads a fixed number of queries whatever the number of tasks.
  Baseline, same run: ``GET /v1/tasks?project_id=`` (the same tasks as JSON), so the ratio is
  the cost of the page over the data it shows.
- ``board_change_latency``: with ``nodes`` real node links connected to the project, a board's
  live stream (``/v1/ws``, authenticated by the same cookie, as the board's script opens it)
  is open; tasks are created over REST at a fixed pace and each is timed from just before its
  request to the stream's ``activity`` event for it. Baseline, same run: the REST round trip of
  the create itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from typing import Any

import httpx
import websockets

from .common import (
    BenchContext,
    Hive,
    metric,
    nodelay_client,
    percentile,
    poll_until,
    running_hive,
)
from .nodes import Fleet

NAME = "board"
TASKS = 1000
"""Tasks on the measured page (a smoke run shows a few dozen)."""


async def _seed(hive: Hive, count: int, concurrency: int = 8) -> None:
    """``count`` tasks over REST, a third of them labelled, half with an executing node."""
    labels = []
    for name in ("bug", "docs", "backend"):
        r = await hive.http.post(
            "/v1/swarm/labels", json={"organization_id": hive.organization_id, "name": name}
        )
        r.raise_for_status()
        labels.append(r.json()["id"])
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            r = await hive.http.post(
                "/v1/tasks",
                json={
                    "project_id": hive.swarm_project_id,
                    "title": f"board task {i}",
                    "description": f"task {i} of the board benchmark",
                    "executor": "SCRIPT",
                },
            )
            r.raise_for_status()
            if i % 3 == 0:
                task_id = r.json()["task"]["id"]
                r = await hive.http.post(f"/v1/tasks/{task_id}/labels/{labels[(i // 3) % 3]}")
                r.raise_for_status()

    await asyncio.gather(*(one(i) for i in range(count)))
    conn = await hive.connect_db()
    try:
        node_id = await conn.fetchval(
            "INSERT INTO nodes (organization_id, name, machine_id, capabilities, status) "
            "VALUES ($1, 'bench-node', 'bench', '{\"executors\": [\"SCRIPT\"]}', 'online') "
            "RETURNING id",
            hive.organization_id,
        )
        await conn.execute(
            "UPDATE shared_tasks SET executing_node_id = $1 "
            "WHERE id IN (SELECT id FROM shared_tasks ORDER BY id LIMIT $2)",
            node_id,
            count // 2,
        )
    finally:
        await conn.close()


async def _session_cookie(hive: Hive) -> str:
    link = await asyncio.to_thread(hive.process.login_link, "admin@example.com")
    async with httpx.AsyncClient() as client:
        r = await client.get(link, follow_redirects=False)
    if r.status_code != 303:
        raise RuntimeError(f"login link answered {r.status_code}: {r.text[:200]}")
    cookie = r.cookies.get("vk_hive_session")
    if not cookie:
        raise RuntimeError("the login link set no session cookie")
    return cookie


async def _timed_gets(client: httpx.AsyncClient, path: str, count: int, **kw: Any) -> list[float]:
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        r = await client.get(path, **kw)
        elapsed = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} answered {r.status_code}: {r.text[:200]}")
        times.append(elapsed)
    return times


async def _page(ctx: BenchContext, hive: Hive, cookie: str) -> None:
    tasks = ctx.sized(full=TASKS, quick=TASKS, smoke=30)
    await _seed(hive, tasks)
    loads = ctx.sized(full=100, quick=20, smoke=3)
    page_path = f"/projects/{hive.swarm_project_id}"
    async with nodelay_client(hive.url) as browser:
        browser.cookies.set("vk_hive_session", cookie)
        headers = {"accept": "text/html"}
        await _timed_gets(browser, page_path, 3, headers=headers)  # warm-up
        page = await _timed_gets(browser, page_path, loads, headers=headers)
        last = await browser.get(page_path, headers=headers)
        size = len(last.content)
        if last.text.count('class="card"') != tasks:
            raise RuntimeError("the board page does not show every task")
    params = {"project_id": hive.swarm_project_id}
    await _timed_gets(hive.http, "/v1/tasks", 3, params=params)
    data = await _timed_gets(hive.http, "/v1/tasks", loads, params=params)
    p50, p99, base = percentile(page, 50), percentile(page, 99), percentile(data, 50)
    common = {"tasks": tasks, "loads": loads, "page_bytes": size, "baseline_is": "GET /v1/tasks"}
    ctx.emit(
        metric(
            "board_page_ms_p50",
            p50,
            "ms",
            baseline=base,
            ratio=p50 / base,
            target="< 200 ms",
            met=p50 < 200,
            **common,
        )
    )
    ctx.emit(
        metric(
            "board_page_ms_p99",
            p99,
            "ms",
            baseline=percentile(data, 99),
            ratio=p99 / percentile(data, 99),
            target="(p50 < 200 ms)",
            met=True,
            **common,
        )
    )


async def _change_latency(ctx: BenchContext, hive: Hive, cookie: str, nodes: int) -> None:
    keys = await hive.api_keys(nodes)
    fleet = Fleet(2, ctx.workdir / "board")
    fleet.start()
    count, pace = ctx.sized(full=(300, 0.05), quick=(50, 0.05), smoke=(10, 0.05))
    try:
        # A project of its own: the nodes' first sync of the 1,000-task project would load the
        # machine (two cores for the hive, PostgreSQL and the nodes) while the latency is taken.
        (project,) = await hive.swarm_projects(1)
        await fleet.setup(hive.url, hive.specs(keys, ctx.workdir / "board", [project] * nodes))
        await fleet.call("start_links")
        assert await fleet.total("wait_connected", within=120.0) == nodes
        ws_url = hive.url.replace("http://", "ws://") + "/v1/ws"
        headers = {"Cookie": f"vk_hive_session={cookie}", "Origin": hive.url}
        seen: dict[str, float] = {}
        async with websockets.connect(ws_url, additional_headers=headers) as ws:
            hello = json.loads(await ws.recv())
            if hello.get("type") != "hello":
                raise RuntimeError(f"first frame of /v1/ws: {hello}")

            async def listen() -> None:
                async for frame in ws:
                    msg = json.loads(frame)
                    if msg.get("type") == "activity" and msg.get("event_type") == "task.created":
                        task = msg["payload"]["task"]
                        seen.setdefault(str(task["id"]), time.monotonic())

            listener = asyncio.create_task(listen())
            sent: dict[str, float] = {}
            rest: list[float] = []
            await ctx.profile("board", {"hive": hive.pid}, count * pace)
            for i in range(count):
                t0 = time.monotonic()
                r = await hive.http.post(
                    "/v1/tasks",
                    json={
                        "project_id": project,
                        "title": f"live {i}",
                        "executor": "SCRIPT",
                    },
                )
                rest.append((time.monotonic() - t0) * 1000)
                r.raise_for_status()
                sent[str(r.json()["task"]["id"])] = t0
                await asyncio.sleep(max(0.0, t0 + pace - time.monotonic()))

            async def arrived() -> int:
                return len(seen.keys() & sent.keys())

            with contextlib.suppress(TimeoutError):  # the missing ones are reported
                await poll_until(arrived, lambda n: n >= len(sent), within=5, interval=0.05)
            listener.cancel()
    finally:
        await fleet.close()
    latencies = [(seen[k] - t) * 1000 for k, t in sent.items() if k in seen]
    missing = len(sent) - len(latencies)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    base = percentile(rest, 50)
    common = {"nodes": nodes, "tasks": count, "missing": missing, "baseline_is": "REST create"}
    ctx.emit(
        metric(
            "board_change_latency_p50",
            p50,
            "ms",
            baseline=base,
            ratio=p50 / base,
            target="(p99 < 500 ms)",
            met=True,
            **common,
        )
    )
    ctx.emit(
        metric(
            "board_change_latency_p99",
            p99,
            "ms",
            baseline=base,
            ratio=p99 / base,
            target="< 500 ms",
            met=not math.isnan(p99) and p99 < 500 and missing == 0,
            **common,
        )
    )


async def run(ctx: BenchContext) -> None:
    nodes = ctx.sized(full=100, quick=10, smoke=2)
    env = {"VK_HIVE_LEASE_TTL_S": "600", "VK_HIVE_HEARTBEAT_INTERVAL_S": "5"}
    async with running_hive(ctx, "board", env) as hive:
        cookie = await _session_cookie(hive)
        await _page(ctx, hive, cookie)
        await _change_latency(ctx, hive, cookie, nodes)
