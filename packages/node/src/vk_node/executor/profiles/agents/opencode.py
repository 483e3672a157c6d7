"""``OPENCODE``: the ``opencode`` CLI, non-interactive ``run`` mode.

Command: ``opencode run --format json --dangerously-skip-permissions`` with the prompt on stdin
(``run`` appends piped stdin to its message). Without that flag ``run`` auto-rejects permission
requests; ``OPENCODE_PERMISSION={"*":"allow"}`` in the environment does the same for builds that
predate the flag. Follow-up: adds ``--session <session_id>``.

Variants: ``PLAN`` / ``BUILD`` select the built-in agent (``--agent plan``); any other variant is
passed verbatim as ``--model`` (``provider/model``); ``DEFAULT`` or none adds nothing.

Output (``--format json`` JSONL, each line ``{type, timestamp, sessionID, ...}``):
``step_start``, ``text`` (``part.text``, emitted when a text part is complete), ``reasoning``
(``part.text``), ``tool_use`` (``part.tool``, ``part.callID``, ``part.state`` with ``status``
``completed``/``error``, ``input``, ``output``, ``error``, ``title``; emitted once the tool has
finished), ``step_finish`` (``part.reason`` — ``tool-calls`` between steps, ``stop`` at the end —
``part.cost``, ``part.tokens``) and ``error`` (``error {name, data {message}}``). The run has
no closing event of its own: the final ``step_finish`` is its result.
"""

from __future__ import annotations

from typing import Any

from vk_node.executor.profiles.agents._classify import tool_status
from vk_node.executor.profiles.agents._jsonl import as_dict, get_number, get_str
from vk_node.executor.profiles.agents._parser import (
    AgentParser,
    entry,
    error_entry,
    result_entry,
    tool_entry,
)
from vk_node.executor.profiles.agents._profile import AgentProfile, model_of
from vk_node.executor.profiles.base import CommandSpec, NormalizedEntry

__all__ = ["OpencodeParser", "OpencodeProfile"]

_AGENTS = {"PLAN": "plan", "BUILD": "build"}


class OpencodeParser(AgentParser):
    """Parser of ``opencode run --format json`` events."""

    def __init__(self) -> None:
        super().__init__()
        self._cost = 0.0
        self._steps = 0

    def on_event(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        self.note_session(event.get("sessionID"))
        part = as_dict(event.get("part"))
        kind = event.get("type")
        if kind == "text" and (text := get_str(part, "text")):
            return [self.assistant(text)]
        if kind == "reasoning" and (text := get_str(part, "text")):
            return [entry("thinking", text)]
        if kind == "tool_use":
            return [self._tool(part)]
        if kind == "step_finish":
            return self._step_finish(part)
        if kind == "error":
            error = as_dict(event.get("error"))
            text = get_str(error, "data", "message") or get_str(error, "name") or "error"
            self.finish(is_error=True)
            return [error_entry(text), result_entry(is_error=True, content=text)]
        return []

    def _tool(self, part: dict[str, Any]) -> NormalizedEntry:
        state = as_dict(part.get("state"))
        status = tool_status(get_str(state, "status"))
        failed = status == "failed"
        return tool_entry(
            get_str(part, "tool") or "tool",
            status,
            tool_id=get_str(part, "callID"),
            tool_input=state.get("input"),
            output=get_str(state, "output") or get_str(state, "error"),
            error_class="tool_execution_error" if failed else None,
        )

    def _step_finish(self, part: dict[str, Any]) -> list[NormalizedEntry]:
        self._steps += 1
        self._cost += float(get_number(part, "cost") or 0)
        if get_str(part, "reason") == "tool-calls" or self._result == "error":
            return []
        self.finish(is_error=False)
        return [
            result_entry(
                is_error=False,
                content=self._summary,
                num_turns=self._steps,
                total_cost_usd=self._cost,
                usage=as_dict(part.get("tokens")),
            )
        ]


class OpencodeProfile(AgentProfile):
    name = "OPENCODE"
    executable: str | None = "opencode"
    parser_class = OpencodeParser

    def command(self, prompt: str, session_id: str | None, variant: str | None) -> CommandSpec:
        argv = ["opencode", "run", "--format", "json", "--dangerously-skip-permissions"]
        model = model_of(variant)
        if model and model in _AGENTS:
            argv += ["--agent", _AGENTS[model]]
        elif model:
            argv += ["--model", model]
        if session_id:
            argv += ["--session", session_id]
        return CommandSpec(argv=argv, stdin=prompt, env={"OPENCODE_PERMISSION": '{"*":"allow"}'})
