"""sync_protocol imports only the standard library and itself.

The package is the contract shared with phone teams and the reference client; it must run
anywhere Python runs, without the backend's dependencies. Parsing (not importing) the modules
also catches imports hidden in functions or behind TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sync_protocol"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _imported_roots(tree: ast.AST) -> list[tuple[int, str]]:
    roots = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module is not None:
                roots.append((node.lineno, node.module.split(".")[0]))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", ""))
            in ("__import__", "import_module")
        ):
            roots.append((node.lineno, "<dynamic import>"))
    return roots


def test_the_package_has_modules() -> None:
    names = {path.stem for path in MODULES}
    assert {"messages", "mutations", "cursor", "conflicts", "digest", "client", "store"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_only_stdlib_and_own_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    allowed = set(sys.stdlib_module_names) | {"sync_protocol"}
    bad = [(line, root) for line, root in _imported_roots(tree) if root not in allowed]
    assert bad == [], f"{path.name} imports outside the standard library: {bad}"


def test_the_checker_catches_a_third_party_import() -> None:
    tree = ast.parse("import os\nfrom pydantic import BaseModel\nfrom . import x\n")
    assert [root for _, root in _imported_roots(tree)] == ["os", "pydantic"]
