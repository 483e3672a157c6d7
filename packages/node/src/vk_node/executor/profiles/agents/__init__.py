"""The coding-agent executor profiles; importing this package registers them.

One module per agent CLI, each documenting its command line, variants and output format:
``CLAUDE_CODE`` (:mod:`.claude`), ``CODEX`` (:mod:`.codex`), ``GEMINI`` (:mod:`.gemini`),
``AMP`` (:mod:`.amp`), ``OPENCODE`` (:mod:`.opencode`), ``CURSOR_AGENT`` (:mod:`.cursor`),
``QWEN_CODE`` (:mod:`.qwen`), ``COPILOT`` (:mod:`.copilot`). Shared pieces: JSONL decoding
(:mod:`._jsonl`), error classes and tool vocabulary (:mod:`._classify`), the parser base
(:mod:`._parser`) and the Claude-compatible stream format (:mod:`._claude_format`).
"""

from __future__ import annotations

from vk_node.executor.profiles import register
from vk_node.executor.profiles.agents._profile import AgentProfile
from vk_node.executor.profiles.agents.amp import AmpProfile
from vk_node.executor.profiles.agents.claude import ClaudeCodeProfile
from vk_node.executor.profiles.agents.codex import CodexProfile
from vk_node.executor.profiles.agents.copilot import CopilotProfile
from vk_node.executor.profiles.agents.cursor import CursorAgentProfile
from vk_node.executor.profiles.agents.gemini import GeminiProfile
from vk_node.executor.profiles.agents.opencode import OpencodeProfile
from vk_node.executor.profiles.agents.qwen import QwenCodeProfile

__all__ = ["AGENT_PROFILES", "AgentProfile"]

AGENT_PROFILES: tuple[AgentProfile, ...] = (
    ClaudeCodeProfile(),
    CodexProfile(),
    GeminiProfile(),
    AmpProfile(),
    OpencodeProfile(),
    CursorAgentProfile(),
    QwenCodeProfile(),
    CopilotProfile(),
)

for _profile in AGENT_PROFILES:
    register(_profile)
