"""Two ``vk-hive serve`` processes over one database, with real nodes: a task created through one
hive runs on a node connected to the other, and a node whose hive is killed (-9) fails over to
the other hive without losing its running task, a log line or an op."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from support.cluster import Cluster, HiveProcess

LINES = 40
SLOW_SCRIPT = f"""set -e
for i in $(seq 1 {LINES}); do echo "line $i"; sleep 0.25; done
echo "done" >> notes.txt
git add notes.txt
git -c user.name=vk -c user.email=vk@example.com commit -q -m "slow run"
"""
QUICK_SCRIPT = """set -e
echo "ran on b"
echo "b" >> notes.txt
git add notes.txt
git -c user.name=vk -c user.email=vk@example.com commit -q -m "quick run"
"""


def _assignments(cluster: Cluster, task_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = cluster.api.get(f"/tasks/{task_id}/assignments")
    return rows


def _completed(cluster: Cluster, task_id: str) -> Callable[[], list[dict[str, Any]]]:
    def probe() -> list[dict[str, Any]]:
        rows = _assignments(cluster, task_id)
        return rows if rows and rows[0]["execution_status"] == "completed" else []

    return probe


def test_two_hives_route_dispatch_and_survive_a_killed_hive(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(nodes_count=0)
    hive1 = cluster.hive
    hive2 = HiveProcess(hive1.dsn, cluster.workdir, name="hive2", cluster_id=cluster.cluster_id)
    hive2.start()
    clients = []
    try:
        a = cluster.add_node("node-a", env={"VK_HIVE_URL": f"{hive1.url},{hive2.url}"})
        b = cluster.add_node("node-b", env={"VK_HIVE_URL": hive2.url})
        assert a.process.link_status()["hive_url"] == hive1.url
        assert b.process.link_status()["hive_url"] == hive2.url

        # Created through hive 1, assigned to B whose session lives in hive 2.
        quick = cluster.dispatch(b, "runs on b", QUICK_SCRIPT)["task"]["id"]
        done = cluster.wait(_completed(cluster, quick), what="B's run to complete", timeout=30)
        assert [row["node_id"] for row in done] == [b.node_id]
        logs = cluster.api.get(f"/tasks/{quick}/logs")["logs"]
        assert "ran on b" in "".join(row["content"] for row in logs)

        # A long run on A, through hive 1; hive 1 dies in the middle of it.
        slow = cluster.dispatch(a, "long run on a", SLOW_SCRIPT)
        task_id, assignment = slow["task"]["id"], slow["assignment"]

        def printing() -> bool:
            logs = cluster.api.get(f"/tasks/{task_id}/logs")["logs"]
            return "line 5" in "".join(row["content"] for row in logs)

        cluster.wait(printing, what="the slow run to print", timeout=30)
        hive1.kill()
        api2 = hive2.api(cluster.admin.token)
        clients.append(api2)
        cluster.api = api2
        cluster.wait(
            lambda: (
                a.process.link_status()["hive_url"] == hive2.url
                and a.process.link_status()["state"] == "connected"
                and api2.get(f"/nodes/{a.node_id}")["status"] == "online"
            ),
            what="node A to be online through hive 2",
            timeout=10,
        )

        done = cluster.wait(_completed(cluster, task_id), what="A's run to complete", timeout=40)
        # The lease survived the failover: one assignment, the same fencing token, on A.
        assert len(done) == 1
        assert done[0]["id"] == assignment["id"]
        assert done[0]["fencing_token"] == assignment["fencing_token"]
        assert done[0]["node_id"] == a.node_id
        task = api2.get(f"/tasks/{task_id}")
        assert task["status"] == "in-review"

        # Every line once on the hive, in order: nothing lost, nothing applied twice.
        def all_lines() -> list[str]:
            logs = api2.get(f"/tasks/{task_id}/logs")["logs"]
            text = "\n".join(row["content"] for row in logs)
            found = re.findall(r"^line (\d+)$", text, flags=re.MULTILINE)
            return found if len(found) >= LINES else []

        found = cluster.wait(all_lines, what="every log line on the hive", timeout=20)
        assert found == [str(i) for i in range(1, LINES + 1)]

        # A's outbox drains through hive 2 and both sides agree on the task.
        cluster.wait(
            lambda: a.process.link_status()["outbox_backlog"] == 0,
            what="A's outbox to drain",
            timeout=20,
        )
        local = a.process.local_tasks(task_id)
        assert len(local) == 1
        assert local[0]["status"] == "inreview"
        assert local[0]["remote_version"] == task["version"]
        # The hive mirrors exactly the node's attempt and execution processes.
        attempts = a.process.sql(
            "SELECT id FROM task_attempts WHERE task_id = ?", uuid.UUID(local[0]["id"])
        )
        node_processes = a.process.sql(
            "SELECT id FROM execution_processes WHERE task_attempt_id = ?",
            uuid.UUID(attempts[0]["id"]),
        )
        hive_attempts = hive2.sql(
            "SELECT id FROM node_task_attempts WHERE shared_task_id = $1", uuid.UUID(task_id)
        )
        hive_processes = hive2.sql(
            "SELECT id FROM node_execution_processes WHERE attempt_id = $1",
            hive_attempts[0]["id"],
        )
        assert [str(r["id"]) for r in hive_attempts] == [r["id"] for r in attempts]
        assert sorted(str(r["id"]) for r in hive_processes) == sorted(
            r["id"] for r in node_processes
        )
    finally:
        for client in clients:
            client.close()
        hive2.stop()
