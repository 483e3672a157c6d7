"""The one logging kit of the node and the hive (vk_shared.logkit): every secret-named field is
masked in both formats of both services, for structlog's events and the standard library's
records alike, and one rule says how much of a secret shows."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable

import pytest
import structlog

from support.logcapture import stderr_logs
from vk_hive.logging import configure_logging as configure_hive
from vk_node.logging import configure_logging as configure_node
from vk_shared.logkit import MASK, SECRET_KEYS, mask_secret

LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets", "aiosqlite")


@pytest.mark.parametrize("log_format", ["json", "console"])
@pytest.mark.parametrize("configure", [configure_node, configure_hive], ids=["node", "hive"])
def test_every_secret_key_is_masked_in_every_format(
    configure: Callable[[str, str], None], log_format: str
) -> None:
    """For every name of SECRET_KEYS, in lower and upper case, a value logged through structlog
    and a value bound to the context of a standard library record (uvicorn's) appear only
    masked, in the JSON and the console format of the node and of the hive, and so does the
    password of a URL; other fields appear in full."""
    values = {key: f"{key}-{uuid.uuid4().hex}" for key in sorted(SECRET_KEYS)}
    shouting = {key.upper(): f"{key}-{uuid.uuid4().hex}" for key in sorted(SECRET_KEYS)}
    with stderr_logs(lambda: configure(log_format, "debug"), LOGGERS) as err:
        log = structlog.get_logger("vk.test")
        for key, value in values.items():
            log.info("probe.structlog", visible="plain-value", **{key: value})
        log.info("probe.url", url=f"postgresql://vk:{values['password']}@db:5432/vk")
        log.warning("probe.shouting", **shouting)
        with structlog.contextvars.bound_contextvars(**values):
            logging.getLogger("uvicorn.error").info("probe.stdlib")
    out = err.getvalue()
    if log_format == "json":
        lines = [json.loads(line) for line in out.splitlines()]
        assert all({"event", "level", "timestamp"} <= set(line) for line in lines)
        assert [line.get("logger") for line in lines if line["event"] == "probe.stdlib"] == [
            "uvicorn.error"
        ]
        out = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    for value in [*values.values(), *shouting.values()]:
        assert value not in out
        assert mask_secret(value) in out
    assert "plain-value" in out
    assert "postgresql://vk:****@db:5432/vk" in out
    assert out.count("probe.stdlib") == 1


def test_mask_secret_shows_at_most_a_third() -> None:
    """A secret of 24 or more characters shows its first and last 4, a shorter one nothing,
    an unset one stays empty."""
    key = "0123456789abcdef" * 4
    assert mask_secret(key) == "0123…cdef"
    assert mask_secret("x" * 23) == MASK
    assert mask_secret("") == mask_secret(None) == ""
