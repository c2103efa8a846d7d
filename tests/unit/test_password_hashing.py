"""The service hashes passwords with argon2's standard parameters unless a test run asks for
the cheap ones (tests/conftest.py does, to save minutes); hashes verify across both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import argon2.profiles

from backend.accounts import security

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json
from argon2 import extract_parameters
from backend.accounts import security
made = security.hash_password("correct horse")
p = extract_parameters(made)
print(json.dumps({"fast": security.FAST_HASHES, "time_cost": p.time_cost,
                  "memory_cost": p.memory_cost, "hash": made}))
"""


def _probe(**env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if k != security.FAST_HASHES_ENV}
    answer = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, cwd=ROOT,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(answer.stdout)
    return result


def test_the_service_default_is_rfc_9106_low_memory() -> None:
    standard = _probe()
    low_memory = argon2.profiles.RFC_9106_LOW_MEMORY
    assert standard["fast"] is False
    assert standard["time_cost"] == low_memory.time_cost
    assert standard["memory_cost"] == low_memory.memory_cost
    # A hash made with the standard parameters verifies in this (fast) test process.
    assert security.verify_password(str(standard["hash"]), "correct horse")
    assert not security.verify_password(str(standard["hash"]), "wrong horse")


def test_only_the_exact_opt_in_makes_hashes_cheap() -> None:
    assert _probe(**{security.FAST_HASHES_ENV: "1"})["fast"] is True
    assert _probe(**{security.FAST_HASHES_ENV: "yes"})["fast"] is False
