"""``SCRIPT``: runs the prompt as a bash script in the worktree (enabled by the node's settings).

The script is the argument of ``bash -c`` (task text is at most 50 KiB, below the kernel's
per-argument limit), so the script's own commands still see an empty stdin. Output lines pass
through unchanged; there is no session and the result comes from the exit code.
"""

from __future__ import annotations

from typing import Literal

from vk_node.executor.profiles.base import CommandSpec, NormalizedEntry, Stream

__all__ = ["ScriptParser", "ScriptProfile"]


class ScriptParser:
    """Passes lines through: no normalized entries, no session, no result message."""

    def __init__(self) -> None:
        self._last: str | None = None

    def feed(self, stream: Stream, line: str) -> list[NormalizedEntry]:
        if stream == "stdout" and line.strip():
            self._last = line
        return []

    @property
    def session_id(self) -> str | None:
        return None

    @property
    def summary(self) -> str | None:
        return None

    @property
    def result(self) -> Literal["success", "error"] | None:
        return None


class ScriptProfile:
    name = "SCRIPT"
    executable: str | None = None
    keeps_context = False

    def is_available(self, path: str | None) -> bool:
        # Built in; whether it may run is decided by the node's VK_NODE_EXECUTORS setting.
        return True

    def initial_command(self, prompt: str, *, variant: str | None) -> CommandSpec:
        return CommandSpec(argv=["bash", "-c", prompt])

    def follow_up_command(
        self, prompt: str, session_id: str, *, variant: str | None
    ) -> CommandSpec:
        return self.initial_command(prompt, variant=variant)

    def new_parser(self) -> ScriptParser:
        return ScriptParser()
