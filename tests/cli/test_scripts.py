"""The patrol simulation runs end to end over real HTTP and reports success."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_patrol_converges(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "simulate_patrol.py"),
            "--inspectors",
            "2",
            "--phones-per-inspector",
            "2",
            "--steps",
            "8",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] and summary["phones"] == 4 and summary["reports_made"] > 0
    assert summary["outbox_left"] == 0 and summary["reports_missing_on_server"] == 0
