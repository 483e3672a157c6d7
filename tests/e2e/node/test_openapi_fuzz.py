"""The node's OpenAPI document is exact: a fuzzer driven by it finds nothing.

A real ``vk-node serve`` process on a real SQLite file, with a project on a real git repository
and a task, is fuzzed by schemathesis (``support.fuzz``) over a real socket as a local client
(``Host: 127.0.0.1:<port>``, JSON bodies): every operation gets generated valid and invalid input
(fixed seed, deterministic, a bounded number of examples), single requests and chains. No
executor is enabled, so nothing the fuzzer writes is ever run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from support.fuzz import fuzz


@pytest.mark.timeout(240)
@pytest.mark.asyncio
async def test_a_fuzzer_finds_nothing_the_document_does_not_say(
    node_process: Any, git_repo: Any
) -> None:
    """No 5xx, no undocumented status, media type, body or header, no loose request schema and
    no wrong ``Allow`` in a seeded schemathesis run over every operation of the node's API."""
    url = node_process.url
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        project = await http.post(
            "/api/projects", json={"name": "p", "git_repo_path": str(git_repo)}
        )
        assert project.status_code == 201, project.text
        task = await http.post(
            "/api/tasks", json={"project_id": project.json()["id"], "title": "t"}
        )
        assert task.status_code == 201, task.text
        report = await asyncio.to_thread(
            fuzz, "node", url, headers={"Host": f"127.0.0.1:{node_process.port}"}
        )
        print("\n" + report.text())
        assert (await http.get("/api/health")).status_code == 200
    assert not report.errors, report.text()
    assert not report.findings, report.text()
