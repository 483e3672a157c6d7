"""``GET /metrics`` exports the hive's event-loop lag histogram, sampled by a lifespan job."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import World, scrape

pytestmark = pytest.mark.asyncio


async def test_metrics_export_event_loop_lag(world: World) -> None:
    """A running hive has observed its loop lag several times a second, with small values."""
    await asyncio.sleep(0.3)
    m = await scrape(world.http)
    assert m.types["vk_hive_event_loop_lag_seconds"] == "histogram"
    count = m.value("vk_hive_event_loop_lag_seconds_count")
    assert count >= 3
    assert 0 <= m.value("vk_hive_event_loop_lag_seconds_sum") < count
    await asyncio.sleep(0.2)
    later = await scrape(world.http)
    assert later.value("vk_hive_event_loop_lag_seconds_count") > count
