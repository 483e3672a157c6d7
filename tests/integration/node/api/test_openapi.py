"""The node's OpenAPI document says what the node does: every operation's errors are problem
details, the bearer token is optional (VK_NODE_API_TOKEN), the guard's refusals are listed, path
ids are UUIDs, bodies refuse unknown fields, and OPTIONS names exactly the documented methods."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]
_METHODS = ("get", "put", "post", "patch", "delete")


async def _document(client: Client) -> dict[str, Any]:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    document: dict[str, Any] = r.json()
    return document


@pytest.mark.asyncio
async def test_every_operation_documents_its_problems_and_the_optional_token(
    client: Client,
) -> None:
    """Every error response is the Problem schema as application/problem+json; every operation
    but GET /api/health may need the bearer token and lists 401 and the guard's 421; writes with
    a body list 415; ids in paths are UUIDs; request bodies forbid unknown fields."""
    doc = await _document(client)
    assert doc["components"]["securitySchemes"]["bearer"]["type"] == "http"
    for path, item in doc["paths"].items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            where = f"{method.upper()} {path}"
            errors = {code for code in op["responses"] if code[0] in "45"}
            for code in errors:
                content = op["responses"][code]["content"]
                assert list(content) == ["application/problem+json"], where
                assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
            assert {"400", "413", "421"} <= errors, where
            if (method, path) == ("get", "/api/health"):
                assert "security" not in op
                assert "401" not in errors
            else:
                assert op["security"] == [{}, {"bearer": []}], where
                assert "401" in errors, where
            if method in ("post", "put", "patch"):
                assert "415" in errors, where
            for parameter in op.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                    assert parameter["schema"]["format"] == "uuid", where
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                name = body["schema"]["$ref"].rsplit("/", 1)[-1]
                assert doc["components"]["schemas"][name]["additionalProperties"] is False, where


@pytest.mark.asyncio
async def test_options_and_405_name_the_documented_methods(client: Client) -> None:
    """For every documented path, OPTIONS answers Allow with the documented methods (and
    OPTIONS), as does a 405 for a method the path does not have."""
    doc = await _document(client)
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item if m in _METHODS} | {"OPTIONS"}
        url = re.sub(r"\{[^}]+\}", "7d1c0b6e-0c57-4c4e-9d8c-000000000000", path)
        r = await client.options(url)
        assert r.status_code == 204, (path, r.text)
        assert set(r.headers["allow"].split(", ")) == documented, path
        missing = sorted({"GET", "PUT", "POST", "PATCH", "DELETE"} - documented)
        if missing:
            r = await client.request(missing[0], url)
            assert r.status_code == 405, (path, missing[0], r.text)
            assert set(r.headers["allow"].split(", ")) == documented, path
            assert r.json()["code"] == "method_not_allowed"
