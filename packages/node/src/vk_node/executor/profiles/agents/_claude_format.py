"""The Claude Code ``stream-json`` event format, also spoken by Amp, Qwen Code and (with extra
events) Cursor Agent.

Events: ``system`` (subtype ``init`` / ``session_start``: session id, model, cwd), ``assistant``
(``message.content`` blocks ``text`` / ``thinking`` / ``tool_use``; an ``error`` field marks an
API failure reported as a message), ``user`` (``tool_result`` blocks answering tool uses),
``result`` (``subtype``, ``is_error``, ``result``, ``duration_ms``, ``num_turns``,
``total_cost_usd``; error results may carry ``error`` / ``errors``). Every event repeats
``session_id``. Partial ``stream_event`` deltas are not requested and are ignored.
"""

from __future__ import annotations

from typing import Any

from vk_node.executor.profiles.agents._classify import classify_error
from vk_node.executor.profiles.agents._jsonl import as_dict, as_list, get_number, get_str
from vk_node.executor.profiles.agents._parser import (
    AgentParser,
    entry,
    error_entry,
    result_entry,
    started_entry,
    tool_entry,
)
from vk_node.executor.profiles.base import NormalizedEntry

__all__ = ["ClaudeStreamParser"]

# Claude Code's assistant-message ``error`` codes.
_MESSAGE_ERRORS = {
    "rate_limit": "rate_limited",
    "authentication_failed": "setup_required",
    "billing_error": "setup_required",
    "invalid_request": "api_error",
    "server_error": "api_error",
}


def _block_text(content: Any) -> str:
    """Text of a tool result's content: a string or a list of ``text`` blocks."""
    if isinstance(content, str):
        return content
    parts = [get_str(block, "text") for block in as_list(content)]
    return "\n".join(part for part in parts if part)


def _error_text(event: dict[str, Any]) -> str | None:
    error = event.get("error")
    if isinstance(error, str) and error:
        return error
    message = get_str(error, "message")
    if message:
        return message
    errors = [str(item) for item in as_list(event.get("errors")) if item]
    return "; ".join(errors) or None


class ClaudeStreamParser(AgentParser):
    """Parser of Claude-compatible ``stream-json`` output."""

    def __init__(self) -> None:
        super().__init__()
        self._failure_reported = False

    def on_event(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        self.note_session(event.get("session_id") or event.get("sessionId"))
        kind = event.get("type")
        if kind == "system":
            return self.on_system(event)
        if kind == "assistant":
            return self.on_assistant(event)
        if kind == "user":
            return self.on_user(event)
        if kind == "result":
            return self.on_result(event)
        return []

    def on_system(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        subtype = get_str(event, "subtype") or "system"
        if subtype in ("init", "session_start"):
            return [started_entry(subtype, get_str(event, "model"))]
        text = get_str(event, "message") or get_str(event, "content") or subtype
        return [entry("system_message", text, subtype=subtype)]

    def on_assistant(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        message = as_dict(event.get("message"))
        content = message.get("content")
        failure = get_str(event, "error")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        entries: list[NormalizedEntry] = []
        for block in as_list(content):
            kind = get_str(block, "type")
            if kind == "text" and (text := get_str(block, "text")):
                if failure:
                    error_class = _MESSAGE_ERRORS.get(failure) or classify_error(text)
                    entries.append(error_entry(text, error_class))
                    self._failure_reported = True
                else:
                    entries.append(self.assistant(text))
            elif kind == "thinking" and (
                text := get_str(block, "thinking") or get_str(block, "text")
            ):
                entries.append(entry("thinking", text))
            elif kind == "tool_use":
                name = get_str(block, "name") or "tool"
                tool_id = get_str(block, "id")
                self.tool_started(tool_id, name)
                entries.append(
                    tool_entry(name, "created", tool_id=tool_id, tool_input=block.get("input"))
                )
        return entries

    def on_user(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        entries: list[NormalizedEntry] = []
        for block in as_list(as_dict(event.get("message")).get("content")):
            if get_str(block, "type") != "tool_result":
                continue
            tool_id = get_str(block, "tool_use_id")
            failed = block.get("is_error") is True
            output = _block_text(block.get("content"))
            entries.append(
                tool_entry(
                    self.tool_name(tool_id),
                    "failed" if failed else "success",
                    tool_id=tool_id,
                    output=output,
                    error_class="tool_execution_error" if failed else None,
                )
            )
        return entries

    def on_result(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        subtype = get_str(event, "subtype") or "success"
        is_error = event.get("is_error") is True or subtype != "success"
        text = get_str(event, "result")
        entries: list[NormalizedEntry] = []
        if is_error and not self._failure_reported:
            entries.append(error_entry(_error_text(event) or text or subtype))
        elif text and self._summary is None:
            self._summary = text
        self.finish(is_error=is_error)
        entries.append(
            result_entry(
                is_error=is_error,
                content=text,
                subtype=subtype,
                duration_ms=get_number(event, "duration_ms"),
                num_turns=get_number(event, "num_turns"),
                total_cost_usd=get_number(event, "total_cost_usd"),
                usage=as_dict(event.get("usage")),
            )
        )
        return entries
