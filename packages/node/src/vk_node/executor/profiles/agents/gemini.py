"""``GEMINI``: Google's ``gemini`` CLI in headless mode.

Command: ``gemini --output-format stream-json --yolo --prompt=<prompt>`` (``--yolo`` approves
every tool call; the ``--prompt=`` form keeps a prompt starting with ``-`` a value).
Follow-up: adds ``--resume <session_id>``.

Variants: passed verbatim as ``--model <variant>`` (e.g. ``gemini-2.5-flash``); ``DEFAULT`` or
none adds nothing.

Output (JSONL): ``init`` (``session_id``, ``model``), ``message`` (``role``, ``content``,
``delta: true`` for streamed chunks of one assistant reply), ``tool_use`` (``tool_name``,
``tool_id``, ``parameters``), ``tool_result`` (``tool_id``, ``status`` ``success``/``error``,
``output``, ``error {type, message}``), ``error`` (``severity`` ``warning``/``error``,
``message``), ``result`` (``status``, ``error {type, message}``, ``stats`` with ``duration_ms``
and token counts). Assistant chunks are joined into one entry, emitted when the next
non-assistant event arrives; the prompt echo (``role: user``) is not repeated.
"""

from __future__ import annotations

from typing import Any

from vk_node.executor.profiles.agents._jsonl import as_dict, get_number, get_str
from vk_node.executor.profiles.agents._parser import (
    AgentParser,
    entry,
    error_entry,
    result_entry,
    started_entry,
    tool_entry,
)
from vk_node.executor.profiles.agents._profile import PromptOptionProfile
from vk_node.executor.profiles.base import NormalizedEntry

__all__ = ["GeminiParser", "GeminiProfile"]


def _error_text(error: Any) -> str | None:
    kind, message = get_str(error, "type"), get_str(error, "message")
    if kind and message:
        return f"{kind}: {message}"
    return message or kind


class GeminiParser(AgentParser):
    """Parser of Gemini CLI ``stream-json`` events (also Qwen Code's ancestor format)."""

    def __init__(self) -> None:
        super().__init__()
        self._reply: list[str] = []

    def on_event(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        self.note_session(event.get("session_id"))
        kind = event.get("type")
        if kind == "message" and event.get("role") == "assistant":
            text = event.get("content")
            if isinstance(text, str) and text:
                self._reply.append(text)
                self._summary = "".join(self._reply)
            if event.get("delta") is True:
                return []
        return self._flush() + self._handle(kind, event)

    def _flush(self) -> list[NormalizedEntry]:
        if not self._reply:
            return []
        text = "".join(self._reply)
        self._reply = []
        return [self.assistant(text)] if text.strip() else []

    def _handle(self, kind: Any, event: dict[str, Any]) -> list[NormalizedEntry]:
        if kind == "init":
            return [started_entry("init", get_str(event, "model"))]
        if kind == "tool_use":
            name = get_str(event, "tool_name") or "tool"
            tool_id = get_str(event, "tool_id")
            self.tool_started(tool_id, name)
            return [
                tool_entry(name, "created", tool_id=tool_id, tool_input=event.get("parameters"))
            ]
        if kind == "tool_result":
            tool_id = get_str(event, "tool_id")
            failed = get_str(event, "status") == "error"
            output = get_str(event, "output") or _error_text(event.get("error"))
            return [
                tool_entry(
                    self.tool_name(tool_id),
                    "failed" if failed else "success",
                    tool_id=tool_id,
                    output=output,
                    error_class="tool_execution_error" if failed else None,
                )
            ]
        if kind == "error":
            text = get_str(event, "message") or "error"
            if get_str(event, "severity") == "warning":
                return [entry("system_message", text, subtype="warning")]
            return [error_entry(text)]
        if kind == "result":
            return self._result_event(event)
        return []

    def _result_event(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        is_error = get_str(event, "status") != "success"
        stats = as_dict(event.get("stats"))
        entries: list[NormalizedEntry] = []
        if is_error:
            entries.append(error_entry(_error_text(event.get("error")) or "Gemini run failed"))
        self.finish(is_error=is_error)
        entries.append(
            result_entry(
                is_error=is_error,
                content=None if is_error else self._summary,
                duration_ms=get_number(stats, "duration_ms"),
                usage={k: v for k, v in stats.items() if k != "duration_ms"},
            )
        )
        return entries


class GeminiProfile(PromptOptionProfile):
    name = "GEMINI"
    executable: str | None = "gemini"
    parser_class = GeminiParser

    base_argv = ("gemini", "--output-format", "stream-json", "--yolo")
