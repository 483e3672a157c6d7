"""vk_shared depends on msgspec and the standard library only (DESIGN.md §1)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import vk_shared

PACKAGE_DIR = Path(vk_shared.__file__).resolve().parent
ALLOWED = set(sys.stdlib_module_names) | {"msgspec", "vk_shared", "__future__"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_vk_shared_imports_only_msgspec_and_the_standard_library() -> None:
    """No module of vk_shared imports a third-party package other than msgspec."""
    modules = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(modules) >= 8
    offenders = {
        str(path.relative_to(PACKAGE_DIR)): sorted(_imported_roots(path) - ALLOWED)
        for path in modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}
