"""Two real nodes and a real hive: a dispatched run end to end, and node/hive edits of one task."""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

from support.cluster import Cluster, ClusterNode

SCRIPT = """set -e
echo "start of the run"
echo "edited by the task" >> notes.txt
git add notes.txt
git -c user.name=vk -c user.email=vk@example.com commit -q -m "edit notes"
echo "end of the run"
"""

NODE_STATUS = {"todo": "todo", "in-progress": "inprogress", "in-review": "inreview"}


def _local_copy(node: ClusterNode, shared_id: str) -> list[dict[str, Any]]:
    return node.process.local_tasks(shared_id)


def _statuses(events: list[dict[str, Any]], task_id: str) -> list[str]:
    """The task's statuses in activity order, repeats collapsed."""
    seen: list[str] = []
    for event in events:
        task = event["payload"].get("task", {})
        if task.get("id") == task_id and (not seen or seen[-1] != task["status"]):
            seen.append(task["status"])
    return seen


def test_dispatched_script_runs_on_the_target_node_and_everyone_sees_it(
    shared_cluster: Cluster,
) -> None:
    """A hive task dispatched to node A runs there as a SCRIPT in a git worktree; the hive gets
    the attempt, executions and logs, its activity shows in-progress → in-review, and
    node B's copy ends equal to the hive's task."""
    cluster = shared_cluster
    a, b = cluster.nodes
    task_id = cluster.dispatch(a, "edit the notes", SCRIPT)["task"]["id"]

    def in_review() -> list[dict[str, Any]]:
        events = cluster.activity()
        return events if _statuses(events, task_id)[-1:] == ["in-review"] else []

    events = cluster.wait(in_review, what="the hive task to reach in-review", timeout=30)
    # A dispatched create is one task.created, already in-progress.
    assert _statuses(events, task_id) == ["in-progress", "in-review"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))

    def completed() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = cluster.api.get(f"/tasks/{task_id}/assignments")
        return rows if rows and rows[0]["execution_status"] == "completed" else []

    assignments = cluster.wait(completed, what="the assignment to complete")
    assert len(assignments) == 1
    assert assignments[0]["node_id"] == a.node_id
    assert assignments[0]["completed_at"] is not None
    logs = cluster.api.get(f"/tasks/{task_id}/logs")["logs"]
    lines = "".join(row["content"] for row in logs)
    assert "start of the run" in lines
    assert "end of the run" in lines
    assert lines.index("start of the run") < lines.index("end of the run")

    # The node's attempt and its execution processes are mirrored on the hive.
    local = _local_copy(a, task_id)
    assert len(local) == 1
    assert local[0]["status"] == "inreview"
    attempts = a.api.get("/task-attempts", params={"task_id": local[0]["id"]})
    assert len(attempts) == 1
    assert attempts[0]["hive_assignment_id"] == assignments[0]["id"]
    processes = a.api.get(f"/task-attempts/{attempts[0]['id']}/processes")
    assert processes
    assert all(p["status"] == "completed" for p in processes)
    hive_attempts = cluster.hive.sql(
        "SELECT id::text, node_id::text, branch FROM node_task_attempts WHERE shared_task_id = $1",
        uuid.UUID(task_id),
    )
    assert hive_attempts == [
        {"id": attempts[0]["id"], "node_id": a.node_id, "branch": attempts[0]["branch"]}
    ]
    hive_processes = cluster.hive.sql(
        "SELECT id::text, status, exit_code FROM node_execution_processes "
        "WHERE attempt_id = $1 ORDER BY started_at",
        uuid.UUID(attempts[0]["id"]),
    )
    assert {p["id"] for p in hive_processes} == {p["id"] for p in processes}
    assert all(p["status"] == "completed" and p["exit_code"] == 0 for p in hive_processes)

    # Real git: the run committed on its own branch in A's repository.
    branch = attempts[0]["branch"]
    show = subprocess.run(
        ["git", "show", f"{branch}:notes.txt"], cwd=a.repo, capture_output=True, text=True
    )
    assert show.returncode == 0, show.stderr
    assert "edited by the task" in show.stdout

    # B (which links the same project) follows through its activity stream.
    hive_task = cluster.api.get(f"/tasks/{task_id}")

    def b_in_review() -> list[dict[str, Any]]:
        copies = _local_copy(b, task_id)
        return copies if copies and copies[0]["status"] == "inreview" else []

    copies = cluster.wait(b_in_review, what="node B's copy to reach inreview")
    assert len(copies) == 1
    copy = copies[0]
    assert copy["title"] == hive_task["title"]
    assert copy["description"] == hive_task["description"]
    assert copy["status"] == NODE_STATUS[hive_task["status"]]
    assert copy["remote_version"] == hive_task["version"]
    assert copy["project_id"] == b.project_id
    assert b.api.get("/task-attempts", params={"task_id": copy["id"]}) == []


def test_a_node_task_and_its_edits_converge_on_the_hive_and_the_other_node(
    shared_cluster: Cluster,
) -> None:
    """A task created on node A appears on the hive once, owned by A; a hive edit reaches A, an
    edit on A reaches the hive, and afterwards the hive has one task, B one copy, same version."""
    cluster = shared_cluster
    a, b = cluster.nodes
    local = a.api.post("/tasks", json={"project_id": a.project_id, "title": "made on A"})

    def on_hive() -> list[dict[str, Any]]:
        return [t for t in cluster.hive_tasks() if t["source_task_id"] == local["id"]]

    found = cluster.wait(on_hive, what="A's task on the hive")
    assert len(found) == 1
    task = found[0]
    assert task["owner_node_id"] == a.node_id
    assert task["source_node_id"] == a.node_id
    assert task["title"] == "made on A"
    assert task["status"] == "todo"

    def a_knows_shared_id() -> bool:
        return a.api.get(f"/tasks/{local['id']}")["shared_task_id"] == task["id"]

    cluster.wait(a_knows_shared_id, what="A to learn the shared id")

    # Hive → A.
    edited = cluster.api.patch(
        f"/tasks/{task['id']}", json={"version": task["version"], "title": "renamed on the hive"}
    )
    assert edited["version"] == task["version"] + 1

    def a_has_hive_edit() -> bool:
        mine = a.api.get(f"/tasks/{local['id']}")
        return (
            mine["title"] == "renamed on the hive" and mine["remote_version"] == edited["version"]
        )

    cluster.wait(a_has_hive_edit, what="the hive's edit to reach A")

    # A → hive.
    a.api.patch(f"/tasks/{local['id']}", json={"title": "renamed on A"})

    seen: list[Any] = []

    def converged() -> dict[str, Any] | None:
        hive_task: dict[str, Any] = cluster.api.get(f"/tasks/{task['id']}")
        mine = a.api.get(f"/tasks/{local['id']}")
        copies = _local_copy(b, task["id"])
        seen[:] = [
            (hive_task["title"], hive_task["version"]),
            (mine["title"], mine["remote_version"]),
            [(c["title"], c["remote_version"]) for c in copies],
        ]
        agreed = (
            hive_task["title"] == "renamed on A"
            and mine["remote_version"] == hive_task["version"]
            and len(copies) == 1
            and copies[0]["title"] == "renamed on A"
            and copies[0]["remote_version"] == hive_task["version"]
        )
        return hive_task if agreed else None

    final = cluster.wait(
        converged, what=lambda: f"hive, A and B to agree on title and version (seen: {seen})"
    )
    assert final["version"] > edited["version"]
    assert final["owner_node_id"] == a.node_id
    rows = cluster.hive.sql(
        "SELECT id::text FROM shared_tasks WHERE source_node_id = $1 AND source_task_id = $2",
        uuid.UUID(a.node_id),
        uuid.UUID(local["id"]),
    )
    assert rows == [{"id": task["id"]}]
    assert len(_local_copy(a, task["id"])) == 1
    assert len(_local_copy(b, task["id"])) == 1
    assert a.process.link_status()["outbox_backlog"] == 0


def test_two_nodes_with_default_identity_on_one_machine_stay_two_online_nodes(
    shared_cluster: Cluster,
) -> None:
    """Two ``vk-node serve`` processes on this machine with their own data dirs and keys and no
    machine id configured get two generated machine ids and are two nodes on the hive, both
    online; over several heartbeats neither connection is replaced (no flapping)."""
    a, b = shared_cluster.nodes
    ids = {n.process.status()["machine_id"] for n in (a, b)}
    assert len(ids) == 2
    assert None not in ids
    assert a.node_id != b.node_id
    since = {n.name: n.process.link_status()["connected_since"] for n in (a, b)}
    time.sleep(3)  # three heartbeat intervals of the cluster's hive
    for node in (a, b):
        status = node.process.link_status()
        assert status["state"] == "connected"
        assert status["connected_since"] == since[node.name], f"{node.name} reconnected"
        assert shared_cluster.api.get(f"/nodes/{node.node_id}")["status"] == "online"
    machine_ids = {shared_cluster.api.get(f"/nodes/{n.node_id}")["machine_id"] for n in (a, b)}
    assert machine_ids == ids
