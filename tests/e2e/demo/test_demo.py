"""``make demo`` runs a hive and two nodes to completion, serves the board with ``KEEP=1`` and
leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]
TITLES = ("Write the changelog", "Add a contributing guide", "Count the lines of code")


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


def test_demo_runs_three_tasks_to_review_serves_the_board_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    """``make demo KEEP=1``: all three tasks reach in-review on the two nodes, the printed
    sign-in link opens the hive's board with the demo's tasks, the system keeps running until
    Ctrl-C, then exits 0 and no vk process of its run is left alive."""
    workdir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_NODE_", "VK_HIVE_"))}
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--workdir", str(workdir), "--keep"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    lines: list[str] = []
    assert demo.stdout is not None
    try:
        deadline = time.monotonic() + 150
        while not any(line.startswith("the hive and the nodes keep running") for line in lines):
            line = demo.stdout.readline()
            assert line, "demo ended early:\n" + "".join(lines[-60:])
            assert time.monotonic() < deadline, "".join(lines[-60:])
            lines.append(line)
        out = "".join(lines)
        assert "3/3 in review" in out
        assert "demo: every task reached in-review" in out
        for title in TITLES:
            assert title in out
        assert "node-a" in out
        assert "node-b" in out  # the least-loaded dispatch spreads the tasks over both nodes
        link = re.search(r"^board:\s+(\S+)", out, re.MULTILINE)
        assert link is not None, out
        _board_shows_the_tasks(link.group(1))
        assert demo.poll() is None  # still serving
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, "".join(lines[-40:]) + rest[-3000:]
    assert _vk_processes_under(workdir) == []


def _board_shows_the_tasks(link: str) -> None:
    """The sign-in link starts a browser session whose board lists the demo's tasks."""
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        home = browser.get(link, headers={"accept": "text/html"})
        assert home.status_code == 200, home.text
        assert str(home.url).endswith("/")
        boards = re.findall(r'href="(/projects/[0-9a-f-]{36})"', home.text)
        assert boards, home.text
        board = browser.get(home.url.join(boards[0]), headers={"accept": "text/html"})
        assert board.status_code == 200
        for title in TITLES:
            assert title in board.text
