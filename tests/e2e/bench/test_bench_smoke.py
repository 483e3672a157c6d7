"""``benchmarks/run.py --smoke`` runs every benchmark in both modes, at the smallest scale that
still runs each step, and prints one well-formed JSON line per metric (speed is measured by
``make bench``, never asserted here)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

HIVE_AND_E2E = (
    "op_apply_throughput",
    "write_to_ack_latency_p50",
    "write_to_ack_latency_p99",
    "log_shipping_throughput",
    "dispatch_latency_p50",
    "dispatch_latency_p99",
    "idle_connected_nodes",
    "idle_hive_rss",
    "idle_hive_cpu_share",
    "idle_hive_loop_lag_p99",
)
TWO_HIVES = (
    "op_apply_throughput",
    "idle_connected_nodes",
    "idle_hive_rss",
    "idle_hive_cpu_share",
    "idle_hive_loop_lag_p99",
)
E2E_ONLY = (
    "node_write_latency_p99",
    "node_write_throughput",
    "node_rest_write_throughput",
    "log_capture_throughput",
    "board_page_ms_p50",
    "board_page_ms_p99",
    "board_change_latency_p50",
    "board_change_latency_p99",
)
METRICS = {
    *((name, mode, 1) for name in HIVE_AND_E2E for mode in ("hive", "e2e")),
    *((name, "hive", 2) for name in TWO_HIVES),
    *((name, "e2e", 1) for name in E2E_ONLY),
}
"""(metric, mode, hive processes) of every line a smoke run prints, each once."""
KEYS = ("metric", "mode", "value", "unit", "baseline", "ratio", "target", "met", "loadavg_1m")


@pytest.mark.timeout(300)
def test_smoke_benchmarks_print_one_parsable_line_per_metric(tmp_path: Path) -> None:
    """Every metric appears once per mode it is measured in (and once more for two hive
    processes where compared) with a finite numeric value, a unit, a target, a boolean ``met``
    and the load; baselines and ratios are numbers where given; the run exits 0."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--smoke",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    seen = [(line["metric"], line["mode"], line.get("hive_processes", 1)) for line in lines]
    assert sorted(seen) == sorted(METRICS), seen
    for line in lines:
        for key in KEYS:
            assert key in line, (key, line)
        assert isinstance(line["value"], int | float), line
        assert math.isfinite(line["value"]), line
        for key in ("unit", "target"):
            assert isinstance(line[key], str), line
            assert line[key], line
        assert isinstance(line["met"], bool), line
        for key in ("baseline", "ratio"):
            assert line[key] is None or isinstance(line[key], int | float), line
    for line in lines:
        assert line["mode"] in ("hive", "e2e"), line
        if line["metric"] in ("op_apply_throughput", "log_shipping_throughput"):
            assert line["baseline"] is not None, line
            assert line["ratio"] is not None, line
        if line.get("hive_processes", 1) == 2:
            assert line["baseline"] is not None, line
