"""3. Log shipping node → hive: lines per second through ``logs.append`` ops.

Every node (own swarm project) holds one running execution and ``lines`` stdout lines in
``log_entries``, written the way the executor writes them (chunks of ``log_batch_lines``, one
``logs.append`` op per chunk, the task/attempt/execution ops first). The link reads the lines at
send time and the hive inserts them into ``node_task_output_logs``. Throughput = lines / time from
the first applied batch to the last; the rows are counted on the hive.

Baseline, same run: the very rows the hive wrote, written again with asyncpg's
``copy_records_to_table`` into ``CREATE TABLE … (LIKE node_task_output_logs INCLUDING ALL)``.
"""

from __future__ import annotations

from .common import BenchContext, copy_baseline, metric, running_hive, stream_prefilled
from .nodes import Fleet

NAME = "logs"


async def run(ctx: BenchContext) -> None:
    nodes, per_node = (5, 4_000) if ctx.quick else (50, 5_000)
    total_lines = nodes * per_node
    async with running_hive(ctx, "logs") as hive:
        keys = await hive.api_keys(nodes)
        projects = await hive.swarm_projects(nodes)
        fleet = Fleet(2, ctx.workdir / "logs")
        fleet.start()
        try:
            await fleet.setup(hive.url, hive.specs(keys, ctx.workdir / "logs", projects))
            assert await fleet.total("prefill_logs", per_node=per_node) == total_lines
            total_ops = await fleet.total("backlog")
            ctx.note(f"logs: {nodes} nodes x {per_node} lines ({total_ops} ops); starting links")
            conn = await hive.connect_db()
            try:
                streamed = await stream_prefilled(ctx, hive, fleet, conn, total_ops, "logs")
                rows = int(await conn.fetchval("SELECT count(*) FROM node_task_output_logs"))
                copied, copy_s = await copy_baseline(
                    conn, "node_task_output_logs", 50_000, skip=("id",)
                )
            finally:
                await conn.close()
        finally:
            await fleet.close()
    elapsed = streamed.done - streamed.first
    value = total_lines / elapsed
    baseline = copied / copy_s
    ctx.emit(
        metric(
            "log_shipping_throughput",
            value,
            "lines/s",
            baseline=baseline,
            ratio=value / baseline,
            target=">= 100000 lines/s",
            met=value >= 100_000 and rows == total_lines,
            nodes=nodes,
            lines=total_lines,
            hive_rows=rows,
            line_bytes=80,
            seconds=elapsed,
            seconds_incl_connect=streamed.done - streamed.started,
            baseline_method="asyncpg copy_records_to_table of the same rows, 50k per COPY",
        )
    )
