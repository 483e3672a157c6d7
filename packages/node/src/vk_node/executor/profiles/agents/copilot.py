"""``COPILOT``: GitHub's ``copilot`` CLI in programmatic (prompt) mode.

Command: ``copilot --output-format json --allow-all-tools --no-ask-user --prompt=<prompt>``
(``--allow-all-tools`` runs every tool without asking; ``--no-ask-user`` keeps the agent from
pausing for input; the ``--prompt=`` form keeps a prompt starting with ``-`` a value).
Follow-up: adds ``--resume <session_id>``.

Variants: passed verbatim as ``--model <variant>`` (e.g. ``gpt-5``, ``claude-sonnet-4.5``);
``DEFAULT`` or none adds nothing.

Output (JSONL of Copilot session events, each ``{type, id, timestamp, data}``):
``session.start`` (``data.sessionId``), ``assistant.message`` (``data.content``,
``data.toolRequests``), ``assistant.reasoning`` (``data.content``), ``tool.execution_start``
(``data.toolCallId``, ``data.toolName``, ``data.arguments``), ``tool.execution_complete``
(``data.toolCallId``, ``data.success``, ``data.result.content``, ``data.error.message``),
``session.error`` (``data.errorType``, ``data.message``), ``session.info`` / ``session.warning``
(``data.message``), ``session.idle`` (the turn is over) and, from builds that print one, a closing
``result`` (``sessionId``, ``exitCode``). Streaming ``*_delta`` events are skipped: the complete
``assistant.message`` follows them.
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

__all__ = ["CopilotParser", "CopilotProfile"]


class CopilotParser(AgentParser):
    """Parser of ``copilot --output-format json`` session events."""

    def on_event(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        data = as_dict(event.get("data"))
        self.note_session(data.get("sessionId") or event.get("sessionId"))
        kind = event.get("type")
        if kind == "session.start":
            model = get_str(data, "selectedModel") or get_str(data, "model")
            return [started_entry("session.start", model)]
        if kind == "assistant.message" and (text := get_str(data, "content")):
            return [self.assistant(text)]
        if kind == "assistant.reasoning" and (text := get_str(data, "content")):
            return [entry("thinking", text)]
        if kind in ("tool.execution_start", "tool.execution_complete"):
            return [self._tool(data, done=kind == "tool.execution_complete")]
        if kind in ("session.info", "session.warning") and (text := get_str(data, "message")):
            return [entry("system_message", text, subtype=kind)]
        if kind == "session.error":
            text = get_str(data, "message") or get_str(data, "errorType") or "session error"
            return self._end(is_error=True, error=text)
        if kind == "session.idle":
            return self._end(is_error=False)
        if kind == "result":
            exit_code = get_number(event, "exitCode")
            if exit_code is None:
                exit_code = get_number(data, "exitCode")
            return self._end(is_error=bool(exit_code), error=f"copilot exited with {exit_code}")
        return []

    def _tool(self, data: dict[str, Any], *, done: bool) -> NormalizedEntry:
        call_id = get_str(data, "toolCallId")
        if not done:
            name = get_str(data, "toolName") or "tool"
            self.tool_started(call_id, name)
            return tool_entry(name, "created", tool_id=call_id, tool_input=data.get("arguments"))
        failed = data.get("success") is False
        output = get_str(data, "result", "content") or get_str(data, "error", "message")
        return tool_entry(
            self.tool_name(call_id, get_str(data, "toolName") or "tool"),
            "failed" if failed else "success",
            tool_id=call_id,
            output=output,
            error_class="tool_execution_error" if failed else None,
        )

    def _end(self, *, is_error: bool, error: str | None = None) -> list[NormalizedEntry]:
        if self._result is not None:  # idle and result may both arrive: one result_message
            if not is_error or self._result == "error":
                return []
            self.finish(is_error=True)
            return [error_entry(error or "error")]
        self.finish(is_error=is_error)
        if is_error:
            return [error_entry(error or "error"), result_entry(is_error=True, content=error)]
        return [result_entry(is_error=False, content=self._summary)]


class CopilotProfile(PromptOptionProfile):
    name = "COPILOT"
    executable: str | None = "copilot"
    parser_class = CopilotParser

    base_argv = ("copilot", "--output-format", "json", "--allow-all-tools", "--no-ask-user")
