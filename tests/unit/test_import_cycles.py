"""No module of vk_shared, vk_node or vk_hive imports, even only for type checking or inside a
function, a module that imports it back (directly or through others)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vk_hive
import vk_node
import vk_shared


def _modules(package: Path) -> dict[str, Path]:
    root = package.parent
    out: dict[str, Path] = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules ``name`` imports anywhere in its body."""
    found: set[str] = set()

    def owner(module: str) -> str | None:
        while module and module not in known:
            module = module.rpartition(".")[0]
        return module or None

    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(m for a in node.names if (m := owner(a.name)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                target = owner(f"{base}.{alias.name}") or owner(base)
                if target:
                    found.add(target)
    # Importing a submodule runs its package's __init__: that edge is no cycle of its own.
    return {m for m in found if m != name and not name.startswith(m + ".")}


def _cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: set[frozenset[str]] = set()
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.add(frozenset(component))
    return out


def _graph(directory: Path) -> dict[str, set[str]]:
    known = _modules(directory)
    return {name: _imports(name, path, known) for name, path in known.items()}


@pytest.mark.parametrize("package", [vk_shared, vk_node, vk_hive], ids=lambda p: p.__name__)
def test_no_import_cycles(package: object) -> None:
    """The package's modules import each other without a cycle."""
    graph = _graph(Path(getattr(package, "__file__", "")).parent)
    assert len(graph) >= 10  # the package was found and read
    assert _cycles(graph) == set()


def test_the_gateway_interfaces_depend_on_no_other_gateway_module() -> None:
    """The gateway's identity and ports, which every gateway module uses, import no other
    gateway module but the identity, so any module may depend on them."""
    graph = _graph(Path(vk_hive.__file__).parent)

    def gateway(name: str) -> set[str]:
        return {m for m in graph[name] if m.startswith("vk_hive.gateway")}

    assert gateway("vk_hive.gateway.identity") == set()
    assert gateway("vk_hive.gateway.ports") == {"vk_hive.gateway.identity"}


def test_a_cycle_through_a_type_checking_import_is_found(tmp_path: Path) -> None:
    """The check sees a cycle that exists only for the type checker (the shape the gateway's
    session and handlers once had)."""
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "session.py").write_text("from pkg import handlers\n")
    (root / "handlers.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.session import S\n"
    )
    assert _cycles(_graph(root)) == {frozenset({"pkg.handlers", "pkg.session"})}
