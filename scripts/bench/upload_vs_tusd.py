#!/usr/bin/env python3
"""Benchmark: photo uploads through our tus endpoint next to @tus/server (Node), same run.

Three measurements on the same synthetic 12-megapixel JPEGs (4000 × 3000, a noisy gradient
from ``backend.media.bench.synthetic_photo`` at σ = 12, quality 90, EXIF with GPS at the
report's location and the capture time: ~4.2 MB each, generated once into a temp dir):

1. **tus throughput.** ``--photos`` uploads (60), ``--parallel`` at a time (4), each a
   creation POST then PATCHes of ``--chunk-mib`` (1 MiB), by ONE client written here
   (``http.client``, one kept-alive connection per thread, TCP_NODELAY, bodies from memory)
   against

   * ours: ``xuncha serve`` (uvicorn, the embedded profile: SQLite + local object directory
     in a temp var dir, migrated, demo city seeded) in its own process, with the in-process
     job worker off (``XUNCHA_WORKER_IN_PROCESS=false``) so no rendition runs meanwhile. The
     last PATCH of each photo verifies it (SHA-256 against the report's declaration, type
     sniffing, header and structure, EXIF, evidence checks) and publishes the
     original: that is part of our work and stays in the measurement;
   * the peer: a plain ``@tus/server`` 2.4.5 + ``@tus/file-store`` 2.1.1 on Node
     (``scripts/bench/tus_node_peer/``, installed with ``npm ci`` when missing), loopback.

   Both get byte-for-byte the same requests (Tus-Resumable, Upload-Length, Upload-Metadata
   with photo_id/filename/filetype, Authorization with our device token — the peer ignores
   it — Content-Type and Upload-Offset); no Upload-Checksum (the peer does not implement the
   checksum extension). Throughput = total bytes / wall time from the first POST to the last
   PATCH response, in MB/s (10^6 bytes). Each server first gets a 4-photo warm-up; dirty
   pages are flushed (``os.sync``) before each measured run. Afterwards every photo must be
   ``stored`` on our side (GET /api/v1/photos/{id}) and every peer file must have the
   photo's size and SHA-256.

2. **Direct (presigned) upload, server time per photo**, ``--direct`` photos one after the
   other: ``POST /photos/{id}/upload-target`` + ``POST /photos/{id}/complete`` as the
   client sees them (median, p95); the PUT of the bytes (to our own /api/v1/media/direct/…
   on the embedded profile) is timed separately.

3. **Rendition CPU per photo**, in this process after the servers are stopped:
   ``backend.media.renditions.make_renditions`` on ``--renditions`` of the JPEG files,
   ``time.process_time`` per call, median; next to a naive Pillow pipeline on the same files
   in the same loop (open, full ``load()``, ``ImageOps.exif_transpose``, ``thumbnail`` to
   1280 and to 320 from the full image, both encoded as JPEG at our qualities 82/75).

The last line printed is one JSON object with the figures, ratios and targets (tus ≥ 1.0×
the peer; rendition ≤ 30 ms CPU per 12-MP JPEG). Progress goes to stderr.

``--rounds N`` repeats the measured tus run N times per server (new photos for us each time:
the same pictures with a JPEG comment, as a stored photo is not uploaded again), alternating
which server goes first; the figures are then medians, with every run's MB/s listed.

Usage: python scripts/bench/upload_vs_tusd.py [--photos 60] [--parallel 4] [--chunk-mib 1]
       [--rounds 1] [--direct 20] [--renditions 30] [--skip-peer] [--keep DIR]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import io
import json
import os
import platform
import queue
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import PIL  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from backend.media.bench import synthetic_photo  # noqa: E402
from backend.media.renditions import (  # noqa: E402
    PREVIEW_MAX_SIDE,
    PREVIEW_QUALITY,
    THUMBNAIL_MAX_SIDE,
    THUMBNAIL_QUALITY,
    make_renditions,
)
from sync_protocol.client import SyncClient  # noqa: E402
from sync_protocol.transport import UrllibTransport  # noqa: E402
from tests.support.photos import dms  # noqa: E402
from tests.unit.test_media_samples import exif_bytes  # noqa: E402

PEER_DIR = Path(__file__).resolve().parent / "tus_node_peer"
MB = 1_000_000
MIB = 1 << 20
NOISE = 12.0  # σ of the synthetic photo's noise: ~4.2 MB at quality 90
WIDTH, HEIGHT = 4000, 3000
WARMUP = 4
TARGET_TUS_RATIO = 1.0
TARGET_RENDITION_MS = 30.0
PEER_REFERENCE_MB_S = 262  # what the peer reached on this 2-core machine before
SHANGHAI = ZoneInfo("Asia/Shanghai")

console = Console(stderr=True)


def log(message: str) -> None:
    console.print(message, highlight=False)


# -- photos ------------------------------------------------------------------------------------


@dataclass
class Photo:
    label: str
    data: bytes
    path: Path
    sha256: str = ""
    photo_id: str = ""

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.data).hexdigest()

    def declaration(self) -> dict[str, Any]:
        return {
            "photo_id": self.photo_id,
            "sha256": self.sha256,
            "size": len(self.data),
            "content_type": "image/jpeg",
        }


def _encode_photo(seed: int, lon: float, lat: float, taken: str, path: str) -> None:
    """One 12-MP JPEG with phone-like EXIF (runs in a worker process)."""
    exif = exif_bytes(
        orientation=1,
        lat=dms(lat),
        lon=dms(lon),
        accuracy=5.0,
        taken=taken,
        offset="+08:00",
        make="HUAWEI",
        model="ALN-AL00",
    )
    img = synthetic_photo(WIDTH, HEIGHT, NOISE, seed=seed)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, exif=exif)
    Path(path).write_bytes(out.getvalue())


def make_photos(count: int, lon: float, lat: float, directory: Path) -> list[Photo]:
    directory.mkdir(parents=True, exist_ok=True)
    taken = datetime.now(SHANGHAI).strftime("%Y:%m:%d %H:%M:%S")
    paths = [directory / f"IMG_{i:04d}.jpg" for i in range(count)]
    with (
        Progress(
            "[bold]making photos",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
        ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
    ):
        task = progress.add_task("photos", total=count)
        futures = [
            pool.submit(_encode_photo, 1000 + i, lon, lat, taken, str(path))
            for i, path in enumerate(paths)
        ]
        for future in futures:
            future.result()
            progress.advance(task)
    return [Photo(path.stem, path.read_bytes(), path) for path in paths]


def variant(photo: Photo, label: str, directory: Path) -> Photo:
    """The same picture with a JPEG comment (COM) after SOI: other bytes, other SHA-256."""
    text = label.encode()
    data = photo.data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + photo.data[2:]
    path = directory / f"{label}.jpg"
    path.write_bytes(data)
    return Photo(label, data, path)


# -- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_cpu_s(pid: int) -> float | None:
    """utime + stime of a process and its live children (Linux /proc): the server's CPU
    during a run, uvicorn's worker processes included."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    found = False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # itself, or its child
            found = found or stat.parent.name == str(pid)
            total += int(fields[11]) + int(fields[12])
    return total / ticks if found else None


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def cpu_s(self) -> float | None:
        return process_cpu_s(self.process.pid)

    def fail(self, message: str) -> SystemExit:
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        return SystemExit(f"{self.name}: {message}\n--- server log ---\n{tail}")


def wait_until(server: ServerProcess, ready: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise server.fail(f"exited with {server.process.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if ready():
                return
        time.sleep(0.1)
    raise server.fail(f"not ready after {timeout_s} s")


def start_ours(var: Path, workers: int = 1) -> tuple[ServerProcess, int]:
    """Migrate and seed the demo city here, then ``xuncha serve`` in its own process."""
    from backend.cli.serve import _prepare_schema
    from backend.core.runtime import Runtime
    from backend.core.settings import load_settings
    from backend.demo.seed import seed_demo

    env = {
        **os.environ,
        "XUNCHA_PROFILE": "embedded",
        "XUNCHA_VAR_DIR": str(var),
        "XUNCHA_WORKER_IN_PROCESS": "false",
        "XUNCHA_LOG_LEVEL": "WARNING",
        "XUNCHA_DEVICE_TOKEN_MINUTES": "120",
    }
    for name in ("XUNCHA_DATABASE_URL", "XUNCHA_OBJECT_STORE", "XUNCHA_OBJECTS_DIR"):
        env.pop(name, None)
    settings = load_settings(
        profile="embedded",
        var_dir=var,
        database_url=f"sqlite:///{(var / 'xuncha.sqlite3').as_posix()}",
        object_store="local",
        objects_dir=var / "objects",
        worker_in_process=False,
    )
    with console.status("ours: migrating and seeding the demo city"):
        _prepare_schema(settings, always_migrate=True)
        runtime = Runtime.build(settings)
        try:
            seed_demo(runtime)
        finally:
            runtime.close()
    port = free_port()
    log_path = var / "server.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from backend.cli.main import main; main()",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess("ours", process, log_path)

    def healthy() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    wait_until(server, healthy)
    log(
        f"ours: xuncha serve --workers {workers} (pid {process.pid}) at "
        f"http://127.0.0.1:{port}, job worker off"
    )
    return server, port


def ensure_peer_installed() -> None:
    if (PEER_DIR / "node_modules" / "@tus" / "server" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed for the peer (or pass --skip-peer)")
    with console.status("peer: npm ci"):
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PEER_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"npm ci failed in {PEER_DIR}: {done.stderr.strip()[-1000:]}")


def start_peer(files: Path, logs: Path) -> tuple[ServerProcess, int]:
    ensure_peer_installed()
    port = free_port()
    log_path = logs / "peer.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            ["node", str(PEER_DIR / "server.mjs"), str(port), str(files)],
            cwd=PEER_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess("peer", process, log_path)
    wait_until(server, lambda: "ready" in log_path.read_text(errors="replace"))
    log(f"peer: @tus/server + FileStore on node (pid {process.pid}) at 127.0.0.1:{port}")
    return server, port


def node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


# -- the phone: enrollment and reports declaring the photos ------------------------------------


def enroll_phone(base: str, store: Path) -> tuple[SyncClient, dict[str, Any]]:
    """inspector01 of the demo city with a fresh phone; a location inside one of its grids."""
    http = UrllibTransport(base)
    token = http.request(
        "POST", "/api/v1/auth/token", {"username": "admin", "password": "xuncha-demo"}, {}
    )
    if token.status != 200 or not isinstance(token.body, dict):
        raise SystemExit(f"cannot log in as admin: HTTP {token.status}")
    admin = {"Authorization": f"Bearer {token.body['access_token']}"}
    users = http.request("GET", "/api/v1/users", None, admin).body["items"]  # type: ignore[index]
    user = next(u for u in users if u["username"] == "inspector01")
    code = http.request("POST", f"/api/v1/users/{user['id']}/enrollment-codes", None, admin).body[
        "code"  # type: ignore[index]
    ]
    phone = SyncClient.enroll(store, UrllibTransport(base), code, "bench phone", "android", "1.0.0")
    phone.pull()
    grid = next(iter(phone.records("grid").values()))
    ring = grid["geometry"]["coordinates"][0][0]  # type: ignore[index]
    lon = sum(p[0] for p in ring[:-1]) / (len(ring) - 1)
    lat = sum(p[1] for p in ring[:-1]) / (len(ring) - 1)
    location = {
        "lon": round(lon, 7),
        "lat": round(lat, 7),
        "crs": "wgs84",
        "accuracy_m": 5.0,
        "fix_time": datetime.now(SHANGHAI).isoformat(timespec="seconds"),
        "provider": "gps",
    }
    return phone, location


def declare(phone: SyncClient, photos: list[Photo], location: dict[str, Any]) -> None:
    """One report per photo (as a phone does for single-photo reports), pushed."""
    for photo in photos:
        photo.photo_id = str(uuid.uuid4())
        phone.create_report("0504", "店外经营", "基准测试", location, photos=[photo.declaration()])
    outcome = phone.push()
    refused = [r for r in outcome.results if r.status.value != "applied"]
    if refused or phone.pending():
        raise SystemExit(f"declaring the photos failed: {refused[:3]} ({outcome.error})")


def device_token(phone: SyncClient) -> str:
    # The benchmark reaches into the reference client for its token, as the API tests do.
    credentials = phone._store.credentials()
    assert credentials is not None and credentials.access_token
    return credentials.access_token


# -- the one tus client used against both servers ----------------------------------------------


class Connection(http.client.HTTPConnection):
    """Keep-alive HTTP/1.1 with Nagle off (headers and body go out in separate sends)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True)
class Endpoint:
    name: str
    port: int
    create_path: str
    headers: dict[str, str]


@dataclass
class Uploaded:
    photo: Photo
    location: str
    started: float
    finished: float
    patch_ms: list[float] = field(default_factory=list)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _answer(conn: Connection, expected: int, what: str) -> tuple[http.client.HTTPMessage, bytes]:
    answer = conn.getresponse()
    body = answer.read()  # always drained: the connection is reused
    if answer.status != expected:
        raise RuntimeError(f"{what}: HTTP {answer.status} {body[:300]!r}")
    return answer.headers, body


def tus_upload(conn: Connection, endpoint: Endpoint, photo: Photo, chunk: int) -> Uploaded:
    headers = {
        "Tus-Resumable": "1.0.0",
        **endpoint.headers,
    }
    metadata = ",".join(
        f"{k} {_b64(v)}"
        for k, v in (
            ("photo_id", photo.photo_id),
            ("filename", photo.path.name),
            ("filetype", "image/jpeg"),
        )
    )
    size = len(photo.data)
    started = time.perf_counter()
    conn.request(
        "POST",
        endpoint.create_path,
        headers={
            **headers,
            "Upload-Length": str(size),
            "Upload-Metadata": metadata,
            "Content-Length": "0",
        },
    )
    location = _answer(conn, 201, f"{endpoint.name} POST {photo.label}")[0]["Location"]
    path = urlsplit(location).path
    done = Uploaded(photo, location, started, 0.0)
    view = memoryview(photo.data)
    offset = 0
    while offset < size:
        piece = view[offset : offset + chunk]
        sent = time.perf_counter()
        conn.request(
            "PATCH",
            path,
            body=piece,
            headers={
                **headers,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
                "Content-Length": str(len(piece)),
            },
        )
        answer, _ = _answer(conn, 204, f"{endpoint.name} PATCH {photo.label} at {offset}")
        done.patch_ms.append((time.perf_counter() - sent) * 1000)
        offset += len(piece)
        if int(answer["Upload-Offset"]) != offset:
            raise RuntimeError(f"{endpoint.name}: server offset {answer['Upload-Offset']}")
    done.finished = time.perf_counter()
    return done


def run_tus(
    endpoint: Endpoint,
    photos: list[Photo],
    parallel: int,
    chunk: int,
    title: str,
    server: ServerProcess | None = None,
) -> dict[str, Any]:
    jobs: queue.SimpleQueue[Photo] = queue.SimpleQueue()
    for photo in photos:
        jobs.put(photo)
    results: list[Uploaded] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    gate = threading.Barrier(parallel)

    with Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=4,
    ) as progress:
        task = progress.add_task(title, total=len(photos))

        def worker() -> None:
            conn = Connection("127.0.0.1", endpoint.port, timeout=120)
            try:
                conn.connect()
                gate.wait()
                while not errors:
                    try:
                        photo = jobs.get_nowait()
                    except queue.Empty:
                        return
                    uploaded = tus_upload(conn, endpoint, photo, chunk)
                    with lock:
                        results.append(uploaded)
                    progress.advance(task)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
                with contextlib.suppress(threading.BrokenBarrierError):
                    gate.abort()
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(parallel)]
        cpu_client, cpu_server = time.process_time(), server.cpu_s() if server else None
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu_client = time.process_time() - cpu_client
        if server is not None and cpu_server is not None:
            after = server.cpu_s()
            cpu_server = None if after is None else after - cpu_server
    if errors:
        raise errors[0]
    total = sum(len(r.photo.data) for r in results)
    wall = max(r.finished for r in results) - min(r.started for r in results)
    middle = [ms for r in results for ms in r.patch_ms[:-1]]
    last = [r.patch_ms[-1] for r in results]
    return {
        "uploads": results,
        "bytes": total,
        "wall_s": wall,
        "mb_s": total / MB / wall,
        "patch_ms_median": statistics.median(middle) if middle else None,
        "last_patch_ms_median": statistics.median(last),
        "last_patch_ms_p95": p95(last),
        "client_cpu_s": cpu_client,
        "server_cpu_s": cpu_server,
    }


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


# -- verification ------------------------------------------------------------------------------


def verify_ours(port: int, token: str, uploads: list[Uploaded]) -> int:
    conn = Connection("127.0.0.1", port, timeout=60)
    stored = 0
    try:
        for up in uploads:
            conn.request(
                "GET",
                f"/api/v1/photos/{up.photo.photo_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
            answer = conn.getresponse()
            body = json.loads(answer.read())
            if (
                answer.status == 200
                and body["state"] == "stored"
                and body["uploaded_via"] == "tus"
                and body["sha256"] == up.photo.sha256
                and (body["width"], body["height"]) == (WIDTH, HEIGHT)
                and body["exif"].get("gps_lat") is not None
            ):
                stored += 1
            else:
                log(f"[red]ours: photo {up.photo.label} not stored as expected: {body}")
    finally:
        conn.close()
    return stored


def verify_peer(files: Path, uploads: list[Uploaded]) -> int:
    good = 0
    for up in uploads:
        path = files / urlsplit(up.location).path.rsplit("/", 1)[1]
        data = path.read_bytes() if path.is_file() else b""
        if len(data) == len(up.photo.data) and hashlib.sha256(data).hexdigest() == up.photo.sha256:
            good += 1
        else:
            log(f"[red]peer: {path.name} has {len(data)} bytes, expected {len(up.photo.data)}")
    return good


# -- direct (presigned) upload -----------------------------------------------------------------


def run_direct(port: int, token: str, photos: list[Photo]) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    conn = Connection("127.0.0.1", port, timeout=120)
    target_ms: list[float] = []
    complete_ms: list[float] = []
    put_ms: list[float] = []
    try:
        with Progress(
            "[bold]ours: direct upload",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=4,
        ) as progress:
            task = progress.add_task("direct", total=len(photos))
            for photo in photos:
                body = json.dumps(
                    {"sha256": photo.sha256, "size": len(photo.data), "content_type": "image/jpeg"}
                ).encode()
                started = time.perf_counter()
                conn.request(
                    "POST",
                    f"/api/v1/photos/{photo.photo_id}/upload-target",
                    body=body,
                    headers={**auth, "Content-Type": "application/json"},
                )
                target = json.loads(_answer(conn, 200, f"upload-target {photo.label}")[1])
                target_ms.append((time.perf_counter() - started) * 1000)
                url = urlsplit(target["url"])
                if url.port != port:
                    raise RuntimeError(f"the direct target is not our own API: {target['url']}")
                started = time.perf_counter()
                conn.request(
                    target["method"],
                    url.path + (f"?{url.query}" if url.query else ""),
                    body=photo.data,
                    headers=target["headers"],
                )
                _answer(conn, 204, f"PUT {photo.label}")
                put_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                conn.request("POST", f"/api/v1/photos/{photo.photo_id}/complete", headers=auth)
                done = json.loads(_answer(conn, 200, f"complete {photo.label}")[1])
                complete_ms.append((time.perf_counter() - started) * 1000)
                if done["state"] != "stored":
                    raise RuntimeError(f"complete {photo.label}: {done['state']}")
                progress.advance(task)
    finally:
        conn.close()
    server_ms = [a + b for a, b in zip(target_ms, complete_ms, strict=True)]
    size = statistics.mean(len(p.data) for p in photos)
    return {
        "photos": len(photos),
        "server_ms_median": statistics.median(server_ms),
        "server_ms_p95": p95(server_ms),
        "target_ms_median": statistics.median(target_ms),
        "complete_ms_median": statistics.median(complete_ms),
        "complete_ms_p95": p95(complete_ms),
        "put_ms_median": statistics.median(put_ms),
        "put_ms_p95": p95(put_ms),
        "put_mb_s_median": size / MB / (statistics.median(put_ms) / 1000),
    }


# -- renditions --------------------------------------------------------------------------------


def naive_renditions(path: Path) -> tuple[bytes, bytes]:
    """What one would write without thinking about speed: decode all, then shrink twice."""
    with Image.open(path) as img:
        img.load()
        upright = ImageOps.exif_transpose(img)
    out = []
    for side, quality in (
        (PREVIEW_MAX_SIDE, PREVIEW_QUALITY),
        (THUMBNAIL_MAX_SIDE, THUMBNAIL_QUALITY),
    ):
        small = upright.copy()
        small.thumbnail((side, side))
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=quality, progressive=True)
        out.append(buffer.getvalue())
    return out[0], out[1]


def run_renditions(paths: list[Path]) -> dict[str, Any]:
    make_renditions(paths[0], "image/jpeg")  # lazy imports, caches
    naive_renditions(paths[0])
    ours: list[float] = []
    naive: list[float] = []
    with Progress(
        "[bold]renditions (ours, naive)",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=4,
    ) as progress:
        task = progress.add_task("renditions", total=len(paths))
        for path in paths:
            started = time.process_time()
            made = make_renditions(path, "image/jpeg")
            ours.append((time.process_time() - started) * 1000)
            started = time.process_time()
            naive_renditions(path)
            naive.append((time.process_time() - started) * 1000)
            assert made.preview_size == (1280, 960) and made.thumbnail_size == (320, 240)
            progress.advance(task)
    ours_ms, naive_ms = statistics.median(ours), statistics.median(naive)
    return {
        "photos": len(paths),
        "ours_cpu_ms_median": ours_ms,
        "ours_cpu_ms_p95": p95(ours),
        "naive_cpu_ms_median": naive_ms,
        "ratio_naive_over_ours": naive_ms / ours_ms,
    }


# -- the run -----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=60, help="photos in the measured tus run")
    parser.add_argument("--parallel", type=int, default=4, help="uploads at the same time")
    parser.add_argument("--chunk-mib", type=float, default=1.0, help="PATCH size in MiB")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measured tus runs per server, alternating which goes first (figures: median)",
    )
    parser.add_argument(
        "--direct", type=int, default=20, help="photos for the direct path (0: skip)"
    )
    parser.add_argument(
        "--renditions", type=int, default=30, help="photos for rendition CPU (0: skip)"
    )
    parser.add_argument("--skip-peer", action="store_true", help="measure ours only")
    parser.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="uvicorn worker processes for ours (the peer is one Node process)",
    )
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args()
    if min(args.photos, args.parallel, args.rounds) < 1 or args.chunk_mib <= 0:
        parser.error("--photos, --parallel, --rounds and --chunk-mib must be positive")
    return args


@contextlib.contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="xuncha-upload-bench-") as tmp:
        yield Path(tmp)


def r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def rounded(values: dict[str, Any], digits: int = 2) -> dict[str, Any]:
    return {k: (r(v, digits) if isinstance(v, float) else v) for k, v in values.items()}


def loadavg() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def summary(runs: list[dict[str, Any]], verified: int) -> dict[str, Any]:
    """The run with the median MB/s (the lower middle one for an even count), all MB/s."""
    ordered = sorted(runs, key=lambda run: run["mb_s"])
    mid = ordered[(len(ordered) - 1) // 2]
    return {
        "mb_s": r(statistics.median(run["mb_s"] for run in runs)),
        "mb_s_runs": [r(run["mb_s"]) for run in runs],
        "bytes": mid["bytes"],
        "wall_s": r(mid["wall_s"], 3),
        "patch_ms_median": r(mid["patch_ms_median"], 2),
        "last_patch_ms_median": r(mid["last_patch_ms_median"], 2),
        "last_patch_ms_p95": r(mid["last_patch_ms_p95"], 2),
        "server_cpu_s": r(mid["server_cpu_s"], 2),
        "server_cpu_ms_per_photo": None
        if mid["server_cpu_s"] is None
        else r(mid["server_cpu_s"] * 1000 / len(mid["uploads"])),
        "client_cpu_s": r(mid["client_cpu_s"], 2),
        "verified": verified,
        "uploads": sum(len(run["uploads"]) for run in runs),
    }


def log_run(name: str, run: dict[str, Any]) -> None:
    log(
        f"{name}: {run['mb_s']:.1f} MB/s ({run['bytes'] / MB:.0f} MB in {run['wall_s']:.2f} s), "
        f"PATCH median {run['patch_ms_median']:.1f} ms, last PATCH median "
        f"{run['last_patch_ms_median']:.1f} ms, server CPU {run['server_cpu_s'] or 0:.2f} s"
    )


def main() -> None:
    args = parse_args()
    chunk = int(args.chunk_mib * MIB)
    servers: list[ServerProcess] = []
    figures: dict[str, Any] = {
        "benchmark": "upload_vs_tusd",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "pillow": PIL.__version__,
            "node": node_version(),
            "loadavg_at_start": loadavg(),
        },
        "work": {
            "photos": args.photos,
            "parallel": args.parallel,
            "chunk_bytes": chunk,
            "rounds": args.rounds,
            "our_server_workers": args.server_workers,
            "photo": f"{WIDTH}x{HEIGHT} JPEG q90, noise sigma {NOISE}, EXIF GPS",
        },
    }
    mine: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    with workdir(args.keep) as tmp:
        try:
            ours, our_port = start_ours(tmp / "ours", args.server_workers)
            servers.append(ours)
            phone, location = enroll_phone(f"http://127.0.0.1:{our_port}", tmp / "phone.sqlite3")
            photos = make_photos(args.photos, location["lon"], location["lat"], tmp / "photos")
            sizes = [len(p.data) for p in photos]
            figures["work"]["photo_mb_mean"] = round(statistics.mean(sizes) / MB, 2)
            log(
                f"{len(photos)} photos, {statistics.mean(sizes) / MB:.2f} MB on average "
                f"({min(sizes) / MB:.2f}-{max(sizes) / MB:.2f})"
            )
            extra = tmp / "variants"
            extra.mkdir()
            warm = [variant(photos[i % len(photos)], f"warmup-{i}", extra) for i in range(WARMUP)]
            # Every round uploads new photos to us (a stored photo is not uploaded again):
            # the same pictures with a one-line comment, so other bytes and SHA-256.
            rounds = [photos] + [
                [variant(p, f"r{k}-{p.label}", extra) for p in photos]
                for k in range(1, args.rounds)
            ]
            direct = [
                variant(photos[i % len(photos)], f"direct-{i}", extra) for i in range(args.direct)
            ]
            with console.status("declaring the photos in reports (sync push)"):
                declare(phone, warm + [p for batch in rounds for p in batch] + direct, location)
            token = device_token(phone)
            phone.close()
            same_headers = {"Authorization": f"Bearer {token}"}
            sides = [(Endpoint("ours", our_port, "/api/v1/uploads", same_headers), ours, mine)]
            if not args.skip_peer:
                peer, peer_port = start_peer(tmp / "peer-files", tmp)
                servers.append(peer)
                sides.append((Endpoint("peer", peer_port, "/files", same_headers), peer, theirs))
            figures["machine"]["node"] = node_version()

            for endpoint, _server, _runs in sides:
                run_tus(endpoint, warm, args.parallel, chunk, f"{endpoint.name}: warm-up")
            for k, batch in enumerate(rounds):
                for endpoint, server, runs in sides if k % 2 == 0 else sides[::-1]:
                    os.sync()  # the other side's dirty pages are not written back meanwhile
                    title = f"{endpoint.name}: tus" + (f" round {k + 1}" if args.rounds > 1 else "")
                    runs.append(run_tus(endpoint, batch, args.parallel, chunk, title, server))
                    log_run(title, runs[-1])

            with console.status("verifying"):
                stored = sum(verify_ours(our_port, token, run["uploads"]) for run in mine)
                peer_ok = sum(verify_peer(tmp / "peer-files", run["uploads"]) for run in theirs)
            expected = args.photos * args.rounds
            log(
                f"verified: ours {stored}/{expected} stored"
                + (f", peer {peer_ok}/{expected} files right" if theirs else "")
            )

            direct_figures = run_direct(our_port, token, direct) if direct else None
            if direct_figures:
                log(
                    f"direct: target + complete median {direct_figures['server_ms_median']:.1f} "
                    f"ms, p95 {direct_figures['server_ms_p95']:.1f} ms; PUT median "
                    f"{direct_figures['put_ms_median']:.1f} ms"
                )
        finally:
            for server in servers:
                server.stop()

        renditions = None
        if args.renditions:
            renditions = run_renditions([p.path for p in photos[: args.renditions]])
            log(
                f"renditions: ours {renditions['ours_cpu_ms_median']:.1f} ms CPU, naive "
                f"{renditions['naive_cpu_ms_median']:.1f} ms CPU per photo"
            )

    figures["machine"]["loadavg_at_end"] = loadavg()
    figures["tus_ours"] = summary(mine, stored)
    ratio = None
    if theirs:
        figures["tus_peer"] = summary(theirs, peer_ok)
        ratio = statistics.median(x["mb_s"] for x in mine) / statistics.median(
            x["mb_s"] for x in theirs
        )
    figures["ratio_tus_ours_over_peer"] = r(ratio, 3)
    if direct_figures:
        figures["direct_ours"] = rounded(direct_figures)
    if renditions:
        figures["renditions"] = rounded(renditions)
    figures["targets"] = {
        "tus_ratio_ours_over_peer_min": TARGET_TUS_RATIO,
        "rendition_cpu_ms_max": TARGET_RENDITION_MS,
        "peer_reference_mb_s": PEER_REFERENCE_MB_S,
    }
    figures["targets_met"] = {
        "tus": None if ratio is None else ratio >= TARGET_TUS_RATIO,
        "renditions": None
        if renditions is None
        else renditions["ours_cpu_ms_median"] <= TARGET_RENDITION_MS,
    }
    figures["all_verified"] = stored == expected and (not theirs or peer_ok == expected)
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
