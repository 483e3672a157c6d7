"""The gateway tests' ``world`` (a real hive with fast gateway settings, an organization with a
project, protocol-client nodes) and ``scrape`` for ``GET /metrics``."""

from __future__ import annotations

import httpx

from support.metrics import Samples

from ..gateway.conftest import World, running_world, world

__all__ = ["World", "running_world", "scrape", "world"]


async def scrape(http: httpx.AsyncClient) -> Samples:
    r = await http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return Samples(r.text)
