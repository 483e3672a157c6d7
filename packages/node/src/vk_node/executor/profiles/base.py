"""The contract between the executor core and one coding-agent profile.

A profile says how to launch a run (:class:`CommandSpec`) and how to read its output (an
:class:`OutputParser` turning raw lines into :class:`NormalizedEntry` rows). Profiles never spawn
processes or touch the store themselves: the executor core does, feeding each line of stdout and
stderr to the parser as it arrives.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import msgspec

__all__ = [
    "ENTRY_TYPES",
    "CommandSpec",
    "ExecutorProfile",
    "NormalizedEntry",
    "OutputParser",
    "Stream",
]

Stream = Literal["stdout", "stderr"]

ENTRY_TYPES: frozenset[str] = frozenset(
    {
        "user_message",
        "assistant_message",
        "tool_use",
        "thinking",
        "system_message",
        "error_message",
        "result_message",
    }
)
"""The values :attr:`NormalizedEntry.entry_type` takes."""


class CommandSpec(msgspec.Struct, frozen=True):
    """How to launch one run: the argv (``argv[0]`` looked up on PATH), text for stdin (``None``
    = no stdin) and extra environment variables on top of the node's controlled environment."""

    argv: list[str]
    stdin: str | None = None
    env: dict[str, str] = {}


class NormalizedEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One conversation entry of a run, stored as a ``json_patch`` log row (content = JSON)."""

    entry_type: str
    """One of :data:`ENTRY_TYPES`."""
    content: str
    metadata: dict[str, Any] | None = None


class OutputParser(Protocol):
    """Reads one run's output line by line (a fresh parser per run)."""

    def feed(self, stream: Stream, line: str) -> list[NormalizedEntry]:
        """Entries produced by this line (usually zero or one); must not raise on odd input."""
        ...

    @property
    def session_id(self) -> str | None:
        """The agent's own session id once seen (stored immediately; used by follow-ups)."""
        ...

    @property
    def summary(self) -> str | None:
        """The last assistant message (the auto-commit message and session summary)."""
        ...

    @property
    def result(self) -> Literal["success", "error"] | None:
        """The outcome the agent reported in its own result message, if any."""
        ...


class ExecutorProfile(Protocol):
    """A command template plus an output parser for one executor."""

    name: str
    """``SCRIPT``, ``CLAUDE_CODE``, …"""
    executable: str | None
    """The CLI looked up on PATH (``None`` = built in)."""
    keeps_context: bool
    """Whether follow-ups can resume a session."""

    def is_available(self, path: str | None) -> bool:
        """Whether this node can run the profile (``path`` = the PATH to search)."""
        ...

    def initial_command(self, prompt: str, *, variant: str | None) -> CommandSpec: ...

    def follow_up_command(
        self, prompt: str, session_id: str, *, variant: str | None
    ) -> CommandSpec: ...

    def new_parser(self) -> OutputParser: ...
