#!/usr/bin/env python3
"""Write openapi.yaml from the app (a test fails when the committed file drifts).

Usage: python scripts/export_openapi.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = ROOT / "openapi.yaml"


def render() -> str:
    import tempfile

    import yaml

    from backend.app import create_app
    from backend.core.settings import load_settings

    # The schema does not depend on the profile; a throwaway var dir keeps this side-effect free.
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(load_settings(var_dir=Path(tmp)))
        spec = app.openapi()
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(
                "openapi.yaml is out of date: run python scripts/export_openapi.py", file=sys.stderr
            )
            return 1
        print("openapi.yaml is up to date")
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
