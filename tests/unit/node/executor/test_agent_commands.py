"""Command lines of the coding-agent profiles: argv, stdin and env for initial runs, follow-ups
with a session id, and variants (the flags each real CLI takes in non-interactive mode)."""

from __future__ import annotations

import pytest

from vk_node.executor.profiles import CommandSpec, get_profile

PROMPT = "Add a greeting to README.md"
SID = "sess-42"

CLAUDE = ["claude", "-p", "--output-format", "stream-json", "--verbose"]
CODEX = ["codex", "exec", "--json", "--dangerously-bypass-approvals-and-sandbox"]
CODEX += ["--skip-git-repo-check"]
GEMINI = ["gemini", "--output-format", "stream-json", "--yolo"]
OPENCODE = ["opencode", "run", "--format", "json", "--dangerously-skip-permissions"]
OPENCODE_ENV = {"OPENCODE_PERMISSION": '{"*":"allow"}'}
CURSOR = ["cursor-agent", "-p", "--output-format", "stream-json", "--force"]
QWEN = ["qwen", "--output-format", "stream-json", "--yolo"]
COPILOT = ["copilot", "--output-format", "json", "--allow-all-tools", "--no-ask-user"]
AMP_FLAGS = ["--execute", "--stream-json", "--dangerously-allow-all"]
P = f"--prompt={PROMPT}"

# (profile, session id or None for an initial run, variant, expected command)
COMMANDS: list[tuple[str, str | None, str | None, CommandSpec]] = [
    ("CLAUDE_CODE", None, None, CommandSpec([*CLAUDE, "--dangerously-skip-permissions"], PROMPT)),
    (
        "CLAUDE_CODE",
        SID,
        None,
        CommandSpec([*CLAUDE, "--dangerously-skip-permissions", "--resume", SID], PROMPT),
    ),
    (
        "CLAUDE_CODE",
        SID,
        "OPUS",
        CommandSpec(
            [*CLAUDE, "--dangerously-skip-permissions", "--model", "opus", "--resume", SID], PROMPT
        ),
    ),
    ("CLAUDE_CODE", None, "PLAN", CommandSpec([*CLAUDE, "--permission-mode", "plan"], PROMPT)),
    ("CODEX", None, None, CommandSpec([*CODEX, "-"], PROMPT)),
    ("CODEX", SID, None, CommandSpec([*CODEX, "resume", SID, "-"], PROMPT)),
    (
        "CODEX",
        SID,
        "HIGH",
        CommandSpec([*CODEX, "-c", "model_reasoning_effort=high", "resume", SID, "-"], PROMPT),
    ),
    ("CODEX", None, "gpt-5-codex", CommandSpec([*CODEX, "--model", "gpt-5-codex", "-"], PROMPT)),
    ("GEMINI", None, None, CommandSpec([*GEMINI, P])),
    ("GEMINI", SID, None, CommandSpec([*GEMINI, "--resume", SID, P])),
    (
        "GEMINI",
        SID,
        "gemini-2.5-flash",
        CommandSpec([*GEMINI, "--model", "gemini-2.5-flash", "--resume", SID, P]),
    ),
    ("AMP", None, None, CommandSpec(["amp", *AMP_FLAGS], PROMPT)),
    ("AMP", SID, None, CommandSpec(["amp", "threads", "continue", SID, *AMP_FLAGS], PROMPT)),
    (
        "AMP",
        SID,
        "RUSH",
        CommandSpec(["amp", "threads", "continue", SID, *AMP_FLAGS, "--mode", "rush"], PROMPT),
    ),
    ("OPENCODE", None, None, CommandSpec(OPENCODE, PROMPT, OPENCODE_ENV)),
    ("OPENCODE", SID, None, CommandSpec([*OPENCODE, "--session", SID], PROMPT, OPENCODE_ENV)),
    (
        "OPENCODE",
        SID,
        "anthropic/claude-sonnet-4-5",
        CommandSpec(
            [*OPENCODE, "--model", "anthropic/claude-sonnet-4-5", "--session", SID],
            PROMPT,
            OPENCODE_ENV,
        ),
    ),
    ("OPENCODE", None, "PLAN", CommandSpec([*OPENCODE, "--agent", "plan"], PROMPT, OPENCODE_ENV)),
    ("CURSOR_AGENT", None, None, CommandSpec(CURSOR, PROMPT)),
    ("CURSOR_AGENT", SID, None, CommandSpec([*CURSOR, "--resume", SID], PROMPT)),
    (
        "CURSOR_AGENT",
        SID,
        "gpt-5",
        CommandSpec([*CURSOR, "--model", "gpt-5", "--resume", SID], PROMPT),
    ),
    ("QWEN_CODE", None, None, CommandSpec([*QWEN, P])),
    ("QWEN_CODE", SID, None, CommandSpec([*QWEN, "--resume", SID, P])),
    (
        "QWEN_CODE",
        SID,
        "qwen3-coder-plus",
        CommandSpec([*QWEN, "--model", "qwen3-coder-plus", "--resume", SID, P]),
    ),
    ("COPILOT", None, None, CommandSpec([*COPILOT, P])),
    ("COPILOT", SID, None, CommandSpec([*COPILOT, "--resume", SID, P])),
    ("COPILOT", SID, "gpt-5", CommandSpec([*COPILOT, "--model", "gpt-5", "--resume", SID, P])),
]


@pytest.mark.parametrize(
    ("name", "session_id", "variant", "expected"),
    COMMANDS,
    ids=[f"{n}-{'follow' if s else 'initial'}-{v or 'default'}" for n, s, v, _ in COMMANDS],
)
def test_command_line(
    name: str, session_id: str | None, variant: str | None, expected: CommandSpec
) -> None:
    """Each profile launches its CLI with the documented non-interactive flags, the prompt on
    stdin or as an option, the resume flag for follow-ups and the variant's model/mode flag."""
    profile = get_profile(name)
    if session_id is None:
        spec = profile.initial_command(PROMPT, variant=variant)
    else:
        spec = profile.follow_up_command(PROMPT, session_id, variant=variant)
    assert spec == expected


@pytest.mark.parametrize(
    "name",
    ["CLAUDE_CODE", "CODEX", "GEMINI", "AMP", "OPENCODE", "CURSOR_AGENT", "QWEN_CODE", "COPILOT"],
)
def test_default_variant_adds_nothing(name: str) -> None:
    """The ``DEFAULT`` variant gives the same command as no variant, and every agent profile
    keeps context (follow-ups resume the session)."""
    profile = get_profile(name)
    assert profile.initial_command(PROMPT, variant="DEFAULT") == profile.initial_command(
        PROMPT, variant=None
    )
    assert profile.keeps_context is True


def test_prompt_starting_with_a_dash_stays_a_value() -> None:
    """A prompt that looks like a flag is passed in the ``--prompt=`` form, never as a bare
    argument the CLI could read as an option."""
    spec = get_profile("GEMINI").initial_command("--help me", variant=None)
    assert spec.argv[-1] == "--prompt=--help me"
    assert "--help me" not in spec.argv
