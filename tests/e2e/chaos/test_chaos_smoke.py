"""``make chaos`` in small: a short fixed-seed schedule of faults and workload against a real
hive and real nodes, and one against two hive processes on one database (``make chaos HIVES=2``),
pass the invariant checker (exactly-once ops, fenced writes, no double run, convergence with a
quiet digest) and leave no process behind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.chaos import format_failure, run_schedule
from support.postgres import DatabaseFactory, PostgresServer

DURATION_S = 5.0
NODES = 2


@pytest.fixture(scope="module")
def databases(pg_server: PostgresServer) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(pg_server, prefix="vk_chaos_smoke")
    try:
        yield factory
    finally:
        asyncio.run(factory.drop_all())


@pytest.mark.timeout(80)
@pytest.mark.parametrize("seed", [7])
def test_a_short_chaos_schedule_passes_the_checker(
    seed: int, databases: DatabaseFactory, hive_template: str, tmp_path: Path
) -> None:
    """A seeded schedule (kills, restarts, cuts, delays, skews, dispatches and edits) ends with
    every invariant holding."""
    dsn = asyncio.run(databases.create("smoke", template=hive_template))
    result = run_schedule(
        seed, dsn, tmp_path / f"seed-{seed}", duration=DURATION_S, nodes=NODES, quiesce_timeout=30
    )
    assert result.ok, format_failure(result, DURATION_S, NODES)
    assert sum(result.stats.values()) > 0


TWO_HIVES_SEED = 299
"""Kills hive-2, cuts node-b's link to hive-1, kills node-b, then kills hive-1 once hive-2 is
back (its nodes fail over twice); dispatches and edits go through both hives."""


@pytest.mark.timeout(100)
def test_a_short_two_hive_chaos_schedule_passes_the_checker(
    databases: DatabaseFactory, hive_template: str, tmp_path: Path
) -> None:
    """With two hive processes on one database, each killed in turn while nodes fail over between
    them, every invariant holds (read from the shared database)."""
    dsn = asyncio.run(databases.create("smoke2", template=hive_template))
    result = run_schedule(
        TWO_HIVES_SEED,
        dsn,
        tmp_path / "two-hives",
        duration=DURATION_S,
        nodes=NODES,
        hives=2,
        quiesce_timeout=30,
    )
    assert result.ok, format_failure(result, DURATION_S, NODES, hives=2)
    assert result.stats["hive_kill"] == 2
    assert result.stats["dispatch"] > 0
