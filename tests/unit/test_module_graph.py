"""The hive's node gateway and the node's hive link have no import cycle between their modules,
counting imports under ``TYPE_CHECKING`` (a cycle there is a design cycle all the same)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vk_hive.gateway
import vk_node.link


def _module_name(package: str, path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([package, *parts])


def _edges(package: str, root: Path) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports (explicitly: a submodule's implicit
    import of its package's ``__init__`` is not an edge)."""
    modules = {_module_name(package, p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from pkg import sub`` imports the module ``pkg.sub`` when there is one,
                # else a name defined in ``pkg``'s ``__init__``.
                targets = [
                    f"{node.module}.{a.name}"
                    if f"{node.module}.{a.name}" in modules
                    else node.module
                    for a in node.names
                ]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, if there is any."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


@pytest.mark.parametrize("package", [vk_hive.gateway, vk_node.link], ids=lambda p: p.__name__)
def test_the_package_has_no_import_cycle(package: object) -> None:
    """Following every import between the package's modules never leads back to the start."""
    root = Path(package.__file__).resolve().parent  # type: ignore[attr-defined]
    graph = _edges(package.__name__, root)  # type: ignore[attr-defined]
    assert len(graph) >= 8  # the package was found and read
    assert _cycle(graph) is None


def test_the_gateway_interfaces_depend_on_no_other_gateway_module() -> None:
    """The identity and the ports every gateway module uses import no gateway module but the
    identity, so any module may depend on them."""
    root = Path(vk_hive.gateway.__file__).resolve().parent
    graph = _edges("vk_hive.gateway", root)
    assert graph["vk_hive.gateway.identity"] == set()
    assert graph["vk_hive.gateway.ports"] == {"vk_hive.gateway.identity"}


def test_a_cycle_through_a_type_checking_import_is_found(tmp_path: Path) -> None:
    """The check sees a cycle that exists only for the type checker (the gateway's former
    session → handlers → session shape)."""
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "session.py").write_text("from pkg import handlers\n")
    (root / "handlers.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.session import S\n"
    )
    assert _cycle(_edges("pkg", root)) == ["pkg.handlers", "pkg.session", "pkg.handlers"]
