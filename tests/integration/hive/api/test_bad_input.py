"""Bad input on every route of the hive is a 4xx JSON error, never a 5xx.

A route walker (``support.route_walker``) reads the running hive's OpenAPI document and sends each
operation hostile path parameters, query parameters and bodies over a real socket — once without
a token and once as an organization admin, on real PostgreSQL — then checks that the hive still
answers ``/v1/health``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from support.postgres import PostgresServer
from support.route_walker import exchange, walk_app
from vk_hive.app import create_app
from vk_shared.jsoncheck import MAX_DEPTH

from .world import World, world_on

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(pg_server: PostgresServer, hive_template: str) -> AsyncIterator[World]:
    async with world_on(pg_server, hive_template, "bad") as built:
        yield built


def _known(world: World) -> dict[str, Any]:
    """Real ids (and plausible values) by the parameter and field names the hive uses."""
    ids = world.ids
    return {
        "org_id": ids["org_id"],
        "organization_id": ids["org_id"],
        "user_id": ids["member_id"],
        "project_id": ids["project_id"],
        "node_id": ids["node_id"],
        "source_id": ids["node2_id"],
        "target_id": ids["node_id"],
        "task_id": ids["task_id"],
        "execution_process_id": ids["process_id"],
        "label_id": ids["label_id"],
        "template_id": ids["template_id"],
        "key_id": ids["key_id"],
        "invitation_id": ids["invitation_id"],
        "token": ids["invitation_token"],
        "provider": "github",
        "executor": "SCRIPT",
        "email": "walker@example.com",
    }


async def test_every_route_answers_hostile_input_with_a_4xx(world: World) -> None:
    """Every operation of the OpenAPI document (and every undocumented route), walked with
    hostile path, query and body input, anonymously and as an admin, never gets a 5xx, answers
    each 4xx with the JSON error body, and the hive still serves /v1/health afterwards."""
    hive = world.hive
    doc = (await hive.client.get("/schema/openapi.json")).json()
    report = await walk_app(
        "hive",
        create_app(hive.settings),
        doc,
        hive.settings.port,
        _known(world),
        token=world.admin.token,
        depth_limit=MAX_DEPTH,
        max_body_bytes=hive.settings.max_body_bytes,
    )
    print("\n" + report.text())
    assert not report.problems, report.text()
    health = await hive.client.get("/v1/health")
    assert health.status_code == 200, health.text


async def test_a_body_of_ten_megabytes_is_413(world: World) -> None:
    """A 10 MB string in a body, announced or streamed in chunks, is refused with 413 (the body
    limit), never a 5xx."""
    body = b'{"organization_id": "' + world.ids["org_id"].encode() + b'", "name": "'
    body += b"y" * 10_000_000 + b'"}'
    for chunked in (False, True):
        status, answer = await exchange(
            world.hive.settings.port,
            "POST",
            b"/v1/swarm/projects",
            body,
            token=world.admin.token,
            chunked=chunked,
        )
        assert status == 413, (chunked, answer)
        assert json.loads(answer)["code"] == "payload_too_large"
