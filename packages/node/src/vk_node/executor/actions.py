"""Executor actions as stored in ``execution_processes.executor_action`` (spec §3):
``{"typ": {"type": <kind>, ...}, "next_action": <action|null>}``."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "Action",
    "AgentFollowUp",
    "AgentInitial",
    "ExecutorProfileId",
    "ScriptRequest",
    "decode_action",
    "encode_action",
    "run_reason_of",
]

ScriptContext = Literal["SetupScript", "CleanupScript", "DevServer", "ToolInstallScript"]


class ExecutorProfileId(msgspec.Struct, frozen=True, kw_only=True):
    executor: str
    variant: str | None = None


class ScriptRequest(
    msgspec.Struct, frozen=True, kw_only=True, tag="ScriptRequest", tag_field="type"
):
    script: str
    language: Literal["Bash"] = "Bash"
    context: ScriptContext


class AgentInitial(
    msgspec.Struct, frozen=True, kw_only=True, tag="CodingAgentInitialRequest", tag_field="type"
):
    prompt: str
    executor_profile_id: ExecutorProfileId


class AgentFollowUp(
    msgspec.Struct, frozen=True, kw_only=True, tag="CodingAgentFollowUpRequest", tag_field="type"
):
    prompt: str
    session_id: str
    executor_profile_id: ExecutorProfileId


class Action(msgspec.Struct, frozen=True, kw_only=True):
    typ: ScriptRequest | AgentInitial | AgentFollowUp
    next_action: Action | None = None


_DECODER = msgspec.json.Decoder(Action)


def decode_action(text: str) -> Action | None:
    """The stored action, or ``None`` when the text is not one we understand."""
    try:
        return _DECODER.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def encode_action(action: Action) -> str:
    return msgspec.json.encode(action).decode()


def run_reason_of(action: Action) -> str:
    """``setupscript`` / ``cleanupscript`` / ``devserver`` for scripts, else ``codingagent``."""
    typ = action.typ
    if isinstance(typ, ScriptRequest):
        return {"CleanupScript": "cleanupscript", "DevServer": "devserver"}.get(
            typ.context, "setupscript"
        )
    return "codingagent"
