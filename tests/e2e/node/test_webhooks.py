"""Webhook deliveries survive a node restart: real ``vk-node serve`` processes, a real SCRIPT
run, and a real HTTP receiver on 127.0.0.1 that only starts after the node stopped.

This node retries every second (``VK_NODE_WEBHOOK_RETRY_DELAYS_S=1,...``) instead of the default
5 s, 15 s, 40 s: the test is about retries across a restart, not about the default schedule
(tests/integration/node/webhooks/test_worker.py drives that one with a test clock).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from support.cluster import wait_until
from support.webhook_receiver import Receiver, verify_signature

SECRET = "e2e-webhook-secret"
_ENV = {
    "VK_NODE_EXECUTORS": "SCRIPT",
    "VK_NODE_STOP_GRACE_S": "1",
    "VK_NODE_EXIT_DRAIN_S": "0.2",
    "VK_NODE_WEBHOOK_RETRY_DELAYS_S": ",".join(["1"] * 15),
    "VK_NODE_WEBHOOK_TIMEOUT_S": "2",
}


def _deliveries(http: httpx.Client, hook_id: str) -> list[dict[str, Any]]:
    r = http.get(f"/webhooks/{hook_id}/deliveries")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_delivery_that_failed_before_a_restart_arrives_after_it(
    start_node: Any, unused_tcp_port: int, git_repo: Path, tmp_path: Path
) -> None:
    """The endpoint is down while the attempt's script runs and ends: the delivery's first try
    fails and is recorded; the node is stopped with SIGTERM, the receiver started, the node
    started again on the same data dir: the same delivery arrives, signed, and every try is
    readable over REST."""
    port = unused_tcp_port
    data_dir = tmp_path / "node"
    node = start_node(data_dir, _ENV)
    with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
        project = http.post("/projects", json={"name": "p", "git_repo_path": str(git_repo)})
        hook = http.post(
            "/webhooks",
            json={"name": "ci", "url": f"http://127.0.0.1:{port}/hook", "secret": SECRET},
        ).json()
        task = http.post(
            "/tasks",
            json={"project_id": project.json()["id"], "title": "Ship it", "description": "true"},
        ).json()
        attempt = http.post(
            "/task-attempts",
            json={"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"},
        ).json()
        [delivery] = wait_until(
            lambda: [d for d in _deliveries(http, hook["id"]) if d["attempts"]],
            timeout=20,
            what="the first failed try",
        )
        assert delivery["status"] == "pending"
        assert delivery["attempts"][0]["status_code"] is None
        assert delivery["attempts"][0]["error"]
    assert node.terminate() == 0

    with Receiver(port) as receiver:
        node = start_node(data_dir, _ENV)
        [got] = receiver.wait_for(1)
        with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
            [settled] = wait_until(
                lambda: [d for d in _deliveries(http, hook["id"]) if d["status"] != "pending"],
                timeout=20,
                what="the delivery to settle",
            )
    assert node.terminate() == 0
    assert settled["id"] == delivery["id"]
    assert settled["status"] == "delivered"
    tries = settled["attempts"]
    assert [t["attempt"] for t in tries] == list(range(1, len(tries) + 1))
    assert all(t["status_code"] is None and t["error"] for t in tries[:-1])
    assert (tries[-1]["status_code"], tries[-1]["error"]) == (200, None)
    assert got.headers["x-vk-event"] == "executor_finish"
    assert got.headers["x-vk-delivery"] == delivery["id"]
    assert verify_signature(got.body, SECRET, got.headers["x-vk-signature"])
    body = json.loads(got.body)
    assert body["attempt"]["id"] == attempt["id"]
    assert body["task"]["title"] == "Ship it"
    assert body["status"] == "completed"
