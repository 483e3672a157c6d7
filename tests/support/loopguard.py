"""pytest plugin: fail a test during which an event loop saw an unhandled exception.

Every loop pytest-asyncio creates comes from ``_guarded_loop``, whose exception handler records
what it sees (a task exception nobody retrieved, an error raised in a callback). An autouse
fixture checks the record after each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_loop_errors: list[dict[str, Any]] = []


def _record_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    _loop_errors.append(context)
    loop.default_exception_handler(context)


def _guarded_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_record_loop_error)
    return loop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"guarded": _guarded_loop}


@pytest.fixture(autouse=True)
def _fail_on_unhandled_loop_exceptions() -> Iterator[None]:
    _loop_errors.clear()
    yield
    if _loop_errors:
        seen = [f"{ctx.get('message')}: {ctx.get('exception')!r}" for ctx in _loop_errors]
        _loop_errors.clear()
        pytest.fail("the event loop saw unhandled exceptions:\n  " + "\n  ".join(seen))
