"""What both applications' OpenAPI documents promise for every operation, checked in one place."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["METHODS", "checked_operations"]

METHODS = ("get", "put", "post", "patch", "delete")


def checked_operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], set[str]]]:
    """Every operation as ``(method, path, operation, error statuses)``, after checking what all
    must say: each 4xx/5xx is the Problem schema as application/problem+json, 400 and 413 are
    listed, ids in paths are UUIDs and a JSON body schema refuses unknown fields."""
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            where = f"{method.upper()} {path}"
            errors = {code for code in op["responses"] if code[0] in "45"}
            for code in errors:
                content = op["responses"][code]["content"]
                if code != "503":  # a degraded health report keeps its own body
                    assert list(content) == ["application/problem+json"], where
                    schema = content["application/problem+json"]["schema"]
                    assert schema["$ref"].endswith("/Problem"), where
            assert {"400", "413"} <= errors, where
            for parameter in op.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                    assert parameter["schema"]["format"] == "uuid", where
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "$ref" in body["schema"]:
                name = body["schema"]["$ref"].rsplit("/", 1)[-1]
                assert doc["components"]["schemas"][name]["additionalProperties"] is False, where
            yield method, path, op, errors
