"""Every error code the service can return is documented, unique and snake_case."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import backend
from backend.core.errors import XunchaError

DOC = Path(__file__).resolve().parents[2] / "docs" / "api-errors.md"


def _all_error_classes() -> list[type[XunchaError]]:
    for module in pkgutil.walk_packages(backend.__path__, "backend."):
        importlib.import_module(module.name)
    found, todo = [], [XunchaError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_code_is_documented_and_well_formed() -> None:
    documented = DOC.read_text(encoding="utf-8")
    codes = {cls.code for cls in _all_error_classes()}
    assert len(codes) > 30
    for code in codes:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code), code
        assert f"`{code}`" in documented, f"{code} missing from docs/api-errors.md"


def test_sync_protocol_codes_are_documented() -> None:
    from sync_protocol.errors import ERROR_CODES

    documented = DOC.read_text(encoding="utf-8")
    missing = [code for code in ERROR_CODES if f"`{code}`" not in documented]
    assert missing == []


def test_codes_are_not_reused_for_different_statuses() -> None:
    by_code: dict[str, set[int]] = {}
    for cls in _all_error_classes():
        by_code.setdefault(cls.code, set()).add(cls.status)
    assert {c: s for c, s in by_code.items() if len(s) > 1} == {}
