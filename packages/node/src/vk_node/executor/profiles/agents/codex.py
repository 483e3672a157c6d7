"""``CODEX``: OpenAI's ``codex`` CLI, non-interactive ``exec`` mode.

Command: ``codex exec --json --dangerously-bypass-approvals-and-sandbox --skip-git-repo-check -``
with the prompt on stdin (``-`` reads it from stdin). The worktree is the sandbox, so approvals and
Codex's own sandbox are off; ``--skip-git-repo-check`` keeps a worktree whose git dir Codex does
not recognise from refusing to start.
Follow-up: ``codex exec <same flags> resume <thread_id> -``.

Variants: ``MINIMAL`` / ``LOW`` / ``MEDIUM`` / ``HIGH`` set the reasoning effort
(``-c model_reasoning_effort=<level>``); any other variant is passed verbatim as ``--model``;
``DEFAULT`` or none adds nothing.

Output (``--json`` JSONL): ``thread.started`` (``thread_id`` = the session id), ``turn.started``,
``item.started`` / ``item.updated`` / ``item.completed`` with an ``item`` of type
``agent_message`` (``text``), ``reasoning`` (``text``), ``command_execution`` (``command``,
``aggregated_output``, ``exit_code``, ``status``), ``file_change`` (``changes``, ``status``),
``mcp_tool_call`` (``server``, ``tool``, ``status``), ``web_search`` (``query``), ``todo_list``,
``error`` (``message``); ``turn.completed`` (``usage``), ``turn.failed`` (``error.message``) and a
stream-level ``error`` (``message``; also used for reconnect notices).
"""

from __future__ import annotations

from typing import Any

from vk_node.executor.profiles.agents._classify import tool_status
from vk_node.executor.profiles.agents._jsonl import as_dict, as_list, get_str
from vk_node.executor.profiles.agents._parser import (
    AgentParser,
    entry,
    error_entry,
    result_entry,
    tool_entry,
)
from vk_node.executor.profiles.agents._profile import AgentProfile, model_of
from vk_node.executor.profiles.base import CommandSpec, NormalizedEntry

__all__ = ["CodexParser", "CodexProfile"]

_EFFORTS = {"MINIMAL", "LOW", "MEDIUM", "HIGH"}
_TOOL_ITEMS = {"command_execution", "file_change", "mcp_tool_call", "web_search", "todo_list"}


def _tool_of(item: dict[str, Any]) -> tuple[str, Any]:
    """The tool name and input of a tool-like item."""
    kind = get_str(item, "type") or "tool"
    if kind == "command_execution":
        return "shell", {"command": get_str(item, "command")}
    if kind == "file_change":
        paths = [get_str(change, "path") for change in as_list(item.get("changes"))]
        return "apply_patch", {"path": ", ".join(p for p in paths if p)}
    if kind == "mcp_tool_call":
        server, tool = get_str(item, "server") or "mcp", get_str(item, "tool") or "tool"
        return f"{server}.{tool}", item.get("arguments")
    if kind == "web_search":
        return "web_search", {"query": get_str(item, "query")}
    return kind, {"items": item.get("items")}


class CodexParser(AgentParser):
    """Parser of ``codex exec --json`` events."""

    def on_event(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        kind = event.get("type")
        if kind == "thread.started":
            self.note_session(event.get("thread_id"))
            return [entry("system_message", "Session started", subtype="thread.started")]
        if kind in ("item.started", "item.completed"):
            return self._item(as_dict(event.get("item")), done=kind == "item.completed")
        if kind == "turn.completed":
            self.finish(is_error=False)
            return [
                result_entry(
                    is_error=False, content=self._summary, usage=as_dict(event.get("usage"))
                )
            ]
        if kind == "turn.failed":
            self.finish(is_error=True)
            text = get_str(event, "error", "message") or "turn failed"
            return [error_entry(text), result_entry(is_error=True, content=text)]
        if kind == "error":
            return [error_entry(get_str(event, "message") or "error")]
        return []

    def _item(self, item: dict[str, Any], *, done: bool) -> list[NormalizedEntry]:
        kind = get_str(item, "type")
        item_id = get_str(item, "id")
        if kind in _TOOL_ITEMS:
            name, tool_input = _tool_of(item)
            if not done:
                self.tool_started(item_id, name)
                return [tool_entry(name, "created", tool_id=item_id, tool_input=tool_input)]
            status = tool_status(get_str(item, "status") or "completed")
            exit_code = item.get("exit_code")
            if status == "success" and isinstance(exit_code, int) and exit_code != 0:
                status = "failed"
            failed = status == "failed"
            return [
                tool_entry(
                    name,
                    status,
                    tool_id=item_id,
                    tool_input=tool_input,
                    output=get_str(item, "aggregated_output"),
                    error_class="tool_execution_error" if failed else None,
                )
            ]
        if not done:
            return []
        text = get_str(item, "text") or get_str(item, "message")
        if kind == "agent_message" and text:
            return [self.assistant(text)]
        if kind == "reasoning" and text:
            return [entry("thinking", text)]
        if kind == "error" and text:
            return [error_entry(text)]
        return []


class CodexProfile(AgentProfile):
    name = "CODEX"
    executable: str | None = "codex"
    parser_class = CodexParser

    def command(self, prompt: str, session_id: str | None, variant: str | None) -> CommandSpec:
        argv = [
            "codex",
            "exec",
            "--json",
            "--dangerously-bypass-approvals-and-sandbox",
            "--skip-git-repo-check",
        ]
        model = model_of(variant)
        if model and model in _EFFORTS:
            argv += ["-c", f"model_reasoning_effort={model.lower()}"]
        elif model:
            argv += ["--model", model]
        if session_id:
            argv += ["resume", session_id]
        return CommandSpec(argv=[*argv, "-"], stdin=prompt)
