"""Webhooks over the local REST API: CRUD, hostile input, write-only secrets, test deliveries
and ``executor_finish`` deliveries of real SCRIPT runs, sent to a real HTTP server on
127.0.0.1 (tests/support/webhook_receiver.py) from a node app on a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient

from support.webhook_receiver import Receiver, verify_signature
from vk_node.app import create_app
from vk_node.settings import load_settings

from .conftest import NODE_URL

Client = AsyncTestClient[Litestar]
SECRET = "s3cret-value-never-echoed"


def _app(data_dir: Path, *, retry_delays: str, timeout: str) -> Litestar:
    env = {
        "VK_NODE_DATA_DIR": str(data_dir),
        "VK_NODE_EXECUTORS": "SCRIPT",
        "VK_NODE_WEBHOOK_RETRY_DELAYS_S": retry_delays,
        "VK_NODE_WEBHOOK_TIMEOUT_S": timeout,
    }
    return create_app(load_settings(env=env).settings)


@pytest_asyncio.fixture
async def fast(tmp_path: Path) -> AsyncIterator[Client]:
    """A node whose webhook retries come after 50 ms and 100 ms (this module tests retries)
    and whose tries time out after 1 s."""
    app = _app(tmp_path / "data", retry_delays="0.05,0.1", timeout="1")
    async with AsyncTestClient(app=app, base_url=NODE_URL) as client:
        yield client


@pytest.fixture
def receiver() -> Any:
    with Receiver() as running:
        yield running


async def _project(client: Client, repo: Path) -> dict[str, Any]:
    r = await client.post("/api/projects", json={"name": "p", "git_repo_path": str(repo)})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _hook(client: Client, **body: Any) -> dict[str, Any]:
    r = await client.post("/api/webhooks", json={"name": "h", **body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _deliveries(client: Client, hook_id: str, *, settled: int = 0) -> list[dict[str, Any]]:
    """The webhook's deliveries, once at least ``settled`` of them are no longer pending."""
    for _ in range(1000):
        r = await client.get(f"/api/webhooks/{hook_id}/deliveries")
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()
        if sum(d["status"] != "pending" for d in found) >= settled:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"deliveries of {hook_id} did not settle: {found}")


async def _run_script(client: Client, project: dict[str, Any], script: str, title: str) -> str:
    task = await client.post(
        "/api/tasks", json={"project_id": project["id"], "title": title, "description": script}
    )
    body = {"task_id": task.json()["id"], "executor": "SCRIPT", "base_branch": "main"}
    r = await client.post("/api/task-attempts", json=body)
    assert r.status_code == 202, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


@pytest.mark.asyncio
async def test_webhooks_are_created_listed_changed_and_deleted(
    client: Client, git_repo: Path
) -> None:
    """A global and a project webhook: listed all together or by project; GET never shows the
    secret or header values (``has_secret``, ``header_names``); PATCH changes given fields only,
    ``secret: null`` removes it; DELETE makes it 404."""
    project = await _project(client, git_repo)
    glob = await _hook(
        client, url="https://hooks.example.com/a", secret=SECRET, headers={"Authorization": "t0k"}
    )
    own = await _hook(
        client, url="http://127.0.0.1:9/b", project_id=project["id"], override_global=True
    )
    assert glob["has_secret"] is True
    assert glob["header_names"] == ["Authorization"]
    assert glob["project_id"] is None
    assert glob["events"] == ["executor_finish"]
    assert own["has_secret"] is False
    assert own["override_global"] is True
    listed = (await client.get("/api/webhooks")).json()
    assert [h["id"] for h in listed] == [glob["id"], own["id"]]
    by_project = (await client.get("/api/webhooks", params={"project_id": project["id"]})).json()
    assert [h["id"] for h in by_project] == [own["id"]]
    for text in (json.dumps(listed), (await client.get(f"/api/webhooks/{glob['id']}")).text):
        assert SECRET not in text
        assert "t0k" not in text
    r = await client.patch(f"/api/webhooks/{glob['id']}", json={"active": False})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    assert r.json()["has_secret"] is True
    assert r.json()["url"] == "https://hooks.example.com/a"
    r = await client.patch(f"/api/webhooks/{glob['id']}", json={"secret": None})
    assert r.json()["has_secret"] is False
    assert (await client.delete(f"/api/webhooks/{glob['id']}")).status_code == 204
    assert (await client.get(f"/api/webhooks/{glob['id']}")).status_code == 404
    assert (await client.get(f"/api/webhooks/{glob['id']}/deliveries")).status_code == 404
    assert (await client.delete(f"/api/webhooks/{glob['id']}")).status_code == 404


HOSTILE: list[tuple[dict[str, Any], int, str]] = [
    ({"url": "ftp://example.com/"}, 400, ""),
    ({"url": "javascript:alert(1)"}, 400, ""),
    ({"url": "file:///etc/passwd"}, 400, ""),
    ({"url": "http://example.com/\r\nX-Evil: 1"}, 400, ""),
    ({"url": "http://example.com/a b"}, 400, ""),
    ({"url": "http://user:pw@example.com/"}, 422, "user info"),
    ({"url": "http://[::1/"}, 422, "not a valid URL"),
    ({"url": "https://" + "a" * 3000 + ".com/"}, 400, ""),
    ({"headers": {"X-Ok": "a\r\nX-Injected: 1"}}, 400, ""),
    ({"headers": {"X-Ok": "a\nb"}}, 400, ""),
    ({"headers": {"Bad Name": "v"}}, 400, ""),
    ({"headers": {"X:Colon": "v"}}, 400, ""),
    ({"headers": {"X-VK-Signature": "sha256=forged"}}, 422, "cannot be overridden"),
    ({"headers": {"Host": "internal"}}, 422, "cannot be overridden"),
    ({"headers": {f"X-H{i}": "v" for i in range(33)}}, 400, ""),
    ({"headers": {"X-Big": "v" * 5000}}, 400, ""),
    ({"events": []}, 400, ""),
    ({"events": ["everything"]}, 400, ""),
    ({"secret": ""}, 400, ""),
    ({"secret": "x" * 2000}, 400, ""),
    ({"payload_template": "{oops"}, 422, "not JSON"),
    ({"payload_template": '{"t": "{{task.secret_key}}"}'}, 422, "{{task.secret_key}}"),
    ({"payload_template": "[" * 50 + "]" * 50}, 422, "deeper"),
    ({"payload_template": "x" * 20_000}, 400, ""),
    ({"override_global": True}, 422, "project webhooks only"),
    ({"project_id": str(uuid4())}, 404, ""),
    ({"name": ""}, 400, ""),
    ({"active": 0}, 400, "Expected `bool`"),
    ({"override_global": "true"}, 400, "Expected `bool`"),
    ({"surprise": 1}, 400, ""),
]


@pytest.mark.asyncio
async def test_hostile_webhook_input_is_a_clear_4xx(client: Client) -> None:
    """Non-http(s) or malformed URLs, CR/LF in headers, reserved headers, oversized fields,
    bad templates and unknown projects are refused with a problem body — on create and on
    update — and nothing is stored."""
    hook = await _hook(client, url="http://127.0.0.1:9/ok")
    for body, status, says in HOSTILE:
        full = {"name": "h", "url": "http://127.0.0.1:9/ok", **body}
        r = await client.post("/api/webhooks", json=full)
        assert r.status_code == status, (body, r.text)
        assert says in r.json()["detail"], body
        assert r.headers["content-type"].startswith("application/problem+json")
        patchable = {k: v for k, v in body.items() if k not in ("project_id", "surprise", "name")}
        if patchable:
            r = await client.patch(f"/api/webhooks/{hook['id']}", json=patchable)
            assert r.status_code == status, (body, r.text)
    assert (await client.get("/api/webhooks")).json() == [hook]


@pytest.mark.asyncio
async def test_web_pages_cannot_create_or_fire_webhooks(client: Client) -> None:
    """The node's API guard covers /api/webhooks: a cross-site write (foreign Origin), a
    text/plain "simple" request and a foreign Host are refused before any handler, and nothing
    is created or sent."""
    body = {"name": "h", "url": "http://127.0.0.1:9/x"}
    r = await client.post("/api/webhooks", json=body, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403, r.text
    r = await client.post(
        "/api/webhooks", content=json.dumps(body), headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415, r.text
    r = await client.get("/api/webhooks", headers={"Host": "evil.example"})
    assert r.status_code == 421, r.text
    hook = await _hook(client, url="http://127.0.0.1:9/x")
    r = await client.post(
        f"/api/webhooks/{hook['id']}/test", headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403, r.text
    assert (await client.get(f"/api/webhooks/{hook['id']}/deliveries")).json() == []


@pytest.mark.asyncio
async def test_a_test_delivery_is_signed_and_reports_its_outcome(
    client: Client, receiver: Receiver
) -> None:
    """POST /test sends a signed ``test`` event now (custom headers, rendered template) and
    answers with the recorded delivery; a 500 or an endpoint that is down is a failed delivery
    with the status or the error, listed with the others."""
    hook = await _hook(
        client,
        url=receiver.url + "/hook?x=1",
        secret=SECRET,
        headers={"Authorization": "Bearer t0k"},
        payload_template=json.dumps(
            {"text": "{{task.title}} finished: {{status}}", "code": "{{process.exit_code}}"}
        ),
    )
    r = await client.post(f"/api/webhooks/{hook['id']}/test")
    assert r.status_code == 200, r.text
    delivery = r.json()
    assert delivery["status"] == "delivered"
    assert delivery["event"] == "test"
    assert [(a["attempt"], a["status_code"], a["error"]) for a in delivery["attempts"]] == [
        (1, 200, None)
    ]
    [got] = receiver.received
    assert got.path == "/hook?x=1"
    assert json.loads(got.body) == {"text": "Test delivery finished: completed", "code": 0}
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-vk-event"] == "test"
    assert got.headers["x-vk-delivery"] == delivery["id"]
    assert got.headers["authorization"] == "Bearer t0k"
    assert verify_signature(got.body, SECRET, got.headers["x-vk-signature"])
    assert SECRET not in r.text

    receiver.statuses = [500]
    failed = (await client.post(f"/api/webhooks/{hook['id']}/test")).json()
    assert failed["status"] == "failed"
    assert [(a["status_code"], a["error"]) for a in failed["attempts"]] == [(500, "HTTP 500")]

    down = await _hook(client, url="http://127.0.0.1:9/nothing-listens")
    failed = (await client.post(f"/api/webhooks/{down['id']}/test")).json()
    assert failed["status"] == "failed"
    [attempt] = failed["attempts"]
    assert attempt["status_code"] is None
    assert "Connect" in attempt["error"]
    listed = (await client.get(f"/api/webhooks/{hook['id']}/deliveries")).json()
    assert [d["status"] for d in listed] == ["failed", "delivered"]
    assert (await client.post(f"/api/webhooks/{uuid4()}/test")).status_code == 404


@pytest.mark.asyncio
async def test_executor_finish_goes_to_project_and_global_webhooks(
    fast: Client, git_repo: Path, receiver: Receiver
) -> None:
    """When an attempt's script ends, every active webhook of its project and every active
    global one gets ``executor_finish`` with the run's outcome (inactive ones nothing); a
    project webhook with ``override_global`` silences the global ones for its project."""
    project = await _project(fast, git_repo)
    glob = await _hook(fast, url=receiver.url + "/global")
    own = await _hook(fast, url=receiver.url + "/project", project_id=project["id"])
    await _hook(fast, url=receiver.url + "/inactive", active=False)
    attempt_id = await _run_script(fast, project, "echo hi; exit 3", "Fails on purpose")
    for hook in (glob, own):
        [delivery] = await _deliveries(fast, hook["id"], settled=1)
        assert delivery["status"] == "delivered"
    got = {r.path: r for r in receiver.wait_for(2)}
    assert set(got) == {"/global", "/project"}
    body = json.loads(got["/project"].body)
    assert got["/project"].headers["x-vk-event"] == "executor_finish"
    assert "x-vk-signature" not in got["/project"].headers
    assert body["event"] == "executor_finish"
    assert body["status"] == "failed"
    assert body["task"]["title"] == "Fails on purpose"
    assert body["attempt"]["id"] == attempt_id
    assert body["attempt"]["executor"] == "SCRIPT"
    assert body["process"]["exit_code"] == 3
    assert body["process"]["run_reason"] == "codingagent"
    assert body["project"]["id"] == project["id"]
    assert body["delivery_id"] == got["/project"].headers["x-vk-delivery"]

    r = await fast.patch(f"/api/webhooks/{own['id']}", json={"override_global": True})
    assert r.status_code == 200, r.text
    await _run_script(fast, project, "exit 0", "Works")
    [latest, _] = await _deliveries(fast, own["id"], settled=2)
    assert json.loads(latest["body"])["status"] == "completed"
    assert len(receiver.wait_for(3)) == 3
    assert len(await _deliveries(fast, glob["id"])) == 1


@pytest.mark.asyncio
async def test_a_failing_endpoint_is_retried_on_the_schedule_until_it_answers(
    fast: Client, git_repo: Path, receiver: Receiver
) -> None:
    """Answers 500, 500, then 200: three tries of the same delivery (same id, same signed
    body), each recorded with its status code and duration, the delivery ``delivered``."""
    receiver.statuses = [500, 503]
    project = await _project(fast, git_repo)
    hook = await _hook(fast, url=receiver.url, secret=SECRET)
    await _run_script(fast, project, "true", "Retried")
    [delivery] = await _deliveries(fast, hook["id"], settled=1)
    assert delivery["status"] == "delivered"
    assert delivery["attempt_count"] == 3
    tries = [(a["attempt"], a["status_code"], a["error"]) for a in delivery["attempts"]]
    assert tries == [(1, 500, "HTTP 500"), (2, 503, "HTTP 503"), (3, 200, None)]
    assert all(a["duration_ms"] >= 0 for a in delivery["attempts"])
    requests = receiver.wait_for(3)
    assert {r.headers["x-vk-delivery"] for r in requests} == {delivery["id"]}
    assert {r.body for r in requests} == {delivery["body"].encode()}
    assert all(verify_signature(r.body, SECRET, r.headers["x-vk-signature"]) for r in requests)


@pytest.mark.asyncio
async def test_an_endpoint_that_stays_down_fails_the_delivery_after_its_tries(
    fast: Client, git_repo: Path
) -> None:
    """Nothing listens: one try plus one per retry delay, each with the connection error,
    then ``failed`` with no next time."""
    project = await _project(fast, git_repo)
    hook = await _hook(fast, url="http://127.0.0.1:9/down")
    await _run_script(fast, project, "true", "Nobody listens")
    [delivery] = await _deliveries(fast, hook["id"], settled=1)
    assert delivery["status"] == "failed"
    assert delivery["next_attempt_at"] is None
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3]
    assert all(a["status_code"] is None and a["error"] for a in delivery["attempts"])


@pytest.mark.asyncio
async def test_a_slow_endpoint_times_out_without_holding_up_the_run(
    tmp_path: Path, git_repo: Path
) -> None:
    """An endpoint that does not answer within the timeout (0.3 s here, one retry): the run
    finishes as usual (the delivery is the worker's business) and each try records a
    timeout."""
    app = _app(tmp_path / "slow-data", retry_delays="0.05", timeout="0.3")
    with Receiver(delay_s=30) as slow:
        async with AsyncTestClient(app=app, base_url=NODE_URL) as client:
            project = await _project(client, git_repo)
            hook = await _hook(client, url=slow.url)
            attempt_id = await _run_script(client, project, "true", "Slow hook")
            for _ in range(500):
                processes = (await client.get(f"/api/task-attempts/{attempt_id}/processes")).json()
                if processes and processes[0]["status"] == "completed":
                    break
                await asyncio.sleep(0.02)
            assert processes[0]["status"] == "completed"
            [delivery] = await _deliveries(client, hook["id"], settled=1)
            assert delivery["status"] == "failed"
            assert {a["error"] for a in delivery["attempts"]} == {"timed out after 0.3 s"}
