"""Test infrastructure shared by every test.

- Markers follow folders: tests/unit -> ``unit``, tests/integration -> ``integration``,
  tests/e2e -> ``e2e``.
- Every event loop created for a test records what its exception handler sees (a task exception
  nobody retrieved, an error in a callback); a test during which that happened fails.
- PostgreSQL comes from the chain of DESIGN.md §9 (``support.postgres``); each run creates its own
  databases and drops them at the end. The source used is printed in the session header/summary.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from support.postgres import (  # noqa: E402
    DatabaseFactory,
    NoPostgresError,
    PostgresServer,
    find_server,
    release_server,
)

# A suite started by a non-interactive shell in the background (`make test &`, nohup) inherits
# SIGINT ignored, and so would every process it starts: the tests that stop a CLI or the demo
# with Ctrl-C would then wait forever. A Python handler here is reset to the default in children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

pytest_plugins = ["support.loopguard"]

_FOLDER_MARKERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = ROOT / "tests"
    for item in items:
        path = Path(str(item.path)).resolve()
        if not path.is_relative_to(tests_dir):
            continue
        folder = path.relative_to(tests_dir).parts[0]
        if folder in _FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, folder))


# --- PostgreSQL ----------------------------------------------------------------------------------

_pg_source: list[str] = []


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this run (VK_TEST_DATABASE_URL → :5432 → Docker → initdb)."""
    try:
        server = find_server()
    except NoPostgresError as exc:
        pytest.fail(f"PostgreSQL is required for this test: {exc}", pytrace=False)
    _pg_source.append(server.source)
    print(f"\n[postgres] using {server.source}", file=sys.stderr)
    try:
        yield server
    finally:
        release_server(server)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pg_databases(pg_server: PostgresServer) -> AsyncIterator[DatabaseFactory]:
    """Creates uniquely named databases for this run; all are dropped when the run ends."""
    factory = DatabaseFactory(pg_server)
    try:
        yield factory
    finally:
        await factory.drop_all()


@pytest_asyncio.fixture
async def pg_database(pg_server: PostgresServer) -> AsyncIterator[str]:
    """A fresh, empty database for one test (URL), dropped after the test."""
    factory = DatabaseFactory(pg_server)
    url = await factory.create("t")
    try:
        yield url
    finally:
        await factory.drop_all()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _pg_source:
        terminalreporter.write_line(f"PostgreSQL source: {_pg_source[0]}")
