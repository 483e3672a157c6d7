"""Organization webhooks against real hives (uvicorn on sockets, a fresh PostgreSQL database) and
a real HTTP receiver (tests/support/webhook_receiver.py): the REST rules (admins only, write-only
secrets, refused URLs, headers and templates), events written with the fact (a process mirror's
end through the gateway's writer, a node marked offline), retries with every try recorded, a
``node_offline`` superseded when the node came back, and two hive processes sharing the table
without sending a delivery twice.

Deliveries here go to 127.0.0.1, so the hives of the delivery tests allow private networks (the
tests of the refusal run with the default).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import pytest

from support.webhook_receiver import Receiver, verify_signature
from vk_hive.gateway.plan import WriteProcess
from vk_hive.gateway.writer import Writer
from vk_hive.store.models import NodeRegistration
from vk_hive.store.repositories import executions, nodes, project_links
from vk_hive.store.repositories import webhooks as webhooks_repo
from vk_hive.store.repositories.executions import ProcessData
from vk_hive.webhooks import events

from .conftest import Actor, Hive, HiveFactory
from .world import mirror_run

pytestmark = pytest.mark.asyncio

PRIVATE_OK = {"webhook_allow_private_networks": True, "webhook_retry_delays_s": (0.3, 0.3)}


def hooks_url(org_id: uuid.UUID, *rest: str) -> str:
    return "/".join([f"/v1/organizations/{org_id}/webhooks", *rest]).rstrip("/")


async def create_hook(hive: Hive, admin: Actor, org_id: uuid.UUID, **body: Any) -> dict[str, Any]:
    r = await hive.client.post(hooks_url(org_id), json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def wait_for_status(
    hive: Hive, admin: Actor, org_id: uuid.UUID, hook_id: str, status: str, count: int = 1
) -> list[dict[str, Any]]:
    for _ in range(200):
        r = await hive.client.get(hooks_url(org_id, hook_id, "deliveries"), headers=admin.headers)
        deliveries: list[dict[str, Any]] = r.json()
        if sum(d["status"] == status for d in deliveries) >= count:
            return deliveries
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {count} {status} deliveries: {[d['status'] for d in deliveries]}")


async def test_admins_manage_webhooks_and_secrets_never_come_back(hive: Hive) -> None:
    admin, member, outsider = await hive.user(), await hive.user(), await hive.user()
    org = await hive.org_with(admin, member)
    created = await create_hook(
        hive,
        admin,
        org,
        name="team",
        url="https://hooks.example.com/vk",
        events=["task_finished", "node_offline", "task_finished"],
        secret="s3cret",
        headers={"Authorization": "Bearer hidden-value"},
    )
    assert created["events"] == ["task_finished", "node_offline"]
    assert created["has_secret"] is True
    assert created["header_names"] == ["Authorization"]
    assert "s3cret" not in json.dumps(created)
    assert "hidden-value" not in json.dumps(created)

    url = hooks_url(org, created["id"])
    r = await hive.client.patch(url, json={"secret": None, "active": False}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["has_secret"], r.json()["active"]) == (False, False)

    for actor in (member, outsider):
        for method, path, body in (
            ("GET", hooks_url(org), None),
            (
                "POST",
                hooks_url(org),
                {"name": "x", "url": "https://a.example/", "events": ["node_offline"]},
            ),
            ("GET", url, None),
            ("PATCH", url, {"active": True}),
            ("DELETE", url, None),
            ("POST", f"{url}/test", None),
            ("GET", f"{url}/deliveries", None),
        ):
            r = await hive.client.request(method, path, json=body, headers=actor.headers)
            assert r.status_code == 403, (actor.email, method, path, r.text)
    # Another organization's admin cannot reach this webhook through their own organization.
    r = await hive.client.get(
        hooks_url(outsider.personal_org_id, created["id"]), headers=outsider.headers
    )
    assert r.status_code == 404
    r = await hive.client.get(hooks_url(uuid.uuid4()), headers=admin.headers)
    assert r.status_code == 404

    r = await hive.client.get(hooks_url(org), headers=admin.headers)
    assert [h["id"] for h in r.json()] == [created["id"]]
    assert (await hive.client.delete(url, headers=admin.headers)).status_code == 204
    assert (await hive.client.get(url, headers=admin.headers)).status_code == 404


BAD_WEBHOOKS: list[tuple[dict[str, Any], int, str]] = [
    ({"url": "http://127.0.0.1:5432/"}, 422, "not a public address"),
    ({"url": "http://localhost/hook"}, 422, "not a public address"),
    ({"url": "http://169.254.169.254/latest/meta-data"}, 422, "not a public address"),
    ({"url": "http://10.1.2.3/"}, 422, "not a public address"),
    ({"url": "http://[::1]/"}, 422, "not a public address"),
    ({"url": "http://[::ffff:127.0.0.1]/"}, 422, "not a public address"),
    ({"url": "http://0.0.0.0/"}, 422, "not a public address"),
    ({"url": "https://user:pw@hooks.example.com/"}, 422, "user info"),
    ({"headers": {"X-VK-Signature": "forged"}}, 422, "set by the hive"),
    ({"headers": {"Host": "elsewhere"}}, 422, "set by the hive"),
    ({"payload_template": '{"t": "{{task.nope}}"}'}, 422, "unknown placeholder"),
    ({"payload_template": "{not json"}, 422, "not JSON"),
    ({"url": "ftp://hooks.example.com/"}, 400, "url"),
    ({"headers": {"X-Ok": "a\r\nInjected: 1"}}, 400, "headers"),
    ({"events": ["executor_finish"]}, 400, "events"),
    ({"events": []}, 400, "events"),
    ({"surprise": 1}, 400, "surprise"),
]


async def test_bad_webhooks_are_refused_with_the_reason(hive: Hive) -> None:
    admin = await hive.user()
    org = await hive.org_with(admin)
    full = {"name": "w", "url": "https://hooks.example.com/vk", "events": ["task_finished"]}
    hook = await create_hook(hive, admin, org, **full)
    for body, status, says in BAD_WEBHOOKS:
        r = await hive.client.post(hooks_url(org), json=full | body, headers=admin.headers)
        assert (r.status_code, says in r.text) == (status, True), (body, r.text)
        r = await hive.client.patch(hooks_url(org, hook["id"]), json=body, headers=admin.headers)
        assert (r.status_code, says in r.text) == (status, True), (body, r.text)
    r = await hive.client.get(hooks_url(org), headers=admin.headers)
    assert r.json() == [hook]


async def test_a_private_destination_refused_at_send_time_is_a_failed_try(
    hive_factory: HiveFactory,
) -> None:
    """A name that resolved publicly when saved may point inside later: each try checks again
    (here the stored URL is changed behind the API's back)."""
    hive = await hive_factory(webhook_retry_delays_s=())
    admin = await hive.user()
    org = await hive.org_with(admin)
    with Receiver() as receiver:
        hook = await create_hook(
            hive, admin, org, name="w", url="https://hooks.example.com/", events=["task_finished"]
        )
        async with hive.db.transaction() as conn:
            await conn.execute(
                "UPDATE organization_webhooks SET url = $1 WHERE id = $2",
                receiver.url + "/in",
                uuid.UUID(hook["id"]),
            )
        r = await hive.client.post(hooks_url(org, hook["id"], "test"), headers=admin.headers)
        assert r.status_code == 200
        delivery = r.json()
        assert delivery["status"] == "failed"
        assert "not a public address" in delivery["attempts"][0]["error"]
        assert receiver.received == []


async def _linked_task(hive: Hive, admin: Actor, org: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """A node linked to a new swarm project and a task of that project: (node id, task id)."""
    r = await hive.client.post(
        "/v1/swarm/projects", json={"organization_id": str(org), "name": "p"}, headers=admin.headers
    )
    project_id = uuid.UUID(r.json()["id"])
    async with hive.db.transaction() as conn:
        node = await nodes.create(conn, org, NodeRegistration(name="n1", machine_id="m1"))
        await project_links.link_node(conn, project_id, node.id, uuid.uuid4(), "/repo")
    r = await hive.client.post(
        "/v1/tasks",
        json={"project_id": str(project_id), "title": "fix the bug", "executor": "SCRIPT"},
        headers=admin.headers,
    )
    return node.id, uuid.UUID(r.json()["task"]["id"])


async def test_a_run_that_ends_fires_task_finished_once_and_retries_until_delivered(
    hive_factory: HiveFactory,
) -> None:
    hive = await hive_factory(**PRIVATE_OK)
    admin = await hive.user()
    org = await hive.org_with(admin)
    node_id, task_id = await _linked_task(hive, admin, org)
    with Receiver(statuses=[500, 503]) as receiver:
        hook = await create_hook(
            hive,
            admin,
            org,
            name="w",
            url=receiver.url + "/hook",
            events=["task_finished"],
            secret="k",
            headers={"X-Team": "blue"},
        )
        async with hive.db.transaction() as conn:
            attempt, process = await mirror_run(conn, node_id, task_id)
            setup = ProcessData(
                id=uuid.uuid4(),
                attempt_id=attempt.id,
                run_reason="setupscript",
                status="completed",
                started_at=process.started_at,
                completed_at=process.started_at,
            )
            ended = ProcessData(
                id=process.id,
                attempt_id=attempt.id,
                run_reason="codingagent",
                status="completed",
                exit_code=0,
                started_at=process.started_at,
                completed_at=dt.datetime.now(dt.UTC),
            )
            writer = Writer(conn, node_id)
            await writer.write(WriteProcess(data=setup))  # not a coding-agent run: nothing
            await writer.write(WriteProcess(data=ended))
            await writer.write(WriteProcess(data=ended))  # the same end again: nothing more
        deliveries = await wait_for_status(hive, admin, org, hook["id"], "delivered")
        (delivery,) = deliveries
        assert [t["status_code"] for t in delivery["attempts"]] == [500, 503, 200]
        assert delivery["attempts"][0]["error"] == "HTTP 500"
        sent = receiver.wait_for(3)
        assert {s.headers["x-vk-delivery"] for s in sent} == {delivery["id"]}
        last = sent[-1]
        assert last.path == "/hook"
        assert last.headers["x-vk-event"] == "task_finished"
        assert last.headers["x-team"] == "blue"
        assert verify_signature(last.body, "k", last.headers["x-vk-signature"])
        body = json.loads(last.body)
        assert body["task"] == {"id": str(task_id), "title": "fix the bug", "status": "todo"}
        assert (body["status"], body["process"]["exit_code"]) == ("completed", 0)
        assert body["node"]["id"] == str(node_id)
        assert body["assignment"] is None  # a run the node started by itself
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 3


async def test_a_dead_endpoint_fails_after_every_try_is_recorded(
    hive_factory: HiveFactory,
) -> None:
    hive = await hive_factory(**PRIVATE_OK)
    admin = await hive.user()
    org = await hive.org_with(admin)
    with Receiver() as receiver:
        dead_url = receiver.url + "/gone"
    hook = await create_hook(hive, admin, org, name="w", url=dead_url, events=["node_offline"])
    node_id, _ = await _linked_task(hive, admin, org)
    async with hive.db.transaction() as conn:
        session = uuid.uuid4()
        await nodes.connected(conn, node_id, NodeRegistration(name="n1", machine_id="m1"), session)
        await nodes.disconnected(conn, node_id, session)
        assert await events.node_offline(conn, node_id, grace_s=0) == 1
    (delivery,) = await wait_for_status(hive, admin, org, hook["id"], "failed")
    assert delivery["attempt_count"] == 3
    assert [t["attempt"] for t in delivery["attempts"]] == [1, 2, 3]
    assert all(t["status_code"] is None and t["error"] for t in delivery["attempts"])
    assert json.loads(delivery["body"])["node"]["id"] == str(node_id)


async def test_node_offline_is_superseded_when_the_node_came_back_in_the_grace(
    hive_factory: HiveFactory,
) -> None:
    hive = await hive_factory(**PRIVATE_OK)
    admin = await hive.user()
    org = await hive.org_with(admin)
    node_id, _ = await _linked_task(hive, admin, org)
    reg = NodeRegistration(name="n1", machine_id="m1")
    with Receiver() as receiver:
        hook = await create_hook(
            hive, admin, org, name="w", url=receiver.url, events=["node_offline"]
        )
        async with hive.db.transaction() as conn:
            first = uuid.uuid4()
            await nodes.connected(conn, node_id, reg, first)
            await nodes.disconnected(conn, node_id, first)
            await events.node_offline(conn, node_id, grace_s=0.5)
        async with hive.db.transaction() as conn:
            await nodes.connected(conn, node_id, reg, uuid.uuid4())  # back within the grace
        (delivery,) = await wait_for_status(hive, admin, org, hook["id"], "superseded")
        assert delivery["attempts"] == []

        async with hive.db.transaction() as conn:
            (current,) = (await nodes.current_sessions(conn, [node_id])).values()
            assert current is not None
            await nodes.disconnected(conn, node_id, current)
            await events.node_offline(conn, node_id, grace_s=0.2)  # gone for good this time
        await wait_for_status(hive, admin, org, hook["id"], "delivered")
        (sent,) = receiver.wait_for(1)
        assert json.loads(sent.body)["event"] == "node_offline"
        assert sent.headers["x-vk-event"] == "node_offline"


async def test_two_hive_processes_send_each_delivery_once(hive_factory: HiveFactory) -> None:
    first = await hive_factory(**PRIVATE_OK)
    await hive_factory(**PRIVATE_OK)  # a second process over the same database
    admin = await first.user()
    org = await first.org_with(admin)
    node_id, _ = await _linked_task(first, admin, org)
    with Receiver(delay_s=0.05) as receiver:
        hook = await create_hook(
            first, admin, org, name="w", url=receiver.url, events=["node_offline"]
        )
        async with first.db.transaction() as conn:
            session = uuid.uuid4()
            reg = NodeRegistration(name="n1", machine_id="m1")
            await nodes.connected(conn, node_id, reg, session)
            await nodes.disconnected(conn, node_id, session)
            for _ in range(30):
                await events.node_offline(conn, node_id, grace_s=0)
        await wait_for_status(first, admin, org, hook["id"], "delivered", count=30)
        await asyncio.sleep(0.5)
        ids = [r.headers["x-vk-delivery"] for r in receiver.received]
        assert (len(ids), len(set(ids))) == (30, 30)


async def test_the_test_delivery_is_sent_at_once_and_recorded(hive_factory: HiveFactory) -> None:
    hive = await hive_factory(**PRIVATE_OK)
    admin = await hive.user()
    org = await hive.org_with(admin)
    with Receiver() as receiver:
        hook = await create_hook(
            hive,
            admin,
            org,
            name="w",
            url=receiver.url,
            events=["node_offline"],
            secret="t",
            payload_template='{"text": "{{node.name}} is offline", "org": "{{organization.name}}"}',
            active=False,
        )
        r = await hive.client.post(hooks_url(org, hook["id"], "test"), headers=admin.headers)
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["event"]) == ("delivered", "test")
        (sent,) = receiver.wait_for(1)
        assert json.loads(sent.body)["text"] == "test-node is offline"
        assert verify_signature(sent.body, "t", sent.headers["x-vk-signature"])
        r = await hive.client.get(hooks_url(org, hook["id"], "deliveries"), headers=admin.headers)
        assert [d["event"] for d in r.json()] == ["test"]


async def test_an_inactive_or_unsubscribed_webhook_gets_no_event(hive_factory: HiveFactory) -> None:
    hive = await hive_factory(**PRIVATE_OK)
    admin = await hive.user()
    org = await hive.org_with(admin)
    node_id, task_id = await _linked_task(hive, admin, org)
    await create_hook(
        hive,
        admin,
        org,
        name="off",
        url="http://127.0.0.1:9/",
        events=["task_finished"],
        active=False,
    )
    await create_hook(
        hive, admin, org, name="other", url="http://127.0.0.1:9/", events=["node_offline"]
    )
    async with hive.db.transaction() as conn:
        _, process = await mirror_run(conn, node_id, task_id)
        process.status = "failed"
        assert await events.task_finished(conn, process) == 0
        assert await executions.process_status(conn, process.id) == "running"


async def test_a_try_cut_off_by_a_dead_process_is_made_again_after_the_hold(
    hive_factory: HiveFactory,
) -> None:
    """A process that claimed a delivery and died never records its try: once the claim's hold
    ends, a live process makes the try again (same delivery id, next try number)."""
    hive = await hive_factory(**PRIVATE_OK)
    admin = await hive.user()
    org = await hive.org_with(admin)
    node_id, _ = await _linked_task(hive, admin, org)
    with Receiver() as receiver:
        hook = await create_hook(
            hive, admin, org, name="w", url=receiver.url, events=["node_offline"]
        )
        async with hive.db.transaction() as conn:
            session = uuid.uuid4()
            await nodes.connected(
                conn, node_id, NodeRegistration(name="n1", machine_id="m1"), session
            )
            await nodes.disconnected(conn, node_id, session)
            await events.node_offline(conn, node_id, grace_s=60)
        async with hive.db.transaction() as conn:
            # The dead process: due now, claimed for one second, never sent.
            await conn.execute(
                "UPDATE organization_webhook_deliveries"
                " SET next_attempt_at = now() - interval '1 s'"
            )
            claimed = await webhooks_repo.claim_due(
                conn, limit=10, hold=dt.timedelta(seconds=1), max_attempts=3
            )
        ((delivery, _),) = claimed
        (done,) = await wait_for_status(hive, admin, org, hook["id"], "delivered")
        assert done["id"] == str(delivery.id)
        assert done["attempt_count"] == 2
        assert [t["attempt"] for t in done["attempts"]] == [2]
        (sent,) = receiver.wait_for(1)
        assert sent.headers["x-vk-delivery"] == str(delivery.id)
        metrics = (await hive.client.get("/metrics")).text
        assert (
            'vk_hive_webhook_tries_total{event="node_offline",outcome="delivered"} 1.0' in metrics
        )
