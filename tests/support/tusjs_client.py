"""Running the official tus-js-client (Node.js) from tests.

Its npm dependencies are pinned by tests/support/tusjs/package-lock.json and installed with
`npm ci` the first time a test needs them (under a file lock: xdist workers share the folder).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).parent / "tusjs"


class NodeUnavailable(RuntimeError):
    pass


def ensure_installed() -> Path:
    """The folder with tus-js-client installed; NodeUnavailable when node/npm cannot run it."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise NodeUnavailable("node and npm are needed for the tus-js-client tests")
    with open(FOLDER / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (FOLDER / "node_modules" / "tus-js-client" / "package.json").exists():
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=FOLDER,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode != 0:
                raise NodeUnavailable(f"npm ci failed: {done.stderr.strip()[-500:]}")
    return FOLDER


def upload(
    endpoint: str,
    file: Path,
    token: str,
    metadata: dict[str, str],
    chunk_size: int,
    stop_offsets: list[int],
) -> dict[str, Any]:
    """Upload ``file``, aborting at each of ``stop_offsets`` and resuming; the script's JSON."""
    folder = ensure_installed()
    done = subprocess.run(
        [
            "node",
            str(folder / "upload.mjs"),
            endpoint,
            str(file),
            token,
            json.dumps(metadata),
            str(chunk_size),
            ",".join(str(offset) for offset in stop_offsets),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise AssertionError(f"tus-js-client printed nothing; stderr: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
