"""A ``vk-node serve`` process given several hive URLs (a refused port, then two ``vk-hive serve``
processes on one database) links through the first live one and fails over to the other when it
stops — each time within less than its first backoff delay, so without waiting one."""

from __future__ import annotations

import socket

from support.cluster import Cluster, HiveProcess, wait_until

BACKOFF = {"VK_NODE_LINK_BACKOFF_INITIAL_S": "30", "VK_NODE_LINK_BACKOFF_MAX_S": "60"}
WITHIN_S = 20.0
"""Each connection must be up within this, below the 30 s a backoff wait would take."""


def test_a_node_process_fails_over_between_hive_processes(make_cluster) -> None:
    cluster: Cluster = make_cluster(nodes_count=0)
    second = HiveProcess(
        cluster.hive.dsn,
        cluster.workdir,
        name="hive-b",
        env=cluster.hive_env,
        cluster_id=cluster.cluster_id,
    )
    second.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as dead:
            dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
            dead_url = f"ws://127.0.0.1:{dead.getsockname()[1]}"
            urls = [dead_url, cluster.hive.url, second.url]
            node = cluster.add_node(
                "node-a", env={"VK_HIVE_URL": ",".join(urls), **BACKOFF}, wait=False
            )
            node.node_id = node.process.wait_connected(WITHIN_S)
            status = node.process.link_status()
            assert status["hive_url"] == cluster.hive.url
            assert status["hive_urls"] == urls
            cluster.wait_online(node)

            cluster.hive.stop()

            def on_second() -> bool:
                s = node.process.link_status()
                return s["state"] == "connected" and s["hive_url"] == second.url

            wait_until(on_second, timeout=WITHIN_S, what="failover to the second hive")
            task = node.api.post("/tasks", json={"project_id": node.project_id, "title": "via b"})
            api = second.api(cluster.admin.token)
            try:

                def reached() -> bool:
                    tasks = api.get(f"/tasks?project_id={cluster.swarm_project_id}")
                    return any(t["title"] == "via b" for t in tasks)

                wait_until(reached, timeout=WITHIN_S, what="the task to reach the second hive")
            finally:
                api.close()
            assert task["title"] == "via b"

            def recorded() -> dict[str, object] | None:
                report = node.process.status()
                return report if report["link_hive_url"] == second.url else None

            report = wait_until(recorded, timeout=WITHIN_S, what="vk-node status to name hive-b")
            assert report["hive_urls"] == urls
            assert report["link_state"] == "connected"
    finally:
        second.stop()
        cluster.hive.start()
