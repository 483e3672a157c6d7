"""Activity retention under the leader: the periodic maintenance job drops expired partitions and
``GET /metrics`` shows what it did."""

from __future__ import annotations

import time

import pytest

from .conftest import World, scrape

pytestmark = pytest.mark.asyncio


async def test_maintenance_run_drops_old_partitions_and_reports_them(world: World) -> None:
    """A partition ten days old is dropped by one run of the leader's periodic maintenance job;
    /metrics then counts it as dropped, shows the run's time and the partitions still present."""
    async with world.db.acquire() as conn:
        old = await conn.fetchval("SELECT ensure_activity_partition(now() - interval '10 days')")
    assert world.ctx.leader is not None
    assert world.ctx.leader.is_leader
    before = await scrape(world.http)
    dropped_before = before.value("vk_hive_activity_partitions_dropped_total")
    runs_before = before.value("vk_hive_maintenance_runs_total")

    job = next(j for j in world.ctx.jobs.jobs if j.name == "maintenance")
    started = time.time()
    await job.run()  # the job exactly as the runner awaits it (wrapped by the leader check)

    async with world.db.acquire() as conn:
        names = {
            r["relname"]
            for r in await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'activity'::regclass"
            )
        }
    assert old not in names
    m = await scrape(world.http)
    assert m.value("vk_hive_activity_partitions_dropped_total") == dropped_before + 1
    assert m.value("vk_hive_maintenance_runs_total") == runs_before + 1
    assert m.value("vk_hive_maintenance_last_run_timestamp_seconds") >= int(started)
    assert m.value("vk_hive_activity_partitions") == len(names) >= 3
