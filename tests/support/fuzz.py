"""An OpenAPI fuzzer run (schemathesis) against a running service, over a real socket.

:func:`fuzz` loads the service's document from ``/schema/openapi.json``, runs schemathesis's
engine on it — examples, coverage (boundary values, missing and wrong-typed parameters,
undocumented methods), fuzzing (random valid and invalid input) and stateful (chains of
operations through the links it infers) — with a fixed seed, deterministic generation and a
bounded number of examples per operation, and collects every failed check. The checks:

- ``not_a_server_error``: no 5xx;
- ``status_code_conformance``: every status is documented for the operation;
- ``content_type_conformance``: the response's media type is the documented one;
- ``response_schema_conformance``: the body matches the documented schema;
- ``response_headers_conformance``: documented response headers are there and valid;
- ``negative_data_rejection``: input the document forbids is refused with a 4xx;
- ``positive_data_acceptance``: input the document allows is not refused as malformed (a 400
  means the document is looser than the validation); it may still be refused by the domain —
  422 for a path that is not a git repository or an executor the node cannot run, 404/409 for
  ids and states the fuzzer cannot know, 401/403/429 for who is asking;
- ``unsupported_method``: an undocumented method on a documented path is a 405;
- ``allow_header_conformance``: a 405's ``Allow`` names the documented methods;
- ``missing_required_header``: a request without a required header (the bearer token where it
  is required) is refused (401).

The engine is synchronous (it uses ``requests``): call :func:`fuzz` in a worker thread when the
service is served by the test's own event loop.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

__all__ = ["CHECKS", "Finding", "FuzzReport", "fuzz"]

CHECKS: tuple[str, ...] = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "unsupported_method",
    "allow_header_conformance",
    "missing_required_header",
)


ACCEPTED: tuple[str, ...] = ("2xx", "3xx", "401", "403", "404", "409", "422", "429")
"""What schema-valid input may get (see ``positive_data_acceptance`` above)."""


@dataclass(frozen=True)
class Finding:
    """One failed check: which, on which operation, in which phase, and what was seen."""

    check: str
    operation: str
    phase: str
    title: str
    message: str
    answer: str = ""
    """The status and the start of the body of the answer that failed the check."""

    def __str__(self) -> str:
        message = " ".join(self.message.split())[:400]
        return (
            f"{self.check} [{self.phase}] {self.operation}: {self.title}: {message} "
            f"<- {self.answer}"
        )


@dataclass
class FuzzReport:
    """Every failed check of one run (each distinct one once) and what the run did."""

    name: str
    findings: list[Finding] = field(default_factory=list)
    scenarios: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stop_reason: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    discarded: int = 0
    """Failed checks of requests that were not what the check took them for (``_fed_a_null``)."""

    def by_check(self) -> Counter[str]:
        return Counter(f.check for f in self.findings)

    def text(self) -> str:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_check().items())) or "none"
        lines = [
            f"{self.name}: {self.scenarios} scenarios, {self.requests} requests in "
            f"{self.seconds:.1f}s ({self.stop_reason}); findings {len(self.findings)} ({counts}); "
            f"errors {len(self.errors)}; discarded {self.discarded}; phases "
            + ", ".join(f"{k} {v:.1f}s" for k, v in self.phases.items())
        ]
        lines += [f"  {finding}" for finding in self.findings]
        lines += [f"  error: {error}" for error in self.errors]
        return "\n".join(lines)


def _config(
    base_url: str,
    headers: Mapping[str, str],
    *,
    seed: int,
    max_examples: int,
    max_steps: int,
    skip: Sequence[str],
) -> SchemathesisConfig:
    checks: dict[str, Any] = {"enabled": False}
    checks.update({name: {"enabled": True} for name in CHECKS})
    checks["positive_data_acceptance"]["expected-statuses"] = list(ACCEPTED)
    return SchemathesisConfig.from_dict(
        {
            "seed": seed,
            "base-url": base_url,
            "headers": dict(headers),
            "continue-on-failure": True,
            # No state carried from one run to the next (it would make runs differ).
            "cache": {"enabled": False},
            "request-timeout": 10,
            "generation": {
                "deterministic": True,
                "database": "none",
                "max-examples": max_examples,
                "mode": "all",
                "no-shrink": True,
                # Both services refuse a NUL character in any string with a 400 (PostgreSQL
                # text cannot hold one; the node keeps one rule with the hive), as the
                # documents' descriptions say; JSON Schema has no keyword for "every string".
                "allow-x00": False,
            },
            "phases": {"stateful": {"max-steps": max_steps}},
            "checks": checks,
            "operations": [{"include-name": name, "enabled": False} for name in skip],
        }
    )


def _fed_a_null(check: str, phase: str, response: Any) -> bool:
    """A chain of the stateful phase filled a required parameter from a field of an earlier
    answer that was null (a global label's ``project_id``); the parameter is then left out of
    the request, which the check still takes for schema-valid input. Such a request refused as
    missing the parameter is no finding."""
    if check != "positive_data_acceptance" or phase != "stateful" or response is None:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and body.get("code") == "validation_failed"
        and str(body.get("detail", "")).startswith("Missing required")
    )


def _answer(response: Any) -> str:
    request = response.request
    body = (request.body or b"")[:200] if isinstance(request.body, bytes) else request.body
    return (
        f"{request.method} {request.url} body={body!r} -> {response.status_code} "
        f"{response.content[:300]!r}"
    )


def fuzz(
    name: str,
    base_url: str,
    *,
    headers: Mapping[str, str],
    seed: int = 20_240_901,
    max_examples: int = 10,
    max_steps: int = 20,
    skip: Sequence[str] = (),
) -> FuzzReport:
    """Fuzz the service at ``base_url`` (every request carries ``headers``); see the module
    docstring for what is checked. Operations named in ``skip`` (``"DELETE /v1/x/{id}"``) are
    not fuzzed: the fuzzer feeds ids from earlier answers to later requests, so one that revokes
    credentials would end up revoking its own."""
    config = _config(
        base_url,
        headers,
        seed=seed,
        max_examples=max_examples,
        max_steps=max_steps,
        skip=skip,
    )
    schema = schemathesis.openapi.from_url(
        f"{base_url}/schema/openapi.json", config=config, headers=dict(headers)
    )
    report = FuzzReport(name)
    seen: set[tuple[str, str, str, str]] = set()
    started = time.perf_counter()
    phase_started: dict[str, float] = {}
    for event in from_schema(schema).execute():
        if isinstance(event, events.PhaseStarted):
            phase_started[str(event.phase.name)] = time.perf_counter()
        elif isinstance(event, events.PhaseFinished):
            name = str(event.phase.name)
            report.phases[name] = time.perf_counter() - phase_started.get(name, started)
        elif isinstance(event, events.ScenarioFinished):
            report.scenarios += 1
            recorder = event.recorder
            report.requests += len(recorder.interactions)
            for case_id, nodes in recorder.checks.items():
                for node in nodes:
                    if node.status != Status.FAILURE or node.failure_info is None:
                        continue
                    failure = node.failure_info.failure
                    operation = failure.operation or recorder.label
                    key = (node.name, operation, failure.title, failure.message)
                    if key in seen:
                        continue
                    seen.add(key)
                    response = recorder.find_response(case_id=case_id)
                    if _fed_a_null(node.name, str(event.phase), response):
                        report.discarded += 1
                        continue
                    answer = "" if response is None else _answer(response)
                    report.findings.append(
                        Finding(
                            node.name,
                            operation,
                            str(event.phase),
                            failure.title,
                            failure.message,
                            answer,
                        )
                    )
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            report.stop_reason = str(event.stop_reason)
    report.seconds = time.perf_counter() - started
    return report
