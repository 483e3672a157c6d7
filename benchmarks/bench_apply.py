"""1. Op apply throughput: pre-filled node outboxes streamed by the real link into the hive.

Every node links its own swarm project (so a task event goes back to its origin node only:
the activity fan-out to other nodes is not what this measures). Every node's outbox holds
``ops`` new-task ``task.upsert`` ops before its link starts; the hive applies them (dedup, fence,
record in ``node_op_log``, advance the cursor, activity rows) and acks. Throughput = ops / time
from the first applied batch to the last (the hive's ``node_op_cursors`` are polled every
20 ms); the applied rows are counted in ``shared_tasks``.

Baseline, same run: the very rows the hive wrote, fetched back and written with asyncpg's
``copy_records_to_table`` into ``CREATE TABLE … (LIKE shared_tasks INCLUDING ALL)``.
"""

from __future__ import annotations

from .common import (
    BenchContext,
    copy_baseline,
    metric,
    poll_until,
    running_hive,
    stream_prefilled,
)
from .nodes import Fleet

NAME = "apply"


async def run(ctx: BenchContext) -> None:
    nodes, per_node = (10, 200) if ctx.quick else (100, 250)
    total = nodes * per_node
    async with running_hive(ctx, "apply") as hive:
        keys = await hive.api_keys(nodes)
        projects = await hive.swarm_projects(nodes)
        fleet = Fleet(2, ctx.workdir / "apply")
        fleet.start()
        try:
            await fleet.setup(hive.url, hive.specs(keys, ctx.workdir / "apply", projects))
            filled = await fleet.total("prefill_tasks", per_node=per_node)
            assert filled == total, filled
            ctx.note(f"apply: {nodes} nodes x {per_node} ops pre-filled; starting links")
            conn = await hive.connect_db()
            try:
                streamed = await stream_prefilled(ctx, hive, fleet, conn, total, "apply")
                rows = int(
                    await conn.fetchval(
                        "SELECT count(*) FROM shared_tasks WHERE source_node_id IS NOT NULL"
                    )
                )
                logged = int(await conn.fetchval("SELECT count(*) FROM node_op_log"))
                copied, copy_s = await copy_baseline(conn, "shared_tasks", 10_000)
            finally:
                await conn.close()
            await poll_until(
                lambda: fleet.total("backlog"), lambda v: v == 0, within=120, interval=0.2
            )
        finally:
            await fleet.close()
    elapsed = streamed.done - streamed.first
    value = total / elapsed
    baseline = copied / copy_s
    ratio = value / baseline
    ctx.emit(
        metric(
            "op_apply_throughput",
            value,
            "ops/s",
            baseline=baseline,
            ratio=ratio,
            target=">= 20000 ops/s and ratio >= 0.5 of raw COPY",
            met=value >= 20_000 and ratio >= 0.5,
            nodes=nodes,
            ops=total,
            applied_rows=rows,
            op_log_rows=logged,
            seconds=elapsed,
            seconds_incl_connect=streamed.done - streamed.started,
            op_type="task.upsert (new tasks)",
            baseline_method="asyncpg copy_records_to_table of the same rows, 10k per COPY",
        )
    )
