"""Make an application's generated OpenAPI document say exactly what the application does.

Litestar generates paths, parameters and body schemas from the handlers; it cannot know which
errors a route answers, which routes need a token, or that a body forbids unknown fields. Each
application gathers those facts from its own routes (``vk_hive.api.openapi``,
``vk_node.api.openapi``) and :func:`finish` writes them into the document (a plain dict, so
clients generated from it see them):

- every operation lists the error statuses it can really give (:class:`Operation.errors`), each
  with the ``application/problem+json`` schema of :class:`vk_shared.problems.Problem`
  (Litestar's generic ``{status_code, detail}`` error responses are dropped: nothing sends them;
  a response a route declares itself, such as a degraded health report, is kept);
- ``components.securitySchemes.bearer`` (HTTP bearer) and, per operation, ``security``: required,
  optional (``[{}, {"bearer": []}]``) or none;
- request bodies have msgspec's schema of the Struct they decode into, so the document states
  the validation's constraints exactly (``additionalProperties: false`` for a Struct that
  forbids unknown fields, ``minimum: 0``...); parameters their exact bounds and patterns.

Invariant: an operation documented here answers nothing but its success statuses and its
``errors`` (the OpenAPI fuzzer of ``tests/e2e`` holds both applications to it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec

from vk_shared.problems import MEDIA_TYPE, Problem, code_for_status, title_of

__all__ = [
    "API_DESCRIPTION",
    "ERRORS",
    "PARAMETERS",
    "SCHEME",
    "Operation",
    "Route",
    "answers",
    "exact",
    "finish",
    "parameters",
    "raw_body",
    "raw_response",
    "routes_of",
]

API_DESCRIPTION: Final = (
    "Every error is RFC 9457 problem details (application/problem+json) with a stable "
    "machine-readable `code`. A string holding a NUL character is refused (400 invalid_input), "
    "whatever the field."
)
"""``info.description`` of both applications' documents."""

SCHEME: Final = "bearer"
"""The name of the security scheme in ``components.securitySchemes``."""
_REF: Final = "#/components/schemas/"
_PROBLEM_REF: Final = _REF + "Problem"
_BODY_TYPE: Final = "x-vk-body-type"  # a marker while finishing; never left in the document
ERRORS: Final = "vk_problem_statuses"
"""The ``opt`` key of a route handler that names the error statuses of its own making."""


PARAMETERS: Final = "vk_parameter_documents"
"""The ``opt`` key of a route handler that documents parameters the framework cannot describe."""


def parameters(**documents: Mapping[str, Any]) -> dict[str, Any]:
    """``opt`` of a route handler: OpenAPI parameter objects (``style``, ``schema``...) that
    replace the generated ones, by parameter name — for a parameter whose wire form the handler
    parses itself (``ids=a,b,c``)."""
    return {PARAMETERS: dict(documents)}


RAW_BODY: Final = "vk_raw_body"
"""The ``opt`` key of a route handler whose body is not JSON (the handler reads it itself)."""


def raw_body(*media_types: str) -> dict[str, Any]:
    """``opt`` of a route handler that reads a required raw body of one of ``media_types``
    itself (an image upload): the document says so (binary strings), since the handler has no
    ``data`` parameter for the framework to describe."""
    return {RAW_BODY: tuple(media_types)}


RAW_RESPONSE: Final = "vk_raw_response"
"""The ``opt`` key of a route handler that answers raw bytes (an image) on success."""


def raw_response(*media_types: str) -> dict[str, Any]:
    """``opt`` of a route handler whose success response is binary, of one of ``media_types``
    (replacing what the framework generates for a file response)."""
    return {RAW_RESPONSE: tuple(media_types)}


def _binary(media_types: Iterable[str], *, min_length: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "format": "binary"}
    if min_length:
        schema["minLength"] = min_length
    return {media: {"schema": dict(schema)} for media in media_types}


def answers(*statuses: int) -> dict[str, Any]:
    """``opt`` of a route handler: the error statuses it answers besides the ones every route of
    its application shares (``opt=answers(404, 409)``)."""
    return {ERRORS: frozenset(statuses)}


@dataclass(frozen=True)
class Route:
    """One documented operation as its application routes it."""

    method: str
    """Upper case: ``GET``, ``POST``..."""
    path: str
    """As in the document: ``/api/tasks/{task_id}``."""
    path_params: bool
    declared: frozenset[int]
    """The statuses of :func:`answers` on the handler."""
    params: frozenset[str]
    """The names of the handler's parameters (``data``, ``principal``...)."""
    body: type | None
    """The handler's ``data`` when it is a msgspec Struct."""
    constraints: Mapping[str, Mapping[str, Any]]
    opt: Mapping[str, Any]

    def documented(
        self, errors: Iterable[int], auth: Literal["none", "required", "optional"]
    ) -> Operation:
        """This route's :class:`Operation`: ``errors`` and ``auth`` as its application decides,
        its body, parameter constraints and :func:`parameters` as the route says."""
        return Operation(
            frozenset(errors),
            auth,
            body=self.body,
            constraints=self.constraints,
            parameters=self.opt.get(PARAMETERS, {}),
            raw_body=self.opt.get(RAW_BODY, ()),
            raw_response=self.opt.get(RAW_RESPONSE, ()),
        )


_KEYWORDS: Final = (("ge", "minimum", int), ("le", "maximum", int), ("pattern", "pattern", str))


def _constraints(signature: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, parameter in signature.items():
        kwarg = getattr(parameter, "kwarg_definition", None)
        for attribute, keyword, kind in _KEYWORDS:
            value = getattr(kwarg, attribute, None)
            if isinstance(value, kind) and not isinstance(value, bool):
                found.setdefault(name, {})[keyword] = value
    return found


def routes_of(routes: Iterable[Any]) -> Iterator[Route]:
    """The documented operations of a Litestar application's ``app.routes`` (read by attribute,
    so this module needs no web framework)."""
    for route in routes:
        for handler in getattr(route, "route_handlers", ()):
            if not getattr(handler, "include_in_schema", False) or not hasattr(handler, "opt"):
                continue
            signature = handler.parsed_fn_signature.parameters
            data = getattr(signature.get("data"), "annotation", None)
            body = data if isinstance(data, type) and issubclass(data, msgspec.Struct) else None
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                yield Route(
                    method=method,
                    path=route.path_format,
                    path_params=bool(route.path_parameters),
                    declared=frozenset(handler.opt.get(ERRORS, ())),
                    params=frozenset(signature),
                    body=body,
                    constraints=_constraints(signature),
                    opt=handler.opt,
                )


@dataclass(frozen=True)
class Operation:
    """What an application knows about one operation that its generated document does not say."""

    errors: frozenset[int]
    """Every error status the operation can answer with."""
    auth: Literal["none", "required", "optional"] = "none"
    body: type | None = None
    """The msgspec Struct the request body decodes into: its schema is msgspec's own (the
    validation's constraints exactly, ``additionalProperties: false`` when it forbids unknown
    fields), not the framework's approximation."""
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Parameter objects replacing the generated ones, by name (:func:`parameters`)."""
    raw_body: tuple[str, ...] = ()
    """The media types of a required raw (binary) request body (:func:`raw_body`)."""
    raw_response: tuple[str, ...] = ()
    """The media types of a binary success response (:func:`raw_response`)."""
    constraints: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """JSON Schema keywords of parameters, by name: what the validation checks that the
    framework leaves out of the document (a ``pattern``) or rounds (integer bounds through a
    float)."""


def _problem_schema() -> dict[str, Any]:
    (schema,), components = msgspec.json.schema_components(
        [Problem], ref_template="#/components/schemas/{name}"
    )
    return dict(components[schema["$ref"].rsplit("/", 1)[-1]])


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": title_of(code_for_status(status)),
        "content": {MEDIA_TYPE: {"schema": {"$ref": _PROBLEM_REF}}},
    }


def _generic_error(response: Mapping[str, Any]) -> bool:
    """Litestar's own error response (``{status_code, detail, extra}``), which no route sends."""
    for media in response.get("content", {}).values():
        schema = media.get("schema", {})
        options = schema.get("oneOf", [schema])
        if any("status_code" in option.get("properties", {}) for option in options):
            return True
    return False


def _body_schemas(doc: dict[str, Any], bodies: set[type]) -> None:
    """msgspec's schemas of the request body types (and the types they use) replace the
    framework's, and every operation taking one refers to it by its name."""
    types = sorted(bodies, key=lambda t: t.__qualname__)
    refs, components = msgspec.json.schema_components(types, ref_template=_REF + "{name}")
    doc["components"]["schemas"].update(components)
    by_type = dict(zip(types, refs, strict=True))
    for item in doc.get("paths", {}).values():
        for spec in item.values():
            body_type = spec.pop(_BODY_TYPE, None) if isinstance(spec, dict) else None
            if body_type is not None and "requestBody" in spec:
                for media in spec["requestBody"].get("content", {}).values():
                    media["schema"] = by_type[body_type]


def _constrain(
    parameters: list[dict[str, Any]],
    constraints: Mapping[str, Any],
    documents: Mapping[str, Mapping[str, Any]],
) -> None:
    for parameter in parameters:
        name = parameter.get("name", "")
        parameter.setdefault("schema", {}).update(constraints.get(name, {}))
        parameter.update(documents.get(name, {}))


def finish(
    generated: Mapping[str, Any],
    operations: Mapping[tuple[str, str], Operation],
    *,
    scheme_description: str,
) -> dict[str, Any]:
    """A copy of ``generated`` with the facts of ``operations`` (keyed by lower-case method and
    the document's path) written in; operations not named keep only their success responses."""
    doc = copy.deepcopy(dict(generated))
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = _problem_schema()
    bodies: set[type] = set()
    components["securitySchemes"] = {
        SCHEME: {"type": "http", "scheme": "bearer", "description": scheme_description}
    }
    for path, item in doc.get("paths", {}).items():
        for method, spec in item.items():
            if not isinstance(spec, dict) or "responses" not in spec:
                continue
            facts = operations.get((method, path), Operation(frozenset()))
            responses = {k: v for k, v in spec["responses"].items() if not _generic_error(v)}
            responses.update({str(s): _error_response(s) for s in sorted(facts.errors)})
            spec["responses"] = responses
            if facts.auth == "required":
                spec["security"] = [{SCHEME: []}]
            elif facts.auth == "optional":
                spec["security"] = [{}, {SCHEME: []}]
            else:
                spec.pop("security", None)
            if facts.body is not None:
                bodies.add(facts.body)
                spec[_BODY_TYPE] = facts.body
            if facts.raw_body:
                content = _binary(facts.raw_body, min_length=1)
                spec["requestBody"] = {"required": True, "content": content}
            if facts.raw_response:
                for status, response in list(spec["responses"].items()):
                    if status.startswith("2"):
                        spec["responses"][status] = {
                            "description": response.get("description", "OK"),
                            "content": _binary(facts.raw_response),
                        }
            _constrain(spec.get("parameters", []), facts.constraints, facts.parameters)
    if bodies:
        _body_schemas(doc, bodies)
    return doc


_STATE_KEY: Final = "vk_openapi_document"


def exact(
    app: Any,
    generated: Mapping[str, Any],
    rule: Callable[[Route], Operation],
    *,
    scheme_description: str,
) -> dict[str, Any]:
    """The document of ``app`` (a Litestar application) with ``rule``'s facts about each of its
    routes written in by :func:`finish`; built once per application (kept in its state)."""
    document: dict[str, Any] | None = app.state.get(_STATE_KEY)
    if document is None:
        facts = {(r.method.lower(), r.path): rule(r) for r in routes_of(app.routes)}
        document = finish(generated, facts, scheme_description=scheme_description)
        app.state[_STATE_KEY] = document
    return document
