"""The node's Prometheus metrics (``GET /api/metrics``).

Nothing here sits on a hot path: the executor and the hive link keep plain integer counters
(``ExecutorService.log_lines_captured()``, ``HiveLink.stats``), and every series is built when the
endpoint is scraped, from those counters and two cheap reads of the store. One
:class:`NodeMetrics` per application, with its own ``CollectorRegistry``, so several nodes can run
in one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, get_args

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from vk_node import __version__
from vk_node.link.state import State
from vk_node.store import outbox

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from vk_node.executor.service import ExecutorService
    from vk_node.link import HiveLink
    from vk_node.retention import RetentionJob
    from vk_node.store import Store

__all__ = ["CONTENT_TYPE_LATEST", "LINK_STATES", "NodeMetrics", "RunningNode", "Snapshot"]

LINK_STATES: tuple[str, ...] = get_args(State)


class RunningNode(Protocol):
    """What a scrape reads (a :class:`vk_node.context.NodeContext` inside the app's lifespan);
    named by its shape, so the context may hold the metrics without an import cycle."""

    @property
    def store(self) -> Store: ...

    @property
    def executor(self) -> ExecutorService: ...

    @property
    def link(self) -> HiveLink | None: ...

    @property
    def retention(self) -> RetentionJob | None: ...


@dataclass(frozen=True)
class Snapshot:
    """Everything one scrape reports, read from the running node."""

    backlog: int
    oldest_unacked_age_s: float
    link_state: str
    running_processes: int
    log_lines: int
    ops_acked: int
    link_sessions: int
    held_leases: int
    retention_runs: int = 0
    retention_deleted: tuple[tuple[str, int], ...] = ()
    """Rows deleted by retention since start, by kind (``log_entries``, ``tasks``...)."""
    retention_last_run: float = 0.0


class _SnapshotCollector(Collector):
    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("vk_node", "Version of this node")
        info.add_metric([], {"version": __version__})
        yield info
        s = self.snapshot
        if s is None:
            return
        yield GaugeMetricFamily(
            "vk_node_outbox_backlog", "Outbox ops not yet acknowledged by the hive", s.backlog
        )
        yield GaugeMetricFamily(
            "vk_node_outbox_oldest_unacked_age_seconds",
            "Age of the oldest unacknowledged outbox op (0 when none waits)",
            s.oldest_unacked_age_s,
        )
        state = GaugeMetricFamily(
            "vk_node_link_state", "The hive link's state (1 for the current one)", labels=["state"]
        )
        for name in LINK_STATES:
            state.add_metric([name], 1.0 if name == s.link_state else 0.0)
        yield state
        yield GaugeMetricFamily(
            "vk_node_link_connected",
            "1 while a session with the hive is established",
            1.0 if s.link_state == "connected" else 0.0,
        )
        yield GaugeMetricFamily(
            "vk_node_running_processes",
            "Coding-agent and script processes running now (dev servers excluded)",
            s.running_processes,
        )
        yield GaugeMetricFamily(
            "vk_node_held_leases", "Hive assignments whose lease this node holds", s.held_leases
        )
        yield CounterMetricFamily(
            "vk_node_log_lines", "Output lines captured from runs since start", s.log_lines
        )
        yield CounterMetricFamily(
            "vk_node_ops_acked", "Outbox ops acknowledged by the hive since start", s.ops_acked
        )
        yield CounterMetricFamily(
            "vk_node_link_sessions", "Hive sessions established since start", s.link_sessions
        )
        yield from _retention_metrics(s)


def _retention_metrics(s: Snapshot) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "vk_node_retention_runs", "Retention runs finished since start", s.retention_runs
    )
    deleted = CounterMetricFamily(
        "vk_node_retention_deleted",
        "Rows (and image files) deleted by retention since start, by kind",
        labels=["kind"],
    )
    for kind, count in s.retention_deleted:
        deleted.add_metric([kind], count)
    yield deleted
    yield GaugeMetricFamily(
        "vk_node_retention_last_run_timestamp_seconds",
        "Unix time of the last finished retention run (0: none yet)",
        s.retention_last_run,
    )


def _retention_fields(job: RetentionJob | None) -> dict[str, Any]:
    if job is None:
        return {}
    d = job.deleted
    return {
        "retention_runs": job.runs,
        "retention_deleted": (
            ("log_entries", d.log_entries),
            ("log_chunks", d.log_chunks),
            ("tasks", d.tasks),
            ("images", d.images),
        ),
        "retention_last_run": job.last_run,
    }


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = _SnapshotCollector()
        self.registry.register(self._collector)

    async def snapshot(self, ctx: RunningNode) -> Snapshot:
        async with ctx.store.read() as conn:
            backlog = await outbox.backlog_count(conn)
            oldest = await outbox.oldest_unacked_created_at(conn)
        age = 0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        link = ctx.link
        executor = ctx.executor
        return Snapshot(
            backlog=backlog,
            oldest_unacked_age_s=age,
            link_state="standalone" if link is None else link.state.state,
            running_processes=executor.running_count(),
            log_lines=executor.log_lines_captured(),
            ops_acked=0 if link is None else link.stats.ops_acked,
            link_sessions=0 if link is None else link.stats.sessions,
            held_leases=0 if link is None else len(link.assignments.leases),
            **_retention_fields(ctx.retention),
        )

    async def render(self, ctx: RunningNode) -> bytes:
        """The exposition text of the node now."""
        snapshot = await self.snapshot(ctx)
        # No await between setting the snapshot and rendering it: concurrent scrapes cannot mix.
        self._collector.snapshot = snapshot
        return generate_latest(self.registry)
