"""``QWEN_CODE``: the ``qwen`` CLI (Qwen Code) in headless mode.

Command: ``qwen --output-format stream-json --yolo --prompt=<prompt>`` (``--yolo`` approves every
tool call; the ``--prompt=`` form keeps a prompt starting with ``-`` from being read as a flag).
Follow-up: adds ``--resume <session_id>``.

Variants: passed verbatim as ``--model <variant>``; ``DEFAULT`` or none adds nothing.

Output: Qwen Code's ``stream-json`` is Claude-compatible (:mod:`._claude_format`); its first
event is ``system`` with subtype ``session_start`` (older builds: ``init``) carrying the session id.
"""

from __future__ import annotations

from vk_node.executor.profiles.agents._claude_format import ClaudeStreamParser
from vk_node.executor.profiles.agents._profile import PromptOptionProfile

__all__ = ["QwenCodeProfile"]


class QwenCodeProfile(PromptOptionProfile):
    name = "QWEN_CODE"
    executable: str | None = "qwen"
    parser_class = ClaudeStreamParser

    base_argv = ("qwen", "--output-format", "stream-json", "--yolo")
