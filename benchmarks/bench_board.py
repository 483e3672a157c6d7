"""7. The board: the kanban page ``GET /projects/{id}`` of a project of 1,000 tasks.

The tasks are created over REST (a third of them labelled, half with an executing node), then a
browser session (a login link of ``vk-hive admin login-link``) fetches the page again and again;
each sample is the time from the request to the last byte of the HTML (keep-alive, TCP_NODELAY).
The page reads a fixed number of queries whatever the number of tasks (``vk_hive.web.views``).
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from .common import BenchContext, metric, nodelay_client, percentile, running_hive

NAME = "board"
TASKS = 1000
TARGET_S = 0.2


async def run(ctx: BenchContext) -> None:
    samples = 20 if ctx.quick else 100
    async with running_hive(ctx, "board") as hive:
        labels = []
        for name in ("bug", "docs", "backend"):
            r = await hive.http.post(
                "/v1/swarm/labels", json={"organization_id": hive.organization_id, "name": name}
            )
            r.raise_for_status()
            labels.append(r.json()["id"])
        sem = asyncio.Semaphore(8)

        async def task(i: int) -> None:
            async with sem:
                r = await hive.http.post(
                    "/v1/tasks",
                    json={
                        "project_id": hive.swarm_project_id,
                        "title": f"board task {i}",
                        "description": "echo hi",
                        "executor": "SCRIPT",
                    },
                )
                r.raise_for_status()
                if i % 3 == 0:
                    task_id = r.json()["task"]["id"]
                    r = await hive.http.post(f"/v1/tasks/{task_id}/labels/{labels[(i // 3) % 3]}")
                    r.raise_for_status()

        await asyncio.gather(*(task(i) for i in range(TASKS)))
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
                TASKS // 2,
            )
        finally:
            await conn.close()
        ctx.note(f"board: {TASKS} tasks; {samples} page loads")
        link = await asyncio.to_thread(hive.process.login_link, "admin@example.com")
        async with nodelay_client(hive.url) as browser:
            r = await browser.get(urlsplit(link).path)
            assert r.status_code == 303, r.text
            path = f"/projects/{hive.swarm_project_id}"
            for _ in range(3):  # warm up: templates compiled, pool connections open
                (await browser.get(path)).raise_for_status()
            await ctx.profile("board", {"hive": hive.pid}, samples * 0.05)
            times = []
            size = 0
            for _ in range(samples):
                started = time.perf_counter()
                r = await browser.get(path)
                times.append(time.perf_counter() - started)
                assert r.status_code == 200, r.status_code
                size = len(r.content)
            assert r.text.count('class="card"') == TASKS
    p50, p99 = percentile(times, 50), percentile(times, 99)
    ctx.emit(
        metric(
            "board_page_1000_tasks_p50_ms",
            p50 * 1000,
            "ms",
            target=f"< {TARGET_S * 1000:.0f} ms",
            met=p50 < TARGET_S,
            p99_ms=p99 * 1000,
            max_ms=max(times) * 1000,
            samples=samples,
            tasks=TASKS,
            html_bytes=size,
        )
    )
