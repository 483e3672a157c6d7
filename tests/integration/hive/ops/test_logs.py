"""The hive's JSON logs: request and connection ids on every line of a request or a node session,
uvicorn's own lines in the same format, and no secret in any line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from support.hive_client import HiveClient
from vk_hive import cli
from vk_hive.logging import configure_logging
from vk_shared.wire import AuthResult, ErrorMessage

from ..gateway.conftest import Node, running_world
from ..gateway.conftest import World as GatewayWorld

pytestmark = pytest.mark.asyncio


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The process logs JSON at debug level (as with ``VK_HIVE_LOG_FORMAT=json``) into the
    returned buffer, which stands in for stderr; the previous logging configuration is restored
    afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    named = {
        name: (list(lg.handlers), lg.propagate, lg.level)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets")
        for lg in [logging.getLogger(name)]
    }
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging("json", "debug")
    try:
        yield buffer
    finally:
        structlog.configure(**saved)
        root.handlers, root.level = handlers, level
        for name, (hs, propagate, lvl) in named.items():
            lg = logging.getLogger(name)
            lg.handlers, lg.propagate, lg.level = hs, propagate, lvl


def _lines(err: str) -> list[dict[str, Any]]:
    out = []
    for line in err.splitlines():
        if not line.strip() or line.startswith("[postgres]"):
            continue
        out.append(json.loads(line))  # every line is one JSON object
    return out


async def _session(world: GatewayWorld, token: str, org_id: str) -> tuple[str, str]:
    """Use the bootstrap token over REST, create an API key with it, authenticate a node with
    the key (and once with a wrong key), send an op batch. Returns (api key, node id)."""
    auth = {"Authorization": f"Bearer {token}"}
    assert (await world.http.get("/v1/me", headers=auth)).status_code == 200
    r = await world.http.post(
        "/v1/nodes/api-keys", json={"organization_id": org_id, "name": "box"}, headers=auth
    )
    assert r.status_code == 201, r.text
    secret = str(r.json()["secret"])
    bad = await world.http.get("/v1/me", headers={"Authorization": f"Bearer {token}x"})
    assert bad.status_code == 401
    async with await HiveClient.connect(world.url) as wrong:
        refused = await wrong.auth(secret[:-4] + "0000", machine_id="m-wrong")
        assert isinstance(refused, ErrorMessage)
    client = await world.client()
    result = await client.auth(secret, machine_id=f"m-{uuid.uuid4().hex[:6]}")
    assert isinstance(result, AuthResult), result
    node = Node(client=client, auth=result, api_key=secret, local_project_id=uuid.uuid4())
    await node.batch(node.task_op(title="not linked"))
    await client.close()
    return secret, str(result.node_id)


async def _invitation_looked_up(world: GatewayWorld, token: str) -> str:
    """Invite someone to a new organization and look the invitation up by its token (a secret in
    the path: the request line logs the route template). Returns the invitation token."""
    auth = {"Authorization": f"Bearer {token}"}
    r = await world.http.post("/v1/organizations", json={"name": "team"}, headers=auth)
    assert r.status_code == 201, r.text
    r = await world.http.post(
        f"/v1/organizations/{r.json()['id']}/invitations",
        json={"email": "guest@example.com"},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    invitation = str(r.json()["token"])
    assert (await world.http.get(f"/v1/invitations/{invitation}")).status_code == 200
    return invitation


async def test_json_logs_carry_ids_and_never_a_secret(
    hive_dsn: str, json_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full session — `vk-hive admin bootstrap`, its token used over REST, an API key created
    and used (and a wrong one refused) on the node socket, an op batch — logs only JSON lines
    (uvicorn's included): request lines carry a request id, session lines a connection id (and
    the node id once authenticated); neither the token, the API key, an invitation token (in the
    path of its look-up) nor the JWT secret appear."""
    argv = ["--database-url", hive_dsn, "admin", "bootstrap", "--email", "ops@example.com"]
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    assert await asyncio.to_thread(cli.main, [*argv, "--json"]) == 0
    boot = json.loads(stdout.getvalue())
    async with running_world(hive_dsn) as world:
        secret, node_id = await _session(world, boot["token"], boot["organization_id"])
        invitation = await _invitation_looked_up(world, boot["token"])
        jwt_secret = world.settings.jwt_secret
    err = json_logs.getvalue()
    lines = _lines(err)
    for needle in (boot["token"], secret, jwt_secret, secret[:-4] + "0000"):
        assert needle not in err
    # The test's own HTTP client logs its URLs in this process: only the hive's lines count.
    hive_lines = [line for line in lines if not line.get("logger", "").startswith("http")]
    assert invitation not in json.dumps(hive_lines)

    assert any(line.get("logger", "").startswith("uvicorn") for line in lines)
    # uvicorn's line per WebSocket accept/open/close is dropped (the session lines say more).
    assert not [line for line in lines if "[accepted]" in line["event"]]
    assert not [line for line in lines if line["event"] in ("connection open", "connection closed")]
    requests = [line for line in lines if line["event"] == "http.request"]
    assert {line["route"] for line in requests} >= {"/v1/me", "/v1/nodes/api-keys"}
    looked_up = [line for line in requests if line["route"].startswith("/v1/invitations/")]
    assert [line["path"] for line in looked_up] == [line["route"] for line in looked_up] != []
    assert all(line["request_id"] for line in requests)
    assert all(line["level"] and line["timestamp"] for line in lines)
    sessions = [line for line in lines if line["event"].startswith(("session.", "op_batch."))]
    assert {line["event"] for line in sessions} >= {
        "session.auth_failed",
        "session.authenticated",
        "op_batch.applied",
    }
    assert all(line.get("connection_id") for line in sessions)
    refused = next(line for line in sessions if line["event"] == "session.auth_failed")
    assert refused["error_code"] == "auth_failed"
    applied = next(line for line in sessions if line["event"] == "op_batch.applied")
    assert applied["node_id"] == node_id
    assert len({line["connection_id"] for line in sessions}) == 2  # the refused and the accepted
