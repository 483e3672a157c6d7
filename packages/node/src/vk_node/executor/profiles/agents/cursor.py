"""``CURSOR_AGENT``: Cursor's ``cursor-agent`` CLI in print mode.

Command: ``cursor-agent -p --output-format stream-json --force`` with the prompt on stdin
(``--force`` allows every command unless explicitly denied). Follow-up: adds
``--resume <session_id>``.

Variants: passed verbatim as ``--model <variant>`` (e.g. ``sonnet-4.5``, ``gpt-5``); ``DEFAULT``
or none adds nothing.

Output: Claude-like ``stream-json`` (:mod:`._claude_format`: ``system``/``init`` with
``session_id`` and ``model``, ``user``, ``assistant``, ``result``) plus ``thinking`` (``subtype``
``delta``/``completed``, ``text``) and ``tool_call`` (``subtype`` ``started``/``completed``,
``call_id``, ``tool_call`` = one key such as ``shellToolCall`` / ``readToolCall`` /
``editToolCall`` holding ``args`` and, when completed, ``result`` with ``success`` or
``failure``). Errors such as a missing login arrive as plain (non-JSON) stdout lines.
"""

from __future__ import annotations

from typing import Any

from vk_node.executor.profiles.agents._classify import looks_like_error
from vk_node.executor.profiles.agents._claude_format import ClaudeStreamParser
from vk_node.executor.profiles.agents._jsonl import as_dict, get_str
from vk_node.executor.profiles.agents._parser import entry, error_entry, tool_entry
from vk_node.executor.profiles.agents._profile import AgentProfile, model_of
from vk_node.executor.profiles.base import CommandSpec, NormalizedEntry

__all__ = ["CursorAgentParser", "CursorAgentProfile"]


def _tool_call(raw: Any) -> tuple[str, dict[str, Any]]:
    """``{"shellToolCall": {...}}`` → ``("shell", {...})``."""
    for key, value in as_dict(raw).items():
        name = key.removesuffix("ToolCall") or key
        return name, as_dict(value)
    return "tool", {}


class CursorAgentParser(ClaudeStreamParser):
    """Parser of ``cursor-agent`` ``stream-json`` output."""

    def __init__(self) -> None:
        super().__init__()
        self._thinking: list[str] = []

    def on_event(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        kind = event.get("type")
        if kind == "thinking":
            self.note_session(event.get("session_id"))
            if text := get_str(event, "text"):
                self._thinking.append(text)
            if get_str(event, "subtype") == "delta":
                return []
            return self._flush_thinking()
        entries = self._flush_thinking()
        if kind == "tool_call":
            self.note_session(event.get("session_id"))
            return entries + self._tool(event)
        return entries + super().on_event(event)

    def on_plain(self, text: str) -> list[NormalizedEntry]:
        if looks_like_error(text):
            return [error_entry(text)]
        return super().on_plain(text)

    def _flush_thinking(self) -> list[NormalizedEntry]:
        text = "".join(self._thinking)
        self._thinking = []
        return [entry("thinking", text)] if text.strip() else []

    def _tool(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        name, call = _tool_call(event.get("tool_call"))
        call_id = get_str(event, "call_id")
        if get_str(event, "subtype") != "completed":
            return [tool_entry(name, "created", tool_id=call_id, tool_input=call.get("args"))]
        result = as_dict(call.get("result"))
        failed = "failure" in result or "error" in result
        outcome = as_dict(result.get("failure") or result.get("error") or result.get("success"))
        output = (
            get_str(outcome, "stdout") or get_str(outcome, "content") or get_str(outcome, "message")
        )
        return [
            tool_entry(
                name,
                "failed" if failed else "success",
                tool_id=call_id,
                tool_input=call.get("args"),
                output=output or get_str(outcome, "stderr"),
                error_class="tool_execution_error" if failed else None,
            )
        ]


class CursorAgentProfile(AgentProfile):
    name = "CURSOR_AGENT"
    executable: str | None = "cursor-agent"
    parser_class = CursorAgentParser

    def command(self, prompt: str, session_id: str | None, variant: str | None) -> CommandSpec:
        argv = ["cursor-agent", "-p", "--output-format", "stream-json", "--force"]
        if model := model_of(variant):
            argv += ["--model", model]
        if session_id:
            argv += ["--resume", session_id]
        return CommandSpec(argv=argv, stdin=prompt)
