"""The hive's Prometheus metrics (``GET /metrics``).

One :class:`HiveMetrics` per application, on its own ``CollectorRegistry`` (never the process-wide
default), so several hives can run in one process. Code on hot paths only increments counters and
observes histograms; gauges (connected nodes, active leases, database reachability) are computed
when ``/metrics`` is scraped.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from vk_hive import __version__
from vk_shared.protocol import PROTOCOL_VERSION
from vk_shared.wire import OpType

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from prometheus_client.metrics_core import Metric

    from vk_hive.jobs.maintenance import MaintenanceReport

__all__ = ["CONTENT_TYPE_LATEST", "OP_OUTCOMES", "HiveMetrics", "MaintenanceCollector"]

OP_OUTCOMES = ("applied", "skipped", "parked", "duplicate")
"""How one op of an ``op_batch`` ended: applied, skipped (rejected: recorded and acked), parked
(a parent is missing: the batch stopped there) or duplicate (already applied before)."""

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class MaintenanceCollector(Collector):
    """The maintenance job's series (the leader's periodic job; see ``vk_hive.jobs``): plain
    numbers updated after each run, the partition count at scrape time."""

    def __init__(self) -> None:
        self.runs = 0
        self.dropped = 0
        self.last_run = 0.0
        self.partitions: int | None = None

    def describe(self) -> Iterator[Metric]:
        return iter(())  # series are only known once collected (like the node's collector)

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "vk_hive_maintenance_runs",
            "Maintenance runs finished on this hive process (only the leader runs them)",
            self.runs,
        )
        yield CounterMetricFamily(
            "vk_hive_activity_partitions_dropped",
            "Activity partitions dropped by retention on this hive process",
            self.dropped,
        )
        yield GaugeMetricFamily(
            "vk_hive_maintenance_last_run_timestamp_seconds",
            "Unix time of this process's last finished maintenance run (0: none yet)",
            self.last_run,
        )
        if self.partitions is not None:
            yield GaugeMetricFamily(
                "vk_hive_activity_partitions",
                "Daily partitions of the activity table (database, at scrape time)",
                self.partitions,
            )


class HiveMetrics:
    """Every series of one hive; ``render()`` produces the exposition text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Info("vk_hive", "Version of this hive", registry=r).info(
            {"version": __version__, "protocol_version": str(PROTOCOL_VERSION)}
        )
        self.connected_nodes = Gauge(
            "vk_hive_connected_nodes",
            "Authenticated node sessions on this hive process",
            registry=r,
        )
        self.active_leases = Gauge(
            "vk_hive_active_leases",
            "Assignments whose lease is held and not expired (database, at scrape time)",
            registry=r,
        )
        self.database_up = Gauge(
            "vk_hive_database_up",
            "1 when PostgreSQL answered the last scrape's queries, else 0",
            registry=r,
        )
        self.ops_applied = Counter(
            "vk_hive_ops_applied",
            "Ops of node op_batches by op type and outcome",
            ["op_type", "outcome"],
            registry=r,
        )
        for op_type in OpType:
            for outcome in OP_OUTCOMES:
                self.ops_applied.labels(op_type.value, outcome)
        self.op_batch_apply_seconds = Histogram(
            "vk_hive_op_batch_apply_seconds",
            "Duration of one op_batch's apply transaction",
            buckets=_SECONDS,
            registry=r,
        )
        self.op_batch_failures = Counter(
            "vk_hive_op_batch_failures",
            "op_batches whose transaction failed (nothing acked; the node resends)",
            registry=r,
        )
        self.leases_reclaimed = Counter(
            "vk_hive_leases_reclaimed",
            "Expired leases reclaimed by the lease sweeper",
            registry=r,
        )
        self.activity_fanout_lag = Histogram(
            "vk_hive_activity_fanout_lag_seconds",
            "Time from an activity row's created_at to its frame being queued to a node session "
            "(path: live notification or catch_up read from the table)",
            ["path"],
            buckets=_LAG,
            registry=r,
        )
        self.event_loop_lag = Histogram(
            "vk_hive_event_loop_lag_seconds",
            "How much later than asked the event loop woke a 50 ms sleeper (sampled continuously)",
            buckets=_SECONDS,
            registry=r,
        )
        self.http_requests = Counter(
            "vk_hive_http_requests",
            "HTTP requests by method, route template and status code",
            ["method", "route", "status"],
            registry=r,
        )
        self.node_connections_refused = Counter(
            "vk_hive_node_connections_refused",
            "Node WebSocket handshakes refused before any frame, by HTTP status (429: too many "
            "auth attempts from the address; 503: too many sockets waiting to authenticate)",
            ["status"],
            registry=r,
        )
        self.webhook_tries = Counter(
            "vk_hive_webhook_tries",
            "Organization webhook delivery tries made by this hive process, by event and outcome "
            "(delivered, retry: failed with a try left, failed: the last try failed)",
            ["event", "outcome"],
            registry=r,
        )
        self.maintenance = MaintenanceCollector()
        r.register(self.maintenance)
        self.http_request_seconds = Histogram(
            "vk_hive_http_request_duration_seconds",
            "HTTP request duration by method and route template",
            ["method", "route"],
            buckets=_SECONDS,
            registry=r,
        )

    # --- hooks called by the code (cheap: counters and histograms only) -----------------------

    def batch_applied(self, outcomes: Mapping[tuple[str, str], int], elapsed_s: float) -> None:
        """One op_batch committed: ``outcomes`` maps (op type, outcome) to a count."""
        self.op_batch_apply_seconds.observe(elapsed_s)
        for (op_type, outcome), count in outcomes.items():
            if count:
                self.ops_applied.labels(op_type, outcome).inc(count)

    def activity_queued(self, created_at: dt.datetime, path: str) -> None:
        """An activity frame was queued to a session."""
        lag = (dt.datetime.now(dt.UTC) - created_at).total_seconds()
        self.activity_fanout_lag.labels(path).observe(max(0.0, lag))

    def http_request(self, method: str, route: str, status: int, elapsed_s: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_request_seconds.labels(method, route).observe(elapsed_s)

    def node_refused(self, status: int) -> None:
        self.node_connections_refused.labels(str(status)).inc()

    def maintenance_done(self, report: MaintenanceReport) -> None:
        """A maintenance run finished (partitions provisioned, retention applied)."""
        self.maintenance.runs += 1
        self.maintenance.dropped += len(report.partitions_dropped)
        self.maintenance.last_run = report.finished_at.timestamp()

    # --- scrape --------------------------------------------------------------------------------

    def render(
        self, *, connected_nodes: int, active_leases: int | None, partitions: int | None = None
    ) -> bytes:
        """The exposition text; ``active_leases`` (and ``partitions``) are None when the
        database did not answer."""
        self.connected_nodes.set(connected_nodes)
        self.database_up.set(0 if active_leases is None else 1)
        if active_leases is not None:
            self.active_leases.set(active_leases)
        if partitions is not None:
            self.maintenance.partitions = partitions
        return generate_latest(self.registry)
