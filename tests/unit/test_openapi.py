"""The committed openapi.yaml is exactly what the app generates, and it is well-formed."""

from __future__ import annotations

import yaml
from openapi_spec_validator import validate

from scripts.export_openapi import TARGET, render


def test_openapi_yaml_matches_the_app() -> None:
    assert TARGET.read_text(encoding="utf-8") == render(), (
        "openapi.yaml drifted from the app: run `python scripts/export_openapi.py`"
    )


def test_openapi_is_valid_and_operations_are_named() -> None:
    spec = yaml.safe_load(render())
    validate(spec)
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            assert operation.get("operationId"), f"{method.upper()} {path} has no operationId"
            assert operation.get("description") or operation.get("summary"), (method, path)
