"""``make demo``: a hive and two nodes on this machine run three tasks end to end.

What it does, in order:

1. finds PostgreSQL (``VK_HIVE_DATABASE_URL``, else the chain of DESIGN.md §9) and makes a fresh
   database for this run;
2. starts ``vk-hive serve`` and two ``vk-node serve`` processes (separate data directories under
   one work directory), bootstraps an admin with an organization and one API key per node;
3. creates a swarm project, a demo git repository per node, and links both nodes to the project;
4. creates three SCRIPT tasks on the hive with ``start_attempt``, and shows a live table while the
   hive dispatches them and the nodes run them (task, node, status, fencing token, run status);
5. prints where the logs and the results (branches with the tasks' commits) are, and stops
   everything. Exit status 0 only if every task reached ``in-review`` (or ``done``).

The hive's board URL is printed as a one-time sign-in link as soon as the hive is up. With
``--keep`` (``make demo KEEP=1``) the hive and the nodes keep running after the tasks finished,
until Ctrl-C (or SIGTERM); Enter prints a fresh sign-in link (a link works once, for 15 minutes).

The work directory is kept for inspection (its path is printed); the database is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.cluster import Cluster  # noqa: E402
from support.postgres import DatabaseFactory, NoPostgresError, find_server  # noqa: E402

TASKS: tuple[tuple[str, str], ...] = (
    (
        "Write the changelog",
        'echo "collecting changes"\nfor i in 1 2 3; do echo "change $i"; sleep 0.4; done\n'
        'printf "# Changelog\\n\\n- first release\\n" > CHANGELOG.md\necho "CHANGELOG.md written"',
    ),
    (
        "Add a contributing guide",
        'echo "drafting the guide"\nsleep 1\n'
        'printf "# Contributing\\n\\nRun make test.\\n" > CONTRIBUTING.md\necho "guide written"',
    ),
    (
        "Count the lines of code",
        "echo \"counting\"\nfind . -name '*.md' -not -path './.git/*' | xargs wc -l "
        '| tee LINES.txt\nsleep 0.8\necho "LINES.txt written"',
    ),
)

DONE_STATUSES = frozenset({"in-review", "done"})
FAILED_RUNS = frozenset({"failed", "cancelled"})


def _supports_color() -> bool:
    return sys.stdout.isatty() and os.environ.get("NO_COLOR") is None


class Table:
    """The live status table: redrawn in place on a terminal, printed on change otherwise."""

    def __init__(self) -> None:
        self.tty = _supports_color()
        self.last: str | None = None
        self.lines = 0

    def show(self, rows: list[tuple[str, ...]], footer: str) -> None:
        header = ("task", "node", "status", "token", "run")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

        def fmt(row: Sequence[str]) -> str:
            return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()

        text = "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows), footer])
        if text == self.last:
            return
        if self.tty and self.lines:
            sys.stdout.write(f"\x1b[{self.lines}F\x1b[J")
        print(text, flush=True)
        self.last = text
        self.lines = text.count("\n") + 1


def _rows(cluster: Cluster, tasks: list[dict[str, Any]], names: dict[str, str]) -> list[Any]:
    rows = []
    for created in tasks:
        task = cluster.api.get(f"/tasks/{created['id']}")
        assignments = cluster.api.get(f"/tasks/{created['id']}/assignments")
        latest = max(assignments, key=lambda a: a["fencing_token"], default=None)
        node = names.get(latest["node_id"], "?") if latest else "-"
        token = str(latest["fencing_token"]) if latest else "-"
        run = latest["execution_status"] if latest else "waiting"
        rows.append((task["title"], node, task["status"], token, run))
    return rows


def _board_link(cluster: Cluster) -> str:
    return cluster.hive.login_link(cluster.email)


def _keep_running(cluster: Cluster) -> None:
    """Serve until Ctrl-C or SIGTERM; each line on stdin prints a fresh sign-in link."""
    # Ctrl-C and SIGTERM both stop it (a shell that started it in the background ignores
    # SIGINT for it: take it back) — before the links are printed, which is when a user or a
    # test may press it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print("\nthe hive and the nodes keep running (Ctrl-C stops them)")
    print(f"board:  {_board_link(cluster)}  (one-time sign-in link, 15 min)")
    for node in cluster.nodes:
        print(f"node board of {node.name}: {node.process.url}/")
    interactive = sys.stdin.isatty()
    if interactive:
        print("press Enter for a new board sign-in link", flush=True)
    while True:
        if not interactive:
            time.sleep(3600)
            continue
        if sys.stdin.readline() == "":  # end of input: keep serving until a signal
            interactive = False
            continue
        print(f"board: {_board_link(cluster)}", flush=True)


def run(workdir: Path, timeout: float, *, keep: bool = False) -> int:
    print(f"work directory: {workdir}")
    dsn_env = os.environ.get("VK_HIVE_DATABASE_URL")
    env = {"VK_TEST_DATABASE_URL": dsn_env} if dsn_env else None
    try:
        server = find_server(env=env)
    except NoPostgresError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    print(f"PostgreSQL: {server.source}")
    factory = DatabaseFactory(server, prefix="vk_demo")
    dsn = asyncio.run(factory.create("hive"))
    cluster = Cluster(
        workdir,
        nodes_count=2,
        dsn=dsn,
        node_env={"VK_NODE_MAX_CONCURRENT": "1", "VK_NODE_LOG_FORMAT": "console"},
        hive_env={"VK_HIVE_LOG_FORMAT": "console"},
        project_name="demo",
    )
    ok = False
    try:
        print("starting a hive and two nodes ...", flush=True)
        cluster.start()
        names = {n.node_id: n.name for n in cluster.nodes}
        print(f"hive:   {cluster.hive.url}  (admin token in {workdir / 'admin-token'})")
        (workdir / "admin-token").write_text(cluster.admin.token + "\n")
        for node in cluster.nodes:
            print(f"{node.name}: {node.process.url}  repo {node.repo}")
        print(f"board:  {_board_link(cluster)}  (one-time sign-in link, 15 min)")
        print("\ncreating three SCRIPT tasks on the hive with start_attempt ...\n")
        created = [
            cluster.api.post(
                "/tasks",
                json={
                    "project_id": cluster.swarm_project_id,
                    "title": title,
                    "description": script,
                    "executor": "SCRIPT",
                    "start_attempt": True,
                },
            )
            for title, script in TASKS
        ]
        tasks = [c["task"] for c in created]
        for c in created:
            if c.get("dispatch_error"):
                print(f"  {c['task']['title']}: not dispatched yet ({c['dispatch_error']})")
        table = Table()
        deadline = time.monotonic() + timeout
        while True:
            rows = _rows(cluster, tasks, names)
            finished = sum(r[2] in DONE_STATUSES for r in rows)
            failed = [r for r in rows if r[4] in FAILED_RUNS and r[2] not in DONE_STATUSES]
            left = max(0, int(deadline - time.monotonic()))
            table.show(rows, f"\n{finished}/{len(rows)} in review  ({left} s left)")
            if finished == len(rows):
                ok = True
                break
            if time.monotonic() > deadline:
                print("\ndemo: timed out waiting for the tasks", file=sys.stderr)
                break
            time.sleep(0.3)
        _report(cluster, tasks, names, failed if not ok else [])
        if ok:
            print("demo: every task reached in-review (or done)", flush=True)
        if keep:
            _keep_running(cluster)
    except KeyboardInterrupt:
        print("\ndemo: interrupted" if not keep else "\ndemo: stopping", file=sys.stderr)
    except AssertionError as exc:  # the harness reports failed waits with the process logs
        print(f"\ndemo: {exc}", file=sys.stderr)
    finally:
        print("\nstopping the nodes and the hive ...", flush=True)
        try:
            cluster.close()
        except AssertionError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            ok = False
        asyncio.run(factory.drop_all())
    print(f"demo: stopped; work directory kept: {workdir}" if ok else "demo: FAILED")
    return 0 if ok else 1


def _report(
    cluster: Cluster, tasks: list[dict[str, Any]], names: dict[str, str], failed: list[Any]
) -> None:
    print("\nresults")
    for created in tasks:
        assignments = cluster.api.get(f"/tasks/{created['id']}/assignments")
        latest = max(assignments, key=lambda a: a["fencing_token"], default=None)
        if latest is None:
            print(f"- {created['title']}: never dispatched")
            continue
        node = next(n for n in cluster.nodes if n.node_id == latest["node_id"])
        logs = cluster.api.get(f"/tasks/{created['id']}/logs", params={"limit": 500})
        local = node.process.sql(
            "SELECT a.branch FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
            "WHERE t.shared_task_id = ? ORDER BY a.created_at DESC LIMIT 1",
            uuid.UUID(created["id"]),
        )
        branch = local[0]["branch"] if local else "?"
        print(f"- {created['title']}: ran on {names.get(latest['node_id'])}, branch {branch}")
        print(f"    commits: git -C {node.repo} log --oneline main..{branch}")
        print(f"    {len(logs['logs'])} log lines on the hive: GET /v1/tasks/{created['id']}/logs")
    print("\nprocess logs")
    for proc in cluster.processes:
        print(f"- {proc.name}: {proc.log_path}")
    for row in failed:
        print(f"demo: task {row[0]!r} failed on {row[1]} ({row[4]})", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="where processes keep data and logs")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for tasks")
    parser.add_argument(
        "--keep", action="store_true", help="keep the hive and nodes running until Ctrl-C"
    )
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vk-demo-"))
    return run(workdir.resolve(), args.timeout, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
