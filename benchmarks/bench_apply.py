"""1. Op apply throughput: pre-filled node outboxes streamed into the hive.

Every node links its own swarm project (so a task event goes back to its origin node only:
the activity fan-out to other nodes is not what this measures). Every node's outbox holds its
ops before its link starts; the hive applies them (dedup, fence, record in ``node_op_log``,
advance the cursor, activity rows) and acks. Throughput = ops / time from the first applied batch
to the last (the hive's ``node_op_cursors`` are polled every 20 ms); the applied rows are counted
in ``shared_tasks``.

* ``mode: hive`` — protocol-only nodes (:mod:`benchmarks.simnode`), ops pre-encoded: new tasks and
  updates of the node's earlier tasks, half each; then the same with two ``vk-hive serve``
  processes on the one database, the nodes spread over both (``hive_processes: 2``, baseline =
  the one-process figure of the same run).
* ``mode: e2e`` — real links and node stores; the outboxes hold new-task ops.

Baseline, same run: the very rows the hive wrote, fetched back and written with asyncpg's
``copy_records_to_table`` into ``CREATE TABLE … (LIKE shared_tasks INCLUDING ALL)``.
"""

from __future__ import annotations

from dataclasses import dataclass

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

TARGET = ">= 20000 ops/s and ratio >= 0.5 of raw COPY"


@dataclass(frozen=True)
class Applied:
    nodes: int
    ops: int
    rows: int
    logged: int
    seconds: float
    seconds_incl_connect: float
    copied: int
    copy_s: float
    rejected: int

    @property
    def value(self) -> float:
        return self.ops / self.seconds

    @property
    def baseline(self) -> float:
        return self.copied / self.copy_s


async def run(ctx: BenchContext) -> None:
    if "hive" in ctx.modes:
        one = await _apply(ctx, "hive", processes=1)
        _emit(ctx, one, "hive", 1)
        two = await _apply(ctx, "hive", processes=2)
        ctx.emit(
            metric(
                "op_apply_throughput",
                two.value,
                "ops/s",
                baseline=one.value,
                ratio=two.value / one.value,
                target="(reported: 2 hive processes against 1, same run)",
                met=two.rejected == 0,
                mode="hive",
                hive_processes=2,
                nodes=two.nodes,
                ops=two.ops,
                applied_rows=two.rows,
                seconds=two.seconds,
                copy_rows_per_s=two.baseline,
                baseline_method="op_apply_throughput with 1 hive process, same run",
            )
        )
    if "e2e" in ctx.hive_side_modes():
        _emit(ctx, await _apply(ctx, "e2e", processes=1), "e2e", 1)


def _emit(ctx: BenchContext, a: Applied, mode: str, processes: int) -> None:
    ratio = a.value / a.baseline
    ctx.emit(
        metric(
            "op_apply_throughput",
            a.value,
            "ops/s",
            baseline=a.baseline,
            ratio=ratio,
            target=TARGET,
            met=a.value >= 20_000 and ratio >= 0.5 and a.rejected == 0,
            mode=mode,
            hive_processes=processes,
            nodes=a.nodes,
            ops=a.ops,
            applied_rows=a.rows,
            op_log_rows=a.logged,
            rejected=a.rejected,
            seconds=a.seconds,
            seconds_incl_connect=a.seconds_incl_connect,
            op_type=(
                "task.upsert (half new tasks, half updates)"
                if mode == "hive"
                else "task.upsert (new tasks)"
            ),
            baseline_method="asyncpg copy_records_to_table of the same rows, 10k per COPY",
        )
    )


async def _apply(ctx: BenchContext, mode: str, processes: int) -> Applied:
    if mode == "hive":
        nodes, per_node, workers = ctx.sized(
            full=(100, 500, 1), quick=(10, 200, 1), smoke=(2, 20, 1)
        )
    else:
        nodes, per_node, workers = ctx.sized(
            full=(100, 250, 2), quick=(10, 200, 2), smoke=(2, 20, 2)
        )
    total = nodes * per_node
    label = f"apply-{mode}-{processes}"
    async with running_hive(ctx, label.replace("-", "_"), processes=processes) as hive:
        keys = await hive.api_keys(nodes)
        projects = await hive.swarm_projects(nodes)
        fleet = Fleet(workers, ctx.workdir / label, mode)
        fleet.start()
        try:
            await fleet.setup(hive.urls, hive.specs(keys, ctx.workdir / label, projects))
            if mode == "hive":
                filled = await fleet.total("prefill_tasks", per_node=per_node, updates=0.5)
            else:
                filled = await fleet.total("prefill_tasks", per_node=per_node)
            assert filled == total, filled
            ctx.note(f"{label}: {nodes} nodes x {per_node} ops pre-filled; starting links")
            conn = await hive.connect_db()
            try:
                streamed = await stream_prefilled(ctx, hive, fleet, conn, total, label)
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
            rejected = 0
            if mode == "hive":
                rejected = sum(s["rejected"] for s in await fleet.call("stats"))
        finally:
            await fleet.close()
    return Applied(
        nodes=nodes,
        ops=total,
        rows=rows,
        logged=logged,
        seconds=streamed.seconds,
        seconds_incl_connect=streamed.done - streamed.started,
        copied=copied,
        copy_s=copy_s,
        rejected=rejected,
    )
