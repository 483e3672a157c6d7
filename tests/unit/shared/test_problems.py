"""The framework-free error kit: domain errors carry codes, not statuses; problem bodies are RFC
9457 with ``code``; the OpenAPI finishing writes exactly the facts it is given; OPTIONS answers
name every method of their route."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from vk_shared import errors, problems
from vk_shared.allow import OptionsAllow
from vk_shared.jsoncheck import request_problem
from vk_shared.openapi import Operation, finish


class Body(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    count: int = msgspec.field(default=0)


def test_domain_errors_carry_a_code_and_no_status() -> None:
    """Each kind has its own stable code (a subclass narrows it), an instance may narrow it
    further, and no domain error knows an HTTP status."""
    assert errors.VersionConflict("x").code == "version_conflict"
    assert isinstance(errors.VersionConflict("x"), errors.Conflict)
    assert errors.InvalidInput("deep", code="json_too_deep").code == "json_too_deep"
    assert errors.InvalidInput("plain").code == "invalid_input"
    assert not any(hasattr(cls, "status_code") for cls in (errors.NotFound, errors.DomainError))


def test_a_problem_body_is_rfc_9457_with_a_code() -> None:
    """The body names the code as a URN type, a title per code, the status and a clipped
    detail."""
    body = msgspec.json.decode(problems.encode(404, "not_found", "x" * 600))
    assert set(body) == {"type", "title", "status", "detail", "code"}
    assert body["type"] == "urn:vk-swarm:problem:not_found"
    assert (body["title"], body["status"], body["code"]) == ("Not found", 404, "not_found")
    assert len(body["detail"]) == problems.MAX_DETAIL


@pytest.mark.parametrize(
    ("path", "query", "body", "code"),
    [
        ("/a\x00", b"", b"", "invalid_input"),
        ("/a", b"x=%00", b"", "invalid_input"),
        ("/a", b"", b"[" * 65 + b"]" * 65, "json_too_deep"),
        ("/a", b"", b'{"a": "\\ud800"}', "invalid_json"),
        ("/a", b"", b'{"a": "\\u0000"}', "invalid_input"),
    ],
)
def test_the_body_guard_names_its_problem(path: str, query: bytes, body: bytes, code: str) -> None:
    """A request refused before decoding gets the code of what was wrong with it."""
    found = request_problem(path, query, body)
    assert found is not None
    assert found[0] == code


def _generated() -> dict[str, Any]:
    return {
        "paths": {
            "/things/{id}": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Body"}}
                        }
                    },
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "201": {"description": "made"},
                        "400": {
                            "description": "generic",
                            "content": {
                                "application/json": {
                                    "schema": {"properties": {"status_code": {}, "detail": {}}}
                                }
                            },
                        },
                    },
                }
            }
        },
        "components": {"schemas": {"Body": {"type": "object", "properties": {}}}},
    }


def test_finish_writes_errors_security_and_strict_bodies() -> None:
    """An operation lists exactly its errors as problem details (the framework's generic error
    response is dropped), needs the bearer scheme, has msgspec's body schema and exact
    parameter bounds; the generated document is left as it was."""
    generated = _generated()
    facts = {
        ("post", "/things/{id}"): Operation(
            frozenset({400, 404}),
            "required",
            body=Body,
            constraints={"limit": {"minimum": 1, "maximum": 2**63 - 1}},
        )
    }
    doc = finish(generated, facts, scheme_description="a token")
    op = doc["paths"]["/things/{id}"]["post"]
    assert sorted(op["responses"]) == ["201", "400", "404"]
    assert op["responses"]["404"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert op["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["components"]["schemas"]["Body"]["additionalProperties"] is False
    assert doc["components"]["schemas"]["Body"]["required"] == ["name"]
    assert op["parameters"][0]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 9223372036854775807,
    }
    assert set(doc["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
    }
    assert generated == _generated()


def test_an_optional_token_and_no_token_are_said_too() -> None:
    """``optional`` allows no credentials or the bearer scheme; ``none`` states no security."""
    for auth, security in (("optional", [{}, {"bearer": []}]), ("none", None)):
        facts = {("post", "/things/{id}"): Operation(frozenset(), auth)}  # type: ignore[arg-type]
        op = finish(_generated(), facts, scheme_description="t")["paths"]["/things/{id}"]["post"]
        assert op.get("security") == security
        assert sorted(op["responses"]) == ["201"]


def test_options_answers_name_every_method_of_the_route() -> None:
    """The Allow header of an OPTIONS answer is replaced by the route's methods; other requests
    and unknown routes pass untouched."""
    sent: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["path_template"] = "/things"
        await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", b"X")]})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    wrapped = OptionsAllow(app, {"/things": "GET, OPTIONS, POST"})

    async def call(method: str) -> list[tuple[bytes, bytes]]:
        sent.clear()
        await wrapped({"type": "http", "method": method}, None, send)
        return list(sent[0]["headers"])

    assert asyncio.run(call("OPTIONS")) == [(b"allow", b"GET, OPTIONS, POST")]
    assert asyncio.run(call("GET")) == [(b"allow", b"X")]
