"""A route walker: every operation of a running app, sent hostile input over a real socket.

The operations come from the app's OpenAPI document, plus the HTTP routes the document leaves out
(``include_in_schema=False``), so a new route is walked as soon as it is mounted. For each
operation the walker sends, one change at a time (everything else plausible, real ids where the
caller knows them by name):

- each path parameter replaced by a bad value: not a UUID, 5,000 characters, ``%00``, ``%FF``,
  a raw ``..`` segment, an unknown UUID;
- each query parameter set to a bad value: not a UUID, empty, ``%00``, ``%FF``, -1, 2**64,
  ``NaN``, 5,000 characters, or given twice;
- for an operation with a JSON body, whole bodies: nested 3,000 deep, one level over the depth
  limit inside a field, a 5,000-digit integer, ``1e400``, ``NaN``, invalid UTF-8, lone surrogates
  (escaped and raw), a NUL escape, empty, ``null``, ``[]``, truncated, one byte over the size
  limit, an unknown field — and (``fields=True``) each field of a plausible body replaced by
  2**64, -2**63-1, ``true``, ``null``, ``""``, 100,000 characters, a NUL byte, ``../..``, not a
  UUID, or an object;
- for any other operation except a GET: a body nested 3,000 deep.

Each request is written with h11 on a fresh connection, its target byte for byte (httpx would
normalise ``..``), with ``Host: 127.0.0.1:<port>`` and ``Content-Type: application/json`` like a
local client. An answer is a problem when there is none, when it is a 5xx, when a 4xx is not an
RFC 9457 problem details body (``type``, ``title``, ``status``, ``detail``, ``code``), or when its
status is not the one a probe must get (400 for too deep a body or a lone surrogate, 413 over the
size limit, a 4xx for a malformed UUID in the path).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import h11
from litestar import Litestar
from litestar.routes import HTTPRoute, WebSocketRoute

__all__ = [
    "Operation",
    "Outcome",
    "Probe",
    "Report",
    "Walk",
    "exchange",
    "operations",
    "probes",
    "undocumented",
    "walk",
    "walk_app",
]

_METHODS = ("get", "post", "put", "patch", "delete")
_ROUTE_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")
_DEEP = 3_000

PATH_VALUES: tuple[tuple[str, str], ...] = (
    ("not-a-uuid", "not-a-uuid"),
    ("overlong", "a" * 5_000),
    ("nul", "%00"),
    ("invalid-utf8", "%FF"),
    ("dot-dot", ".."),
    ("unknown-uuid", "7d1c0b6e-0c57-4c4e-9d8c-000000000000"),
)
QUERY_VALUES: tuple[tuple[str, str], ...] = (
    ("not-a-uuid", "not-a-uuid"),
    ("empty", ""),
    ("nul", "%00"),
    ("invalid-utf8", "%FF"),
    ("negative", "-1"),
    ("2**64", str(2**64)),
    ("nan", "NaN"),
    ("overlong", "x" * 5_000),
)
FIELD_VALUES: tuple[tuple[str, Any], ...] = (
    ("2**64", 2**64),
    ("-2**63-1", -(2**63) - 1),
    ("bool", True),
    ("null", None),
    ("empty", ""),
    ("100k-chars", "x" * 100_000),
    ("nul", "a\x00b"),
    ("dot-dot", "../.."),
    ("not-a-uuid", "not-a-uuid"),
    ("object", {"a": 1}),
)

PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "code"})
"""The members of every error body (RFC 9457 problem details with ``code``)."""
CLIENT_ERROR = frozenset(range(400, 500))
BAD_REQUEST = frozenset({400})
TOO_LARGE = frozenset({413})


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" | "query"
    schema: Mapping[str, Any]
    required: bool = False

    @property
    def is_uuid(self) -> bool:
        return self.schema.get("format") == "uuid"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # template, ``/v1/tasks/{task_id}``
    params: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None  # the resolved JSON schema of the request body

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Probe:
    op: Operation
    kind: str  # what was made hostile: ``path task_id=overlong``, ``body deep-3000``, ...
    target: bytes
    body: bytes | None = None
    expect: frozenset[int] | None = None  # the only acceptable statuses, when that is known


@dataclass(frozen=True)
class Outcome:
    probe: Probe
    authenticated: bool
    status: int
    body: bytes

    def problem(self) -> str | None:
        """Why this answer breaks the contract, or None."""
        if self.status == 0:
            return "no answer"
        if self.status >= 500:
            return "server error"
        if self.probe.expect is not None and self.status not in self.probe.expect:
            wanted = self.probe.expect
            return "expected " + (
                "a 4xx" if wanted == CLIENT_ERROR else " or ".join(map(str, sorted(wanted)))
            )
        if 400 <= self.status < 500:
            try:
                error = json.loads(self.body)
            except ValueError:
                return "4xx body is not JSON"
            if not (
                isinstance(error, dict)
                and set(error) == PROBLEM_MEMBERS
                and error["status"] == self.status
                and isinstance(error["detail"], str)
                and isinstance(error["code"], str)
                and error["type"] == f"urn:vk-swarm:problem:{error['code']}"
            ):
                return "4xx body is not problem details {type, title, status, detail, code}"
        return None

    def __str__(self) -> str:
        who = "auth" if self.authenticated else "anon"
        return f"{self.probe.op} [{who}] {self.probe.kind} -> {self.status} {self.body[:300]!r}"


# --- operations -----------------------------------------------------------------------------


def _resolve(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _plain_path(path: str) -> str:
    """``/v1/tasks/{task_id:uuid}`` → ``/v1/tasks/{task_id}``."""
    return _ROUTE_PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def operations(
    doc: Mapping[str, Any], undocumented: Iterable[tuple[str, str]] = ()
) -> list[Operation]:
    """Every operation of the document, then ``undocumented`` ``(METHOD, route path)`` pairs
    (path parameters typed like ``{id:uuid}``); DELETEs last, so they do not remove what the
    other operations use."""
    found: list[Operation] = []
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            spec = item.get(method)
            if spec is None:
                continue
            params = tuple(
                Param(
                    p["name"], p["in"], _resolve(doc, p.get("schema", {})), p.get("required", False)
                )
                for p in (*item.get("parameters", ()), *spec.get("parameters", ()))
                if p.get("in") in ("path", "query")
            )
            content = spec.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            found.append(
                Operation(
                    method.upper(), path, params, None if body is None else body_schema(doc, body)
                )
            )
    for method, route in undocumented:
        params = tuple(
            Param(
                m.group(1),
                "path",
                {"type": "string", "format": "uuid"}
                if m.group(2) == "uuid"
                else {"type": "string"},
                True,
            )
            for m in _ROUTE_PARAM.finditer(route)
        )
        found.append(Operation(method, _plain_path(route), params))
    return sorted(found, key=lambda op: op.method == "DELETE")


def undocumented(app: Litestar, doc: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """The app's HTTP operations missing from ``doc`` as ``(METHOD, route path)``, and the routes
    not walked: Litestar's own OpenAPI routes (which serve ``doc``) and WebSocket routes (which
    take no HTTP input; their frames are tested on their own)."""
    documented = {
        (method.upper(), path) for path, item in doc.get("paths", {}).items() for method in item
    }
    schema_root = app.openapi_config.path if app.openapi_config else "/schema"
    missing: list[tuple[str, str]] = []
    not_walked: list[str] = []
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            not_walked.append(f"{route.path} (WebSocket)")
        elif not isinstance(route, HTTPRoute):
            not_walked.append(f"{route.path} ({type(route).__name__})")
        elif route.path == schema_root or route.path.startswith(schema_root + "/"):
            not_walked.append(f"{route.path} (OpenAPI)")
        else:
            for handler in route.route_handlers:
                for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                    if (method, _plain_path(route.path)) not in documented:
                        missing.append((method, route.path))
    return missing, not_walked


def body_schema(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A body schema with its properties resolved (``$ref`` and ``oneOf`` with null)."""
    resolved = _resolve(doc, schema)
    props = {
        name: _resolve(doc, _non_null(doc, prop))
        for name, prop in resolved.get("properties", {}).items()
    }
    return {**resolved, "properties": props}


def _non_null(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("oneOf", "anyOf"):
        options = [o for o in schema.get(key, ()) if _resolve(doc, o).get("type") != "null"]
        if options:
            return {**{k: v for k, v in schema.items() if k != key}, **_resolve(doc, options[0])}
    return schema


def plausible(schema: Mapping[str, Any]) -> Any:
    """A value that satisfies a simple schema."""
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "x"


# --- probes ---------------------------------------------------------------------------------


def _target(op: Operation, path: Mapping[str, str], query: Iterable[tuple[str, str]]) -> bytes:
    url = op.path
    for name, value in path.items():
        url = url.replace("{" + name + "}", value)
    pairs = "&".join(f"{k}={v}" for k, v in query)
    return (url + ("?" + pairs if pairs else "")).encode("latin-1")


def _nest(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def probes(
    op: Operation,
    known: Mapping[str, Any],
    *,
    fields: bool,
    depth_limit: int,
    max_body_bytes: int,
) -> Iterator[Probe]:
    """The hostile requests for one operation; ``known`` holds real values by parameter/field
    name (ids of existing rows), so a probe gets past lookups to the code under test."""
    path = {
        p.name: str(known.get(p.name, plausible(p.schema))) for p in op.params if p.where == "path"
    }
    query = [
        (p.name, str(known.get(p.name, plausible(p.schema))))
        for p in op.params
        if p.where == "query" and (p.required or p.name in known)
    ]
    for param in (p for p in op.params if p.where == "path"):
        for label, value in PATH_VALUES:
            yield Probe(
                op,
                f"path {param.name}={label}",
                _target(op, {**path, param.name: value}, query),
                expect=CLIENT_ERROR if param.is_uuid and label != "unknown-uuid" else None,
            )
    for param in (p for p in op.params if p.where == "query"):
        others = [(k, v) for k, v in query if k != param.name]
        for label, value in QUERY_VALUES:
            yield Probe(
                op, f"query {param.name}={label}", _target(op, path, [*others, (param.name, value)])
            )
        doubled = [*others, (param.name, "a"), (param.name, "b")]
        yield Probe(op, f"query {param.name}=repeated", _target(op, path, doubled))
    target = _target(op, path, query)
    if op.body is None:
        if op.method != "GET":
            yield Probe(op, f"body deep-{_DEEP}", target, _nest(_DEEP), BAD_REQUEST)
        return
    props: Mapping[str, Any] = op.body.get("properties", {})
    base = {
        name: known.get(name, plausible(schema))
        for name, schema in props.items()
        if name in op.body.get("required", ()) or name in known
    }
    first = json.dumps(next(iter(props), "x")).encode()
    for label, raw, expect in _bodies(first, depth_limit, max_body_bytes):
        yield Probe(op, f"body {label}", target, raw, expect)
    yield Probe(op, "body unknown-field", target, _json({**base, "surely_unknown_field": 1}))
    if fields:
        for name in props:
            for label, value in FIELD_VALUES:
                yield Probe(op, f"field {name}={label}", target, _json({**base, name: value}))


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _bodies(
    first: bytes, depth_limit: int, max_body_bytes: int
) -> Iterator[tuple[str, bytes, frozenset[int] | None]]:
    def obj(value: bytes) -> bytes:
        return b"{" + first + b": " + value + b"}"

    yield f"deep-{_DEEP}", _nest(_DEEP), BAD_REQUEST
    yield f"depth-{depth_limit + 1}-in-field", obj(_nest(depth_limit)), BAD_REQUEST
    yield "5000-digit-int", obj(b"1" + b"0" * 5_000), None
    yield "1e400", obj(b"1e400"), None
    yield "nan", obj(b"NaN"), None
    yield "invalid-utf8", obj(b'"\xff\xfe"'), None
    yield "lone-surrogate-escaped", obj(b'"\\ud800"'), BAD_REQUEST
    yield "lone-surrogate-raw", obj(b'"\xed\xa0\x80"'), None
    yield "nul-escaped", obj(b'"a\\u0000b"'), None
    yield "empty", b"", None
    yield "null", b"null", None
    yield "array", b"[]", None
    yield "truncated", b"{" + first + b": ", None
    yield "over-size-limit", obj(b'"' + b"y" * max_body_bytes + b'"'), TOO_LARGE


# --- sending --------------------------------------------------------------------------------


@dataclass
class Walk:
    """Every answer of one walk, with what it took."""

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def problems(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.problem() is not None]

    def statuses(self) -> Counter[int]:
        return Counter(o.status for o in self.outcomes)

    def report(self) -> str:
        lines = [
            f"{len(self.outcomes)} requests in {self.seconds:.1f}s; statuses "
            + ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses().items()))
        ]
        lines += [f"  {o.problem()}: {o}" for o in self.problems]
        return "\n".join(lines)


async def exchange(
    port: int,
    method: str,
    target: bytes,
    body: bytes | None = None,
    *,
    token: str | None = None,
    chunked: bool = False,
) -> tuple[int, bytes]:
    """One request on a fresh connection to 127.0.0.1:``port``, the target sent byte for byte;
    returns the status and the body of the answer. A JSON ``body`` is announced with
    Content-Length, or streamed in 1 MiB chunks when ``chunked``."""
    headers = [("host", f"127.0.0.1:{port}"), ("connection", "close")]
    if token is not None:
        headers.append(("authorization", f"Bearer {token}"))
    if body is not None:
        headers.append(("content-type", "application/json"))
        headers.append(
            ("transfer-encoding", "chunked") if chunked else ("content-length", str(len(body)))
        )
    client = h11.Connection(h11.CLIENT)
    parts = [client.send(h11.Request(method=method, target=target, headers=headers))]
    if body:
        step = 1 << 20 if chunked else len(body)
        parts += [client.send(h11.Data(data=body[i : i + step])) for i in range(0, len(body), step)]
    parts.append(client.send(h11.EndOfMessage()))
    status, answer = 0, bytearray()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        # Written in the background while the answer is read: the server may answer (413) and
        # close without reading the whole body, and its answer must not be lost to the reset.
        writer.writelines(p for p in parts if p)
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                try:
                    client.receive_data(await reader.read(1 << 16))
                except ConnectionError:
                    break
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                answer += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed) or event is h11.PAUSED:
                break
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return status, bytes(answer)


@dataclass
class Report:
    """Both walks of an app: anonymous (structural probes) and with a token (every probe)."""

    name: str
    operations: list[Operation]
    undocumented: list[tuple[str, str]]
    not_walked: list[str]
    walks: list[Walk]

    @property
    def problems(self) -> list[Outcome]:
        return [o for w in self.walks for o in w.problems]

    def text(self) -> str:
        head = [
            f"{self.name}: {len(self.operations)} operations "
            f"(undocumented among them: {self.undocumented}); not walked: {self.not_walked}"
        ]
        return "\n".join(head + [w.report() for w in self.walks])


async def walk_app(
    name: str,
    app: Litestar,
    doc: Mapping[str, Any],
    port: int,
    known: Mapping[str, Any],
    *,
    token: str,
    depth_limit: int,
    max_body_bytes: int,
) -> Report:
    """Walk every operation of ``app`` (served on ``port``, documented by ``doc``) twice: without
    a token (path, query and body probes) and with ``token`` (field probes too)."""
    missing, not_walked = undocumented(app, doc)
    ops = operations(doc, missing)
    limits = {"depth_limit": depth_limit, "max_body_bytes": max_body_bytes}
    walks = [
        await walk(port, [p for op in ops for p in probes(op, known, fields=False, **limits)]),
        await walk(
            port, [p for op in ops for p in probes(op, known, fields=True, **limits)], token=token
        ),
    ]
    return Report(name, ops, missing, not_walked, walks)


async def walk(
    port: int,
    plan: Iterable[Probe],
    *,
    token: str | None = None,
    concurrency: int = 4,
) -> Walk:
    """Send every probe (``token`` as a Bearer token when given) and collect the answers."""
    result = Walk()
    gate = asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    async def one(probe: Probe) -> None:
        async with gate:
            status, body = await exchange(
                port, probe.op.method, probe.target, probe.body, token=token
            )
        result.outcomes.append(Outcome(probe, token is not None, status, body))

    await asyncio.gather(*(one(p) for p in plan))
    result.seconds = time.perf_counter() - started
    return result
