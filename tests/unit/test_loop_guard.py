"""The loop guard fails a test whose event loop saw an unhandled exception."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def test_unretrieved_task_exception_fails_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task that dies with nobody awaiting it makes its test fail instead of passing quietly."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    pytester.makepyfile(
        """
        import asyncio, gc
        import pytest

        @pytest.mark.asyncio
        async def test_leaks_a_failing_task():
            async def boom():
                raise RuntimeError("nobody awaited me")
            task = asyncio.ensure_future(boom())
            await asyncio.sleep(0.01)
            del task
            gc.collect()

        @pytest.mark.asyncio
        async def test_clean():
            await asyncio.sleep(0)
        """
    )
    result = pytester.runpytest_subprocess("-p", "support.loopguard", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*the event loop saw unhandled exceptions*"])
    result.stdout.fnmatch_lines(["*nobody awaited me*"])
