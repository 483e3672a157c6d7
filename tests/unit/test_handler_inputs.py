"""Both applications' handlers declare their input so that it is validated as declared.

- The bounds of every path, query, header and cookie parameter are ones Litestar enforces:
  declared on the parameter (``QueryParameter(ge=..., le=...)``), never as a ``msgspec.Meta``
  inside its type, which Litestar leaves unchecked for parameters (a page limit of
  ``Annotated[int, msgspec.Meta(le=500)]`` would accept 10**30).
- Every JSON body type has a strict decoder (``vk_shared.jsoncheck.strict_body_problem``), so no
  body falls back to the framework's lenient conversion.

The requests themselves are tested in tests/integration/{hive,node}/api/test_strict_input.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import pytest
from litestar import Litestar, get
from litestar.params import FromQuery

from vk_hive.app import create_app as create_hive
from vk_hive.settings import load_settings as hive_settings
from vk_node.app import create_app as create_node
from vk_node.settings import load_settings as node_settings
from vk_shared.jsoncheck import strict_body_problem

Bounded = Annotated[int, msgspec.Meta(ge=1)]


def _metas(field: Any) -> Iterator[msgspec.Meta]:
    """The ``msgspec.Meta`` annotations of a parameter, inside unions and containers too."""
    pending = [field]
    while pending:
        current = pending.pop()
        yield from (m for m in current.metadata if isinstance(m, msgspec.Meta))
        pending.extend(current.inner_types)


def _unchecked(app: Litestar) -> list[str]:
    found: list[str] = []
    for path, handler in _handlers(app):
        for name, field in handler.parsed_fn_signature.parameters.items():
            if name != "data" and any(_metas(field)):
                found.append(f"{path} {handler.handler_name}({name})")
    return found


def _handlers(app: Litestar) -> Iterator[tuple[str, Any]]:
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            yield route.path, handler


def _hive() -> Litestar:
    return create_hive(hive_settings(env={}, overrides={"jwt_secret": "k" * 40}))


def _node(tmp_path: Any) -> Litestar:
    return create_node(node_settings(env={"VK_NODE_DATA_DIR": str(tmp_path)}).settings)


@pytest.mark.parametrize("service", ["hive", "node"])
def test_no_parameter_carries_bounds_litestar_ignores(service: str, tmp_path: Any) -> None:
    """No handler parameter but the body has a ``msgspec.Meta`` in its type."""
    app = _hive() if service == "hive" else _node(tmp_path)
    assert _unchecked(app) == []


def test_the_check_sees_a_meta_inside_an_optional_query_type() -> None:
    """The check itself finds bounds hidden in ``FromQuery[Annotated[int, Meta] | None]``."""

    @get("/probe", sync_to_thread=False)
    def probe(version: FromQuery[Bounded | None] = None, plain: FromQuery[Bounded] = 1) -> None:
        return None

    assert _unchecked(Litestar([probe])) == ["/probe probe(version)", "/probe probe(plain)"]


@pytest.mark.parametrize("service", ["hive", "node"])
def test_every_json_body_type_decodes_strictly(service: str, tmp_path: Any) -> None:
    """Every handler taking a JSON body gets a strict decoder of its type, which refuses a JSON
    array where the body is an object; the others are left alone."""
    app = _hive() if service == "hive" else _node(tmp_path)
    bodies = 0
    for path, handler in _handlers(app):
        problem = strict_body_problem(handler, b"[[]]")
        if "data" in handler.parsed_fn_signature.parameters:
            bodies += 1
            assert problem is not None, path
            assert problem[0] == "validation_failed", (path, problem)
        else:
            assert problem is None, path
    assert bodies > 10
