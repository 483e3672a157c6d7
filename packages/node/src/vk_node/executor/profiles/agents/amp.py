"""``AMP``: Sourcegraph's ``amp`` CLI in execute mode.

Command: ``amp --execute --stream-json --dangerously-allow-all`` with the prompt on stdin
(execute mode reads it when no prompt argument follows ``--execute``).
Follow-up: ``amp threads continue <thread_id> --execute --stream-json --dangerously-allow-all``
(the thread id, ``T-…``, is the session id). The reference forks the thread first
(``amp threads fork``) so a retried follow-up never extends a dropped branch; one command per
run cannot express that, so follow-ups continue the thread itself.

Variants: passed as ``--mode <variant lowercased>`` (Amp's agent modes, e.g. ``SMART``,
``RUSH``); ``DEFAULT`` or none adds nothing.

Output: Claude-compatible ``stream-json`` (:mod:`._claude_format`).
"""

from __future__ import annotations

from vk_node.executor.profiles.agents._claude_format import ClaudeStreamParser
from vk_node.executor.profiles.agents._profile import AgentProfile, model_of
from vk_node.executor.profiles.base import CommandSpec

__all__ = ["AmpProfile"]


class AmpProfile(AgentProfile):
    name = "AMP"
    executable: str | None = "amp"
    parser_class = ClaudeStreamParser

    def command(self, prompt: str, session_id: str | None, variant: str | None) -> CommandSpec:
        argv = ["amp", "threads", "continue", session_id] if session_id else ["amp"]
        argv += ["--execute", "--stream-json", "--dangerously-allow-all"]
        if mode := model_of(variant):
            argv += ["--mode", mode.lower()]
        return CommandSpec(argv=argv, stdin=prompt)
