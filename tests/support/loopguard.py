"""pytest plugin: fail a test during which an event loop saw an unhandled exception.

At configure time the plugin installs an event loop policy whose loops record what their
exception handler sees (a task exception nobody retrieved, an error raised in a callback). Every
loop made during the run comes from it: pytest-asyncio's runners and ``asyncio.run`` alike, and
loop scopes (session fixtures) keep working. An autouse fixture checks the record after each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

_loop_errors: list[dict[str, Any]] = []


def _record_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    _loop_errors.append(context)
    loop.default_exception_handler(context)


class _GuardedPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.set_exception_handler(_record_loop_error)
        return loop


def pytest_configure(config: pytest.Config) -> None:
    asyncio.set_event_loop_policy(_GuardedPolicy())


@pytest.fixture(autouse=True)
def _fail_on_unhandled_loop_exceptions() -> Iterator[None]:
    _loop_errors.clear()
    yield
    if _loop_errors:
        seen = [f"{ctx.get('message')}: {ctx.get('exception')!r}" for ctx in _loop_errors]
        _loop_errors.clear()
        pytest.fail("the event loop saw unhandled exceptions:\n  " + "\n  ".join(seen))
