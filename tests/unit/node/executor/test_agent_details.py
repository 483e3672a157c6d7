"""Details of agent output normalization: error classes, tool statuses, stderr handling, and the
per-agent shapes (tool results, streamed chunks, failed commands) the recorded streams do not
cover."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vk_node.executor.profiles import NormalizedEntry, get_profile
from vk_node.executor.profiles.agents._classify import action_type, classify_error, tool_status


def run(name: str, *events: dict[str, Any] | str) -> tuple[Any, list[NormalizedEntry]]:
    parser = get_profile(name).new_parser()
    entries: list[NormalizedEntry] = []
    for event in events:
        line = event if isinstance(event, str) else json.dumps(event)
        entries += parser.feed("stdout", line)
    return parser, entries


@pytest.mark.parametrize(
    ("text", "error_class"),
    [
        ("API Error: 429 rate_limit_error", "rate_limited"),
        ("You have exhausted your daily quota", "rate_limited"),
        ("Invalid API key · Please run /login", "setup_required"),
        ("Error: 401 Unauthorized", "setup_required"),
        ("bash: claude: command not found", "setup_required"),
        ("request to https://api.example.com failed: getaddrinfo ENOTFOUND", "network_error"),
        ("stream disconnected before completion", "network_error"),
        ("EACCES: permission denied, open '/etc/shadow'", "permission_denied"),
        ("API Error: 500 Internal Server Error", "api_error"),
        ("something odd happened", "other"),
    ],
)
def test_classify_error(text: str, error_class: str) -> None:
    """Error messages are classified by pattern into the spec's error classes, rate limits and
    auth failures winning over the generic API error."""
    assert classify_error(text) == error_class


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("completed", "success"),
        ("in_progress", "created"),
        ("failed", "failed"),
        ("error", "failed"),
        ("declined", "denied"),
        ("timeout", "timed_out"),
        ("pending_approval", "pending_approval"),
        (None, "created"),
        ("weird", "created"),
    ],
)
def test_tool_status(raw: str | None, status: str) -> None:
    """Agents' own tool state words map onto the normalized tool statuses."""
    assert tool_status(raw) == status


def test_action_type() -> None:
    """Tool names map to action types (command, read, edit, search); unknown ones to ``tool``."""
    assert [action_type(n) for n in ("Bash", "Read", "apply_patch", "Grep", "frobnicate")] == [
        "command_run",
        "file_read",
        "file_edit",
        "search",
        "tool",
    ]


@pytest.mark.parametrize("name", ["CLAUDE_CODE", "CODEX", "GEMINI", "COPILOT"])
def test_stderr_lines(name: str) -> None:
    """A stderr line matching a known error pattern becomes a classified ``error_message``; other
    stderr lines become ``system_message`` entries marked as stderr."""
    parser = get_profile(name).new_parser()
    [error] = parser.feed("stderr", "Error: 401 Unauthorized - please log in again")
    assert error.entry_type == "error_message"
    assert error.metadata == {"error_class": "setup_required"}
    [note] = parser.feed("stderr", "npm notice New minor version available")
    assert note.entry_type == "system_message"
    assert note.metadata == {"stream": "stderr"}
    assert parser.result is None


def test_claude_tool_result_failed() -> None:
    """A Claude ``tool_result`` with ``is_error`` becomes a failed ``tool_use`` entry that keeps the
    tool's name and id and is classed as a tool execution error."""
    _, entries = run(
        "CLAUDE_CODE",
        {
            "type": "assistant",
            "message": {
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/x"}}
                ]
            },
        },
        {
            "type": "user",
            "message": {
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "File does not exist."}],
                    }
                ]
            },
        },
    )
    assert [(e.metadata or {}).get("status") for e in entries] == ["created", "failed"]
    assert entries[1].metadata == {
        "tool": "Read",
        "action_type": "file_read",
        "status": "failed",
        "tool_id": "t1",
        "output": "File does not exist.",
        "error_class": "tool_execution_error",
    }
    assert entries[0].content == "Read: /x"


def test_claude_result_error_and_metadata() -> None:
    """A Claude error result yields a classified ``error_message`` and a ``result_message`` with
    subtype, duration, turns and cost."""
    parser, entries = run(
        "CLAUDE_CODE",
        {
            "type": "result",
            "subtype": "error_max_turns",
            "is_error": True,
            "duration_ms": 10,
            "num_turns": 5,
            "total_cost_usd": 0.5,
            "session_id": "s",
        },
    )
    assert parser.result == "error"
    assert [e.entry_type for e in entries] == ["error_message", "result_message"]
    assert entries[1].metadata == {
        "subtype": "error_max_turns",
        "is_error": True,
        "duration_ms": 10,
        "num_turns": 5,
        "total_cost_usd": 0.5,
    }


def test_claude_prompt_echo_is_not_repeated() -> None:
    """User text blocks (the prompt echoed back) produce no entries."""
    _, entries = run(
        "AMP", {"type": "user", "message": {"content": [{"type": "text", "text": "hi"}]}}
    )
    assert entries == []


def test_gemini_chunks_join_into_one_message() -> None:
    """Gemini's streamed assistant chunks become one ``assistant_message`` when the next event
    arrives, and the summary grows with the chunks."""
    parser, entries = run(
        "GEMINI",
        {"type": "message", "role": "assistant", "content": "Hel", "delta": True},
        {"type": "message", "role": "assistant", "content": "lo.", "delta": True},
    )
    assert entries == []
    assert parser.summary == "Hello."
    entries = parser.feed(
        "stdout", json.dumps({"type": "error", "severity": "error", "message": "Loop detected"})
    )
    assert [(e.entry_type, e.content) for e in entries] == [
        ("assistant_message", "Hello."),
        ("error_message", "Loop detected"),
    ]


def test_codex_nonzero_exit_is_a_failed_tool() -> None:
    """A Codex command that completed with a non-zero exit code is a failed tool use, and a
    declined command is denied."""
    item = {
        "id": "i",
        "type": "command_execution",
        "command": "make",
        "exit_code": 2,
        "aggregated_output": "boom",
        "status": "completed",
    }
    declined = {**item, "id": "j", "exit_code": None, "status": "declined"}
    _, entries = run(
        "CODEX",
        {"type": "item.completed", "item": item},
        {"type": "item.completed", "item": declined},
    )
    assert [(e.metadata or {})["status"] for e in entries] == ["failed", "denied"]
    assert (entries[0].metadata or {})["output"] == "boom"


def test_cursor_plain_login_error() -> None:
    """Cursor prints a missing login as plain stdout; it becomes a ``setup_required`` error."""
    _, entries = run("CURSOR_AGENT", "Authentication required. Please run 'cursor-agent login'.")
    assert [(e.entry_type, (e.metadata or {}).get("error_class")) for e in entries] == [
        ("error_message", "setup_required")
    ]


def test_copilot_result_after_idle_is_not_repeated() -> None:
    """Copilot's ``session.idle`` ends the run; a later closing ``result`` adds no second result
    message, but a non-zero exit code there still turns the result into an error."""
    parser, entries = run(
        "COPILOT",
        {"type": "session.idle", "data": {}},
        {"type": "result", "sessionId": "s9", "exitCode": 0},
    )
    assert [e.entry_type for e in entries] == ["result_message"]
    assert parser.session_id == "s9"
    assert parser.result == "success"
    parser.feed("stdout", json.dumps({"type": "result", "exitCode": 1}))
    assert parser.result == "error"


def test_opencode_error_wins_over_final_step() -> None:
    """After an opencode ``error`` event, a closing ``step_finish`` does not turn the run into a
    success."""
    parser, entries = run(
        "OPENCODE",
        {
            "type": "error",
            "sessionID": "ses_1",
            "error": {"name": "ProviderAuthError", "data": {"message": "API key missing"}},
        },
        {"type": "step_finish", "sessionID": "ses_1", "part": {"reason": "stop", "cost": 0}},
    )
    assert parser.result == "error"
    assert [e.entry_type for e in entries] == ["error_message", "result_message"]
    assert (entries[0].metadata or {})["error_class"] == "setup_required"
