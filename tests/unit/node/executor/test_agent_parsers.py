"""Output parsers of the coding-agent profiles, fed recorded streams in each CLI's real format
(``tests/fixtures/agents/streams``; the real CLIs are not reachable here)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.agents.cases import CASES, SUMMARY, AgentCase, stream_lines
from vk_node.executor.profiles import NormalizedEntry, OutputParser, get_profile
from vk_node.executor.profiles.base import ENTRY_TYPES

AGENTS = [case.profile for case in CASES]


def feed_all(parser: OutputParser, case: AgentCase, scenario: str) -> list[NormalizedEntry]:
    entries: list[NormalizedEntry] = []
    for line in stream_lines(case, scenario, "stderr"):
        entries += parser.feed("stderr", line)
    for line in stream_lines(case, scenario):
        entries += parser.feed("stdout", line)
    return entries


def meta(entry: NormalizedEntry) -> dict[str, Any]:
    return entry.metadata or {}


@pytest.mark.parametrize("case", CASES, ids=AGENTS)
def test_ok_stream(case: AgentCase) -> None:
    """A successful run's stream yields the session id, an assistant message, the tool use with
    its name and final status, and a success result; the summary is the last assistant message."""
    parser = get_profile(case.profile).new_parser()
    entries = feed_all(parser, case, "ok")

    assert parser.session_id == case.session_id
    assert parser.summary == SUMMARY
    assert parser.result == "success"
    assert {e.entry_type for e in entries} <= ENTRY_TYPES
    assert [e.content for e in entries if e.entry_type == "assistant_message"][-1] == SUMMARY
    tools = [e for e in entries if e.entry_type == "tool_use"]
    assert tools
    assert tools[0].metadata is not None
    assert tools[0].metadata["tool"] == case.tool
    assert tools[0].metadata["action_type"] == "command_run"
    assert "Hello" in tools[0].content
    assert tools[-1].metadata is not None
    assert tools[-1].metadata["status"] == "success"
    assert not [e for e in entries if e.entry_type == "error_message"]
    assert entries[-1].entry_type == "result_message"
    assert meta(entries[-1])["is_error"] is False
    assert len([e for e in entries if e.entry_type == "result_message"]) == 1


@pytest.mark.parametrize("case", CASES, ids=AGENTS)
def test_error_stream(case: AgentCase) -> None:
    """A rate-limited run's stream yields an ``error_message`` of class ``rate_limited`` and an
    error result, while keeping the session id."""
    parser = get_profile(case.profile).new_parser()
    entries = feed_all(parser, case, "error")

    assert parser.session_id == case.session_id
    assert parser.result == "error"
    errors = [e for e in entries if e.entry_type == "error_message"]
    assert errors
    assert {meta(e)["error_class"] for e in errors} == {"rate_limited"}
    results = [e for e in entries if e.entry_type == "result_message"]
    assert len(results) == 1
    assert meta(results[0])["is_error"] is True


@pytest.mark.parametrize("case", CASES, ids=AGENTS)
def test_session_id_known_after_first_event(case: AgentCase) -> None:
    """The session id is available as soon as the line carrying it is fed, before the run ends
    (the executor stores it immediately)."""
    parser = get_profile(case.profile).new_parser()
    assert parser.session_id is None
    parser.feed("stdout", stream_lines(case, "ok")[0])
    assert parser.session_id == case.session_id


GARBAGE = [
    "",
    "   ",
    "not json at all",
    "{",
    "{}",
    "[1, 2, 3]",
    '"a string"',
    "null",
    '{"type": 5}',
    '{"type": null, "session_id": 7}',
    '{"type": "assistant", "message": "flat"}',
    '{"type": "assistant", "message": {"content": [null, 1, {"type": "tool_use"}]}}',
    '{"type": "user", "message": {"content": [{"type": "tool_result", "content": 3}]}}',
    '{"type": "result", "subtype": null, "is_error": "yes"}',
    '{"type": "item.completed", "item": null}',
    '{"type": "item.started", "item": {"type": "command_execution", "command": 1}}',
    '{"type": "tool_use", "part": []}',
    '{"type": "tool_call", "subtype": "completed", "tool_call": "shell"}',
    '{"type": "message", "role": "assistant", "content": 12, "delta": true}',
    '{"type": "session.start", "data": []}',
    '{"type": "tool.execution_complete", "data": {"result": 5}}',
    '{"type": "step_finish", "part": {"cost": "free"}}',
    "\x00\x1b[31mred\x1b[0m \udcff",
    "x" * 100_000,
]


@pytest.mark.parametrize("name", AGENTS)
def test_garbage_never_raises(name: str) -> None:
    """Odd lines — non-JSON, non-object JSON, mistyped fields — never raise; each yields only
    well-formed entries, and a plain non-JSON stdout line becomes one ``system_message``."""
    parser = get_profile(name).new_parser()
    for stream in ("stdout", "stderr"):
        for line in GARBAGE:
            for entry in parser.feed(stream, line):
                assert entry.entry_type in ENTRY_TYPES
                assert isinstance(entry.content, str)
    banner = parser.feed("stdout", "Welcome to the agent v1.2.3")
    assert [e.entry_type for e in banner] == ["system_message"]
    assert banner[0].content == "Welcome to the agent v1.2.3"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    ["type", "subtype", "message", "content", "item", "part", "data", "error", "session_id"]
)
_EVENTS = st.dictionaries(_KEYS, _JSON, max_size=5)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(AGENTS),
    event=_EVENTS,
    kind=st.sampled_from(
        [
            "system",
            "assistant",
            "user",
            "result",
            "thinking",
            "tool_call",
            "init",
            "message",
            "tool_use",
            "tool_result",
            "error",
            "thread.started",
            "item.started",
            "item.completed",
            "turn.completed",
            "turn.failed",
            "text",
            "step_finish",
            "session.start",
            "session.error",
            "assistant.message",
            "tool.execution_start",
            "tool.execution_complete",
            "session.idle",
        ]
    ),
)
def test_random_events_never_raise(name: str, event: dict[str, Any], kind: str) -> None:
    """Events of every known type with arbitrary field values never make a parser raise."""
    event["type"] = kind
    line = msgspec.json.encode(event).decode()
    for entry in get_profile(name).new_parser().feed("stdout", line):
        assert entry.entry_type in ENTRY_TYPES
