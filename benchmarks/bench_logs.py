"""3. Log shipping node → hive: lines per second through ``logs.append`` ops.

Every node (own swarm project) holds one running execution and ``lines`` stdout lines, in
``logs.append`` ops of 200 lines (the executor's batch), after the task, attempt and execution
ops. The hive inserts the lines into ``node_task_output_logs``. Throughput = lines / time from
the first applied batch to the last; the rows are counted on the hive.

* ``mode: hive`` — protocol-only nodes, the ops encoded before the links start;
* ``mode: e2e`` — real links and stores: the lines are in ``log_entries``, written the way the
  executor writes them, and the link reads them at send time.

Baseline, same run: the very rows the hive wrote, written again with asyncpg's
``copy_records_to_table`` into ``CREATE TABLE … (LIKE node_task_output_logs INCLUDING ALL)``.
"""

from __future__ import annotations

from .common import BenchContext, copy_baseline, metric, running_hive, stream_prefilled
from .nodes import Fleet

NAME = "logs"


async def run(ctx: BenchContext) -> None:
    for mode in ctx.hive_side_modes():
        await _measure(ctx, mode)


async def _measure(ctx: BenchContext, mode: str) -> None:
    if mode == "hive":
        nodes, per_node, workers = ctx.sized(
            full=(50, 10_000, 1), quick=(5, 4_000, 1), smoke=(2, 400, 1)
        )
    else:
        nodes, per_node, workers = ctx.sized(
            full=(50, 5_000, 2), quick=(5, 4_000, 2), smoke=(2, 400, 2)
        )
    total_lines = nodes * per_node
    label = f"logs-{mode}"
    async with running_hive(ctx, label.replace("-", "_")) as hive:
        keys = await hive.api_keys(nodes)
        projects = await hive.swarm_projects(nodes)
        fleet = Fleet(workers, ctx.workdir / label, mode)
        fleet.start()
        try:
            await fleet.setup(hive.url, hive.specs(keys, ctx.workdir / label, projects))
            assert await fleet.total("prefill_logs", per_node=per_node) == total_lines
            total_ops = await fleet.total("backlog")
            ctx.note(f"{label}: {nodes} nodes x {per_node} lines ({total_ops} ops); starting links")
            conn = await hive.connect_db()
            try:
                streamed = await stream_prefilled(ctx, hive, fleet, conn, total_ops, label)
                rows = int(await conn.fetchval("SELECT count(*) FROM node_task_output_logs"))
                copied, copy_s = await copy_baseline(
                    conn, "node_task_output_logs", 50_000, skip=("id",)
                )
            finally:
                await conn.close()
        finally:
            await fleet.close()
    elapsed = streamed.seconds
    value = total_lines / elapsed
    baseline = copied / copy_s
    ratio = value / baseline
    ctx.emit(
        metric(
            "log_shipping_throughput",
            value,
            "lines/s",
            baseline=baseline,
            ratio=ratio,
            target=">= 100000 lines/s and ratio >= 0.5 of raw COPY",
            met=value >= 100_000 and ratio >= 0.5 and rows == total_lines,
            mode=mode,
            nodes=nodes,
            lines=total_lines,
            hive_rows=rows,
            line_bytes=80,
            seconds=elapsed,
            seconds_incl_connect=streamed.done - streamed.started,
            baseline_method="asyncpg copy_records_to_table of the same rows, 50k per COPY",
        )
    )
