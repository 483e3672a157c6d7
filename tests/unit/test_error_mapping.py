"""The node's and the hive's exception mappings: domain errors answer with their class's status
and their own code; for bodies that do not decode, a RecursionError while Litestar decodes the
request body is a 400, any other RecursionError stays a 500, and msgspec's decode messages read
clearly. Every answer is RFC 9457 problem details. The routes here sit behind no body guard, so
the mapping itself is what answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar, post
from litestar.params import FromPath, JSONBody
from litestar.plugins.problem_details import ProblemDetailsPlugin
from litestar.testing import TestClient

from vk_hive.api.problems import plugin as hive_plugin
from vk_hive.auth.tokens import TokenError
from vk_node.api.problems import plugin as node_plugin
from vk_shared import errors
from vk_shared.jsoncheck import MAX_DEPTH

JSON = {"content-type": "application/json"}


@post("/echo")
async def echo(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return data


@post("/recurse")
async def recurse() -> None:
    raise RecursionError("maximum recursion depth exceeded")  # as a runaway recursion would


RAISED: dict[str, Exception] = {
    "invalid": errors.InvalidInput("bad"),
    "missing": errors.NotFound("no such task"),
    "stale": errors.VersionConflict("version 3 is not 4"),
    "transition": errors.InvalidTransition("done -> todo"),
    "refused": errors.Unprocessable("not a repository"),
    "narrowed": errors.InvalidInput("too deep", code="json_too_deep"),
}


@post("/raise/{name:str}")
async def raise_domain_error(name: FromPath[str]) -> None:
    raise RAISED[name]


@post("/token")
async def expired_token() -> None:
    raise TokenError("token_expired", "the access token expired")


def _problem(status: int, code: str, detail: str) -> dict[str, Any]:
    return {
        "type": f"urn:vk-swarm:problem:{code}",
        "title": _TITLES.get(code, code),
        "status": status,
        "detail": detail,
        "code": code,
    }


_TITLES = {
    "invalid_input": "Invalid input",
    "invalid_json": "Invalid JSON body",
    "json_too_deep": "JSON nested too deeply",
    "internal_error": "Internal server error",
    "not_found": "Not found",
    "version_conflict": "Version conflict",
    "invalid_transition": "Invalid transition",
    "unprocessable": "Unprocessable",
    "token_expired": "Token expired",
}


@pytest.fixture(params=[node_plugin, hive_plugin], ids=["node", "hive"])
def client(request: pytest.FixtureRequest) -> Any:
    plugin: Callable[[], ProblemDetailsPlugin] = request.param
    app = Litestar(
        [echo, recurse, raise_domain_error, expired_token],
        plugins=[plugin()],
        logging_config=None,
        debug=False,
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("invalid", 400, "invalid_input"),
        ("missing", 404, "not_found"),
        ("stale", 409, "version_conflict"),
        ("transition", 409, "invalid_transition"),
        ("refused", 422, "unprocessable"),
        ("narrowed", 400, "json_too_deep"),
    ],
)
def test_domain_errors_answer_with_their_status_and_code(
    client: TestClient[Litestar], name: str, status: int, code: str
) -> None:
    """A domain error (no HTTP knowledge of its own) answers with the status of its class (a
    subclass like its base) and its own stable code, as application/problem+json."""
    r = client.post(f"/raise/{name}")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == _problem(status, code, str(RAISED[name]))


def test_a_401_names_its_reason_and_the_scheme(client: TestClient[Litestar]) -> None:
    """An unusable token is a 401 whose code says why (token_expired, not just unauthorized)."""
    r = client.post("/token")
    assert r.status_code == 401
    assert r.json()["code"] == "token_expired"


def test_a_body_too_deep_for_the_decoder_is_a_400(client: TestClient[Litestar]) -> None:
    """A body nested 100,000 deep makes msgspec raise RecursionError: a 400 naming the limit."""
    r = client.post("/echo", content=b"[" * 100_000 + b"]" * 100_000, headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json() == _problem(
        400, "json_too_deep", f"JSON nested too deeply (limit {MAX_DEPTH} levels)"
    )


def test_any_other_recursion_error_is_still_a_500(client: TestClient[Litestar]) -> None:
    """A RecursionError of the handler's own making is a server error, not the caller's."""
    r = client.post("/recurse")
    assert r.status_code == 500
    assert r.json() == _problem(500, "internal_error", "Internal server error")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"a": ', "Invalid JSON body: the JSON ends before it is complete"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "Invalid JSON body: Integer value out of range"),
        (b'{"a": NaN}', "Invalid JSON body: invalid character (byte 6)"),
        (b'{"a": "\xff"}', "Invalid JSON body: Invalid UTF-8 encoded string"),
    ],
)
def test_decode_errors_read_clearly(client: TestClient[Litestar], body: bytes, detail: str) -> None:
    """msgspec's reasons come through, prefixed, without their uninformative parts."""
    r = client.post("/echo", content=body, headers=JSON)
    assert r.status_code == 400
    assert r.json() == _problem(400, "invalid_json", detail)
