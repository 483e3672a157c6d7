"""The node's and the hive's exception mappings for bodies that do not decode: a RecursionError
while Litestar decodes the request body is a 400, any other RecursionError stays a 500, and
msgspec's decode messages read clearly. The routes here sit behind no body guard, so the
mapping itself is what answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.testing import TestClient
from litestar.types import ExceptionHandlersMap

from vk_hive.errors import exception_handlers as hive_handlers
from vk_node.errors import exception_handlers as node_handlers
from vk_shared.jsoncheck import MAX_DEPTH

JSON = {"content-type": "application/json"}


@post("/echo")
async def echo(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return data


@post("/recurse")
async def recurse() -> None:
    raise RecursionError("maximum recursion depth exceeded")  # as a runaway recursion would


@pytest.fixture(params=[node_handlers, hive_handlers], ids=["node", "hive"])
def client(request: pytest.FixtureRequest) -> Any:
    handlers: Callable[[], ExceptionHandlersMap] = request.param
    app = Litestar([echo, recurse], exception_handlers=handlers(), logging_config=None, debug=False)
    with TestClient(app) as test_client:
        yield test_client


def test_a_body_too_deep_for_the_decoder_is_a_400(client: TestClient[Litestar]) -> None:
    """A body nested 100,000 deep makes msgspec raise RecursionError: a 400 naming the limit."""
    r = client.post("/echo", content=b"[" * 100_000 + b"]" * 100_000, headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json() == {
        "status_code": 400,
        "detail": f"JSON nested too deeply (limit {MAX_DEPTH} levels)",
    }


def test_any_other_recursion_error_is_still_a_500(client: TestClient[Litestar]) -> None:
    """A RecursionError of the handler's own making is a server error, not the caller's."""
    r = client.post("/recurse")
    assert r.status_code == 500
    assert r.json() == {"status_code": 500, "detail": "Internal server error"}


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
    assert r.json() == {"status_code": 400, "detail": detail}
