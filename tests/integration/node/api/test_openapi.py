"""The node's OpenAPI document says what the node does: every operation's errors are problem
details, the bearer token is optional (VK_NODE_API_TOKEN), the guard's refusals are listed, path
ids are UUIDs, bodies refuse unknown fields, and OPTIONS names exactly the documented methods."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from support.documents import METHODS, checked_operations

Client = AsyncTestClient[Litestar]


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
    for method, path, op, errors in checked_operations(doc):
        where = f"{method.upper()} {path}"
        assert "421" in errors, where
        if (method, path) == ("get", "/api/health"):
            assert "security" not in op
            assert "401" not in errors
        else:
            assert op["security"] == [{}, {"bearer": []}], where
            assert "401" in errors, where
        if method in ("post", "put", "patch"):
            assert "415" in errors, where


@pytest.mark.asyncio
async def test_options_and_405_name_the_documented_methods(client: Client) -> None:
    """For every documented path, OPTIONS answers Allow with the documented methods (and
    OPTIONS), as does a 405 for a method the path does not have."""
    doc = await _document(client)
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item if m in METHODS} | {"OPTIONS"}
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
