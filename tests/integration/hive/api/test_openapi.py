"""The hive's OpenAPI document says what the hive does: errors are problem details, routes that
need a token require the bearer scheme and list 401, the auth endpoints list 429, path ids are
UUIDs, bodies refuse unknown fields, and OPTIONS names exactly the documented methods."""

from __future__ import annotations

import re
from typing import Any

import pytest

from support.documents import METHODS, checked_operations

from .conftest import Hive

_PUBLIC = {
    ("get", "/v1/health"),
    ("post", "/v1/tokens/refresh"),
    ("post", "/v1/oauth/web/init"),
    ("get", "/v1/oauth/{provider}/start"),
    ("get", "/v1/oauth/{provider}/callback"),
    ("post", "/v1/oauth/web/redeem"),
    ("get", "/v1/invitations/{token}"),
}
_RATE_LIMITED = _PUBLIC - {("get", "/v1/health")} | {("post", "/v1/invitations/{token}/accept")}


async def _document(hive: Hive) -> dict[str, Any]:
    r = await hive.client.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    document: dict[str, Any] = r.json()
    return document


@pytest.mark.asyncio
async def test_every_operation_documents_its_problems_and_its_token(hive: Hive) -> None:
    """Every error response is the Problem schema as application/problem+json; every route but
    the public ones requires the bearer scheme and lists 401; the auth endpoints list 429; ids in
    paths are UUIDs; request bodies forbid unknown fields."""
    doc = await _document(hive)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for method, path, op, errors in checked_operations(doc):
        where = f"{method.upper()} {path}"
        if (method, path) in _PUBLIC:
            assert "security" not in op, where
        else:
            assert op["security"] == [{"bearer": []}], where
            assert "401" in errors, where
        assert ("429" in errors) == ((method, path) in _RATE_LIMITED), where


@pytest.mark.asyncio
async def test_options_names_the_documented_methods(hive: Hive) -> None:
    """For every documented path, OPTIONS answers Allow with the documented methods (and
    OPTIONS)."""
    doc = await _document(hive)
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item if m in METHODS} | {"OPTIONS"}
        url = re.sub(r"\{[^}]+\}", "7d1c0b6e-0c57-4c4e-9d8c-000000000000", path)
        r = await hive.client.options(url)
        assert r.status_code == 204, (path, r.text)
        assert set(r.headers["allow"].split(", ")) == documented, path
