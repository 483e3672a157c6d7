"""A real ``vk-hive serve`` and ``vk-node serve``: the milestones of a dispatched SCRIPT run reach
the hive's progress list in order, and a label created over the node's REST API appears on the
hive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from support.cluster import Cluster

SCRIPT = """set -e
echo "first line"
echo "second line"
"""

MILESTONES = ["agent_started", "first_output", "agent_finished"]


def test_run_milestones_and_a_node_label_reach_the_hive(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(nodes_count=1)
    (node,) = cluster.nodes
    created = cluster.dispatch(node, "print two lines", SCRIPT)
    task_id = created["task"]["id"]

    def milestones() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = cluster.api.get(f"/tasks/{task_id}/progress")["events"]
        return events if [e["event_type"] for e in events][-1:] == ["agent_finished"] else []

    events = cluster.wait(milestones, what="the run's milestones on the hive", timeout=30)
    assert [e["event_type"] for e in events] == MILESTONES
    assert {e["node_id"] for e in events} == {node.node_id}
    assert {e["assignment_id"] for e in events} == {created["assignment"]["id"]}
    assert len({e["attempt_id"] for e in events}) == 1
    runs = cluster.api.get(f"/tasks/{task_id}/executions")
    assert [a["id"] for a in runs] == [events[0]["attempt_id"]]

    label = node.api.post(
        "/labels", json={"name": "from-the-node", "project_id": node.project_id, "color": "#0e8a16"}
    )

    def on_hive() -> list[dict[str, Any]]:
        labels: list[dict[str, Any]] = cluster.api.get(
            "/swarm/labels", params={"organization_id": cluster.admin.organization_id}
        )
        return [item for item in labels if item["id"] == label["id"]]

    (hive_label,) = cluster.wait(on_hive, what="the node's label on the hive", timeout=20)
    assert hive_label["name"] == "from-the-node"
    assert hive_label["project_id"] == cluster.swarm_project_id
    assert hive_label["origin_node_id"] == node.node_id
