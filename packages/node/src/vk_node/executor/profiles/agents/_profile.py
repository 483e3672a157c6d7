"""The common part of the coding-agent profiles: detection on PATH and parser creation."""

from __future__ import annotations

import shutil

from vk_node.executor.profiles.agents._parser import AgentParser
from vk_node.executor.profiles.base import CommandSpec

__all__ = ["AgentProfile", "PromptOptionProfile", "model_of", "prompt_flag_argv"]


class AgentProfile:
    """Base of every agent profile; a subclass sets the names and builds the command lines."""

    name: str
    executable: str | None
    keeps_context: bool = True
    parser_class: type[AgentParser]

    def is_available(self, path: str | None) -> bool:
        """Whether the agent's CLI is found on ``path`` (the node's PATH when ``None``)."""
        return self.executable is not None and shutil.which(self.executable, path=path) is not None

    def initial_command(self, prompt: str, *, variant: str | None) -> CommandSpec:
        return self.command(prompt, None, variant)

    def follow_up_command(
        self, prompt: str, session_id: str, *, variant: str | None
    ) -> CommandSpec:
        return self.command(prompt, session_id, variant)

    def command(self, prompt: str, session_id: str | None, variant: str | None) -> CommandSpec:
        """The run's command line: a fresh session, or a resumed one when ``session_id`` is set."""
        raise NotImplementedError

    def new_parser(self) -> AgentParser:
        return self.parser_class()


def model_of(variant: str | None) -> str | None:
    """The variant as a model name (``None`` for no variant or ``DEFAULT``)."""
    return None if not variant or variant == "DEFAULT" else variant


def prompt_flag_argv(
    base: list[str], *, model: str | None, resume: str | None, prompt: str
) -> list[str]:
    """``base`` + ``--model M`` + ``--resume ID`` + ``--prompt=<prompt>`` for CLIs that take the
    prompt as an option (the ``=`` form keeps a prompt starting with ``-`` a value)."""
    argv = list(base)
    if model:
        argv += ["--model", model]
    if resume:
        argv += ["--resume", resume]
    return [*argv, f"--prompt={prompt}"]


class PromptOptionProfile(AgentProfile):
    """A CLI taking the prompt as ``--prompt=``, the variant as ``--model`` and the session to
    resume as ``--resume`` (Gemini CLI, its fork Qwen Code, and Copilot CLI)."""

    base_argv: tuple[str, ...]

    def command(self, prompt: str, session_id: str | None, variant: str | None) -> CommandSpec:
        argv = prompt_flag_argv(
            list(self.base_argv), model=model_of(variant), resume=session_id, prompt=prompt
        )
        return CommandSpec(argv=argv)
