"""The shared shape of an agent output parser and builders for normalized entries.

:class:`AgentParser` does what every agent needs: it never raises, turns blank lines into
nothing, non-JSON stdout into ``system_message`` and stderr into ``error_message`` (known error
patterns) or ``system_message``; it tracks the session id, the last assistant message and the
result. A subclass only interprets decoded events in :meth:`AgentParser.on_event`.
"""

from __future__ import annotations

from typing import Any, Literal

from vk_node.executor.profiles.agents._classify import action_type, classify_error, looks_like_error
from vk_node.executor.profiles.agents._jsonl import as_dict, decode_event, get_str
from vk_node.executor.profiles.base import NormalizedEntry, Stream

__all__ = [
    "AgentParser",
    "entry",
    "error_entry",
    "result_entry",
    "started_entry",
    "tool_entry",
]

_OUTPUT_LIMIT = 2000
_INPUT_KEYS = (
    "command",
    "cmd",
    "file_path",
    "path",
    "filePath",
    "absolute_path",
    "pattern",
    "query",
)


def entry(entry_type: str, content: str, **metadata: Any) -> NormalizedEntry:
    """An entry whose metadata keeps only the fields that are set."""
    meta = {key: value for key, value in metadata.items() if value is not None}
    return NormalizedEntry(entry_type=entry_type, content=content, metadata=meta or None)


def started_entry(subtype: str, model: str | None) -> NormalizedEntry:
    """The ``system_message`` opening a session."""
    text = f"Session started with model {model}" if model else "Session started"
    return entry("system_message", text, subtype=subtype, model=model)


def error_entry(text: str, error_class: str | None = None) -> NormalizedEntry:
    """An ``error_message`` classified by pattern unless the class is known."""
    return entry("error_message", text, error_class=error_class or classify_error(text))


def tool_entry(
    tool: str,
    status: str,
    *,
    tool_id: str | None = None,
    tool_input: Any = None,
    output: str | None = None,
    content: str | None = None,
    error_class: str | None = None,
) -> NormalizedEntry:
    """A ``tool_use`` entry; a tool's later result is a second entry with the same ``tool_id``."""
    if output is not None and len(output) > _OUTPUT_LIMIT:
        output = output[:_OUTPUT_LIMIT] + "…"
    return entry(
        "tool_use",
        content or _describe(tool, tool_input),
        tool=tool,
        action_type=action_type(tool),
        status=status,
        tool_id=tool_id,
        input=tool_input if tool_input not in (None, {}, "") else None,
        output=output or None,
        error_class=error_class,
    )


def result_entry(
    *,
    is_error: bool,
    content: str | None = None,
    subtype: str | None = None,
    duration_ms: int | float | None = None,
    num_turns: int | float | None = None,
    total_cost_usd: int | float | None = None,
    usage: dict[str, Any] | None = None,
) -> NormalizedEntry:
    subtype = subtype or ("error" if is_error else "success")
    return entry(
        "result_message",
        content or subtype,
        subtype=subtype,
        is_error=is_error,
        duration_ms=duration_ms,
        num_turns=num_turns,
        total_cost_usd=total_cost_usd,
        usage=usage or None,
    )


def _describe(tool: str, tool_input: Any) -> str:
    args = as_dict(tool_input)
    for key in _INPUT_KEYS:
        value = get_str(args, key)
        if value is not None:
            return f"{tool}: {value}"
    return tool


class AgentParser:
    """Base parser: line handling, session id, summary and result bookkeeping."""

    def __init__(self) -> None:
        self._session_id: str | None = None
        self._summary: str | None = None
        self._result: Literal["success", "error"] | None = None
        self._tool_names: dict[str, str] = {}

    # --- the OutputParser protocol ---------------------------------------------------------

    def feed(self, stream: Stream, line: str) -> list[NormalizedEntry]:
        text = line.rstrip("\r\n")
        if not text.strip():
            return []
        try:
            if stream == "stderr":
                return self.on_stderr(text)
            event = decode_event(text)
            if event is None:
                return self.on_plain(text)
            return self.on_event(event)
        except Exception:  # a parser must never break log capture
            return [entry("system_message", text)]

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def summary(self) -> str | None:
        return self._summary

    @property
    def result(self) -> Literal["success", "error"] | None:
        return self._result

    # --- hooks for subclasses -----------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> list[NormalizedEntry]:
        raise NotImplementedError

    def on_plain(self, text: str) -> list[NormalizedEntry]:
        """A stdout line that is not a JSON object."""
        return [entry("system_message", text)]

    def on_stderr(self, text: str) -> list[NormalizedEntry]:
        if looks_like_error(text):
            return [error_entry(text)]
        return [entry("system_message", text, stream="stderr")]

    # --- helpers --------------------------------------------------------------------------

    def note_session(self, session_id: Any) -> None:
        if isinstance(session_id, str) and session_id:
            self._session_id = session_id

    def assistant(self, text: str) -> NormalizedEntry:
        self._summary = text
        return entry("assistant_message", text)

    def finish(self, *, is_error: bool) -> None:
        self._result = "error" if is_error else "success"

    def tool_started(self, tool_id: str | None, name: str) -> None:
        if tool_id:
            self._tool_names[tool_id] = name

    def tool_name(self, tool_id: str | None, default: str = "tool") -> str:
        return self._tool_names.get(tool_id or "", default)
