"""Fixtures of the sync acceptance tests: clusters of real ``vk-hive`` and ``vk-node`` processes
(``tests/support/cluster.py``) on fresh copies of the migrated hive template database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.cluster import Cluster
from support.hive_db import hive_template
from support.postgres import DatabaseFactory, PostgresServer

__all__ = ["hive_template", "make_cluster", "shared_cluster"]


@pytest.fixture(scope="module")
def _databases(pg_server: PostgresServer) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(pg_server, prefix="vk_e2e_sync")
    try:
        yield factory
    finally:
        asyncio.run(factory.drop_all())


@pytest.fixture(scope="module")
def shared_cluster(
    _databases: DatabaseFactory, hive_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A hive and two linked nodes (``node-a`` linked first) shared by one module's tests."""
    dsn = asyncio.run(_databases.create("shared", template=hive_template))
    with Cluster(tmp_path_factory.mktemp("cluster"), nodes_count=2, dsn=dsn) as cluster:
        yield cluster


@pytest.fixture
def make_cluster(
    _databases: DatabaseFactory, hive_template: str, tmp_path: Path
) -> Iterator[Callable[..., Cluster]]:
    """Factory: ``make_cluster(nodes_count=..., hive_env=..., node_env=...)`` starts a cluster on
    its own fresh database; it is closed (and checked for leftover processes) after the test."""
    started: list[Cluster] = []

    def make(**kwargs: object) -> Cluster:
        dsn = asyncio.run(_databases.create("c", template=hive_template))
        cluster = Cluster(tmp_path / f"cluster{len(started)}", dsn=dsn, **kwargs)  # type: ignore[arg-type]
        started.append(cluster)
        cluster.__enter__()
        return cluster

    try:
        yield make
    finally:
        for cluster in started:
            cluster.__exit__(None)
