"""``CLAUDE_CODE``: Anthropic's ``claude`` CLI in print mode.

Command: ``claude -p --output-format stream-json --verbose --dangerously-skip-permissions`` with
the prompt on stdin (``-p`` reads it when no prompt argument is given; stdin avoids argument
parsing of prompts that start with ``-``). ``stream-json`` needs ``--verbose`` in print mode.
Follow-up: the same plus ``--resume <session_id>``.

Variants: ``PLAN`` runs with ``--permission-mode plan`` instead of skipping permissions (the
agent plans, edits nothing); ``OPUS`` / ``SONNET`` / ``HAIKU`` pass ``--model <alias>``; any other
variant is passed verbatim as ``--model``; ``DEFAULT`` or none adds nothing.

Output: the Claude ``stream-json`` events (:mod:`._claude_format`); the session id is the
``session_id`` of the ``system``/``init`` event.
"""

from __future__ import annotations

from vk_node.executor.profiles.agents._claude_format import ClaudeStreamParser
from vk_node.executor.profiles.agents._profile import AgentProfile, model_of
from vk_node.executor.profiles.base import CommandSpec

__all__ = ["ClaudeCodeProfile"]

_MODEL_ALIASES = {"OPUS": "opus", "SONNET": "sonnet", "HAIKU": "haiku"}


class ClaudeCodeProfile(AgentProfile):
    name = "CLAUDE_CODE"
    executable: str | None = "claude"
    parser_class = ClaudeStreamParser

    def command(self, prompt: str, session_id: str | None, variant: str | None) -> CommandSpec:
        argv = ["claude", "-p", "--output-format", "stream-json", "--verbose"]
        if variant == "PLAN":
            argv += ["--permission-mode", "plan"]
        else:
            argv.append("--dangerously-skip-permissions")
            if model := model_of(variant):
                argv += ["--model", _MODEL_ALIASES.get(model, model)]
        if session_id:
            argv += ["--resume", session_id]
        return CommandSpec(argv=argv, stdin=prompt)
