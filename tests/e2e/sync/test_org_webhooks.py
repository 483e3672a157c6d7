"""Organization webhooks end to end: a real ``vk-hive serve`` and ``vk-node serve``, a local HTTP
receiver (tests/support/webhook_receiver.py).

A dispatched SCRIPT run ends while the receiver is down; the hive restarts; the receiver comes
up; the signed ``task_finished`` arrives with the run's task, node and assignment. Then the node
is killed (SIGKILL) and ``node_offline`` arrives once the grace has passed.

The hive here sends to 127.0.0.1, so it allows private networks, and its ``node_offline`` grace
is one second instead of a minute (both are what the test is about); the retry delays are the
defaults users get.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from support.cluster import Cluster, free_port
from support.webhook_receiver import Receiver, verify_signature

HIVE_ENV = {
    "VK_HIVE_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    "VK_HIVE_WEBHOOK_NODE_OFFLINE_GRACE_S": "1",
}


def test_task_finished_survives_a_dead_endpoint_and_a_hive_restart_then_node_offline(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(nodes_count=1, hive_env=HIVE_ENV)
    (node,) = cluster.nodes
    org = cluster.admin.organization_id
    port = free_port()
    finished_hook = cluster.api.post(
        f"/organizations/{org}/webhooks",
        json={
            "name": "runs",
            "url": f"http://127.0.0.1:{port}/runs",
            "events": ["task_finished"],
            "secret": "team-secret",
        },
    )
    deliveries_path = f"/organizations/{org}/webhooks/{finished_hook['id']}/deliveries"

    created = cluster.dispatch(node, "say done", "echo done\n")

    def failed_try() -> list[dict[str, Any]]:
        deliveries: list[dict[str, Any]] = cluster.api.get(deliveries_path)
        return deliveries if deliveries and deliveries[0]["attempts"] else []

    (pending,) = cluster.wait(failed_try, what="a failed try at the dead endpoint", timeout=40)
    assert pending["status"] == "pending"
    assert pending["attempts"][0]["status_code"] is None

    cluster.hive.restart()
    node.process.wait_connected()
    with Receiver(port) as receiver:
        (sent,) = receiver.wait_for(1, within_s=60)
        assert sent.path == "/runs"
        assert sent.headers["x-vk-event"] == "task_finished"
        assert sent.headers["x-vk-delivery"] == pending["id"]
        assert verify_signature(sent.body, "team-secret", sent.headers["x-vk-signature"])
        body = json.loads(sent.body)
        assert body["task"]["id"] == created["task"]["id"]
        assert body["status"] == "completed"
        assert body["process"]["exit_code"] == 0
        assert body["node"]["id"] == node.node_id
        assert body["assignment"] == {
            "id": created["assignment"]["id"],
            "fencing_token": created["assignment"]["fencing_token"],
        }
        (delivered,) = cluster.wait(
            lambda: [d for d in cluster.api.get(deliveries_path) if d["status"] == "delivered"],
            what="the delivery recorded as delivered",
        )
        assert delivered["attempts"][-1]["status_code"] == 200
        assert all(t["error"] for t in delivered["attempts"][:-1])

        cluster.api.post(
            f"/organizations/{org}/webhooks",
            json={"name": "fleet", "url": f"{receiver.url}/fleet", "events": ["node_offline"]},
        )
        node.process.kill()
        offline = receiver.wait_for(2, within_s=30)[1]
        assert offline.path == "/fleet"
        assert offline.headers["x-vk-event"] == "node_offline"
        offline_body = json.loads(offline.body)
        assert offline_body["node"]["id"] == node.node_id
        assert offline_body["organization"]["id"] == org
        assert offline_body["running"] == []
