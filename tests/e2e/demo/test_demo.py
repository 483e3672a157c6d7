"""``make demo`` runs a hive and two nodes to completion and leaves no process behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _vk_processes_under(workdir: Path) -> list[str]:
    """Command lines of live processes whose environment or arguments mention ``workdir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if str(workdir).encode() in environ or str(workdir) in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_demo_runs_three_tasks_to_review_and_stops_everything(tmp_path: Path) -> None:
    """The demo exits 0 after all three tasks reached in-review on the two nodes, prints the
    final table and the results, and no vk process of its run is left alive."""
    workdir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_NODE_", "VK_HIVE_"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--workdir", str(workdir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "3/3 in review" in out
    assert "demo: every task reached in-review" in out
    for title in ("Write the changelog", "Add a contributing guide", "Count the lines of code"):
        assert title in out
    assert "node-a" in out
    assert "node-b" in out  # the least-loaded dispatch spreads the tasks over both nodes
    assert _vk_processes_under(workdir) == []
