"""Pattern-matched error classes and tool vocabulary shared by the agent parsers.

Error classes (spec/executor.md §4): ``setup_required``, ``rate_limited``, ``network_error``,
``tool_execution_error``, ``permission_denied``, ``api_error``, ``other``. The patterns are
checked in order, so "API Error: 429" is ``rate_limited`` and "API Error: 401" is
``setup_required`` rather than ``api_error``.
"""

from __future__ import annotations

import re

__all__ = [
    "ERROR_CLASSES",
    "TOOL_STATUSES",
    "action_type",
    "classify_error",
    "looks_like_error",
    "tool_status",
]

ERROR_CLASSES: tuple[str, ...] = (
    "setup_required",
    "rate_limited",
    "network_error",
    "tool_execution_error",
    "permission_denied",
    "api_error",
    "other",
)

TOOL_STATUSES: tuple[str, ...] = (
    "created",
    "success",
    "failed",
    "denied",
    "pending_approval",
    "timed_out",
    "pending_question",
    "answered",
)

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "rate_limited",
        re.compile(
            r"rate[ _-]?limit|too many requests|\b429\b|\b529\b|quota|usage limit|overloaded"
            r"|resource[ _-]?exhausted",
            re.IGNORECASE,
        ),
    ),
    (
        "setup_required",
        re.compile(
            r"not (?:logged|signed) in|\blog ?in\b|\bsign ?in\b|authenticat|unauthori[sz]ed|\b401\b"
            r"|api[ _-]?key|credential|command not found|not installed",
            re.IGNORECASE,
        ),
    ),
    (
        "network_error",
        re.compile(
            r"econnrefused|econnreset|enotfound|etimedout|eai_again|getaddrinfo|network"
            r"|connection (?:refused|reset|error|closed)|fetch failed|socket hang up|timed? ?out"
            r"|unreachable|stream disconnected",
            re.IGNORECASE,
        ),
    ),
    (
        "permission_denied",
        re.compile(
            r"permission denied|\beacces\b|\beperm\b|not permitted|forbidden|\b403\b|access denied",
            re.IGNORECASE,
        ),
    ),
    (
        "api_error",
        re.compile(
            r"api[ _]error|\b5\d\d\b|internal server error|bad gateway|service unavailable"
            r"|bad request|\b400\b|invalid[ _]request|model not found|context length",
            re.IGNORECASE,
        ),
    ),
)

_ERROR_WORD = re.compile(r"\b(?:error|fatal|exception|traceback|panic)\b", re.IGNORECASE)


def classify_error(text: str) -> str:
    """The error class of a message (``other`` when no pattern matches)."""
    for error_class, pattern in _PATTERNS:
        if pattern.search(text):
            return error_class
    return "other"


def looks_like_error(text: str) -> bool:
    """Whether a free-text line (stderr, plain stdout) reads as an error report."""
    return classify_error(text) != "other" or _ERROR_WORD.search(text) is not None


_STATUS_WORDS: dict[str, str] = {
    "completed": "success",
    "complete": "success",
    "success": "success",
    "succeeded": "success",
    "ok": "success",
    "done": "success",
    "failed": "failed",
    "failure": "failed",
    "error": "failed",
    "errored": "failed",
    "declined": "denied",
    "denied": "denied",
    "rejected": "denied",
    "cancelled": "denied",
    "canceled": "denied",
    "timed_out": "timed_out",
    "timeout": "timed_out",
    "in_progress": "created",
    "running": "created",
    "pending": "created",
    "started": "created",
}


def tool_status(raw: str | None) -> str:
    """An agent's own tool state word mapped to a normalized tool status."""
    if raw is None:
        return "created"
    word = raw.strip().lower().replace("-", "_")
    if word in TOOL_STATUSES:
        return word
    return _STATUS_WORDS.get(word, "created")


_ACTIONS: dict[str, frozenset[str]] = {
    "command_run": frozenset(
        {"bash", "shell", "run_shell_command", "command_execution", "exec", "local_shell"}
    ),
    "file_read": frozenset({"read", "read_file", "readfile", "view", "read_many_files"}),
    "file_edit": frozenset(
        {
            "edit",
            "write",
            "multiedit",
            "replace",
            "write_file",
            "apply_patch",
            "file_change",
            "str_replace",
            "create",
            "notebookedit",
            "patch",
            "delete",
        }
    ),
    "search": frozenset(
        {
            "grep",
            "glob",
            "search",
            "find",
            "ls",
            "list_directory",
            "search_file_content",
            "codebase_search",
            "web_search",
            "websearch",
        }
    ),
    "web_fetch": frozenset({"webfetch", "web_fetch", "fetch"}),
    "todo_management": frozenset({"todowrite", "todo", "update_todos", "todo_list", "todoread"}),
    "task_create": frozenset({"task", "agent"}),
}


def action_type(tool_name: str) -> str:
    """What kind of action a tool performs (``tool`` for anything unrecognised)."""
    name = tool_name.strip().lower()
    for action, names in _ACTIONS.items():
        if name in names:
            return action
    return "tool"
