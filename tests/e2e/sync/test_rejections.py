"""Gateway refusals as a real node process sees them.

Frame-level cases (unknown/revoked/blocked keys, protocol version, the takeover counter that
blocks a key on the 4th attempt, subprotocols, auth timeout, malformed frames) are covered against
the gateway itself in tests/integration/hive/gateway/test_auth.py and test_session.py; these tests
add what only a real ``vk-node serve`` shows: its recorded link state, its outbox, and that the
legitimate node keeps working.
"""

from __future__ import annotations

from typing import Any

from support.cluster import Cluster

SLOW_RETRY = {"VK_NODE_LINK_BACKOFF_INITIAL_S": "60", "VK_NODE_LINK_BACKOFF_MAX_S": "60"}


def test_revoking_a_key_cuts_the_node_off_and_refusals_leave_its_hive_row_alone(
    make_cluster,
) -> None:
    """Revoking the key of a connected node disconnects it; its reconnects are refused, its link
    state and `vk-node status` show the auth error, its writes stay in the outbox, and the
    refused attempts do not touch its node row on the hive."""
    cluster: Cluster = make_cluster(nodes_count=1)
    node = cluster.nodes[0]
    cluster.api.delete(f"/nodes/api-keys/{node.key.id}", expect=[204])

    def refused() -> dict[str, Any] | None:
        status = node.process.link_status()
        error = status["last_error"] or ""
        return status if status["state"] != "connected" and "auth_failed" in error else None

    first = cluster.wait(refused, what="the node to record the refusal")
    assert "revoked" in first["last_error"].lower()

    def offline() -> dict[str, Any] | None:
        row: dict[str, Any] = cluster.api.get(f"/nodes/{node.node_id}")
        return row if row["status"] == "offline" else None

    before = cluster.wait(offline, what="the hive to mark the node offline")
    node.api.post("/tasks", json={"project_id": node.project_id, "title": "written after"})

    def refused_again() -> bool:
        status = refused()
        return status is not None and status["backoff_until"] != first["backoff_until"]

    cluster.wait(refused_again, what="another refused reconnect")
    assert cluster.api.get(f"/nodes/{node.node_id}") == before
    assert "written after" not in {t["title"] for t in cluster.hive_tasks()}
    keys = cluster.api.get("/nodes/api-keys", params={"organization_id": node_org(cluster)})
    assert [k["status"] for k in keys] == ["revoked"]
    report = node.process.status()
    assert report["outbox_unacked"] == 1
    assert report["link_state"] in ("disconnected", "connecting")
    assert "revoked" in (report["link_last_error"] or "").lower()


def test_a_second_machine_with_a_bound_key_is_refused_while_the_first_is_online(
    make_cluster,
) -> None:
    """A second node process (its own data dir, default machine id) presenting a key bound to an
    online node is refused with a reason naming the node; the first node stays connected and no
    node is added."""
    cluster: Cluster = make_cluster(nodes_count=1)
    owner = cluster.nodes[0]
    intruder = cluster.add_node(
        "intruder", api_key=owner.key, link=False, wait=False, env=SLOW_RETRY
    )

    def refused() -> str:
        error: str = intruder.process.link_status()["last_error"] or ""
        return error

    error = cluster.wait(refused, what="the intruder to be refused")
    assert "auth_failed" in error
    assert "online from another node instance" in error
    assert intruder.process.link_status()["node_id"] is None
    assert owner.process.link_status()["state"] == "connected"
    nodes = cluster.api.get("/nodes", params={"organization_id": node_org(cluster)})
    assert [(n["id"], n["status"]) for n in nodes] == [(owner.node_id, "online")]
    keys = cluster.api.get("/nodes/api-keys", params={"organization_id": node_org(cluster)})
    assert [(k["status"], k["node_id"]) for k in keys] == [("bound", owner.node_id)]
    # The owner still syncs.
    owner.api.post("/tasks", json={"project_id": owner.project_id, "title": "still syncing"})
    cluster.wait(
        lambda: "still syncing" in {t["title"] for t in cluster.hive_tasks()},
        what="the owner's write to reach the hive",
    )


def node_org(cluster: Cluster) -> str:
    return cluster.admin.organization_id
