#!/usr/bin/env python3
"""Shift-change load test: 500 inspectors' phones and 10 coordinators against the production
profile (PostGIS + an S3 server, uvicorn with several workers), driven by locust.

Steps: provision a PostGIS cluster of its own (commits synchronous, as in production) and an
S3 server on loopback (moto; or ``--s3-endpoint`` for MinIO), migrate, seed the world
(scripts/load/seed.py), start ``uvicorn --workers N``, run ``locust`` headless
(scripts/load/locustfile.py) while sampling every worker's resident memory, then report
p50/p95/p99 per operation, the error count and the peak RSS per worker against the targets
(0 errors, p99 push ≤ 250 ms, RSS ≤ 300 MB per worker). The last line printed is one JSON
object with all figures.

Everything runs on this machine: locust, the S3 server and PostgreSQL share its cores with
the API, so the figures are an upper bound of what the API alone would show.

Usage: python scripts/load/run_load.py [--duration 180] [--workers 2] [--inspectors 500]
Needs locust: pip install -e '.[load]'
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.core import migrate  # noqa: E402
from backend.core.db import create_db_engine  # noqa: E402
from backend.core.runtime import Runtime  # noqa: E402
from backend.core.settings import Settings  # noqa: E402
from scripts.load.seed import SeedSpec, seed  # noqa: E402
from tests.support.apps import production_settings  # noqa: E402
from tests.support.databases import create_database  # noqa: E402
from tests.support.server_process import ApiProcess  # noqa: E402
from tests.support.services import S3Service, private_postgis, provision_s3  # noqa: E402

TARGET_P99_PUSH_MS = 250
TARGET_RSS_MB = 300


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=240, help="seconds of load")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--inspectors", type=int, default=500)
    parser.add_argument("--coordinators", type=int, default=10)
    # 8 phones per second: the 500 of a shift come back online within about a minute.
    parser.add_argument("--spawn-rate", type=float, default=8.0, help="users started per s")
    parser.add_argument(
        "--request-threads",
        type=int,
        default=Settings.model_fields["request_threads"].default,
        help="per worker (default: the service's own)",
    )
    parser.add_argument("--pool-size", type=int, default=10, help="connections per worker")
    parser.add_argument("--s3-endpoint", help="an existing S3 endpoint (else moto on loopback)")
    parser.add_argument("--out", type=Path, help="where locust's CSV files go")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="xuncha-load-"))
    out.mkdir(parents=True, exist_ok=True)
    s3 = _s3(args.s3_endpoint)
    try:
        with private_postgis() as cluster:
            result = _run(args, out, cluster.admin_url, s3)
    finally:
        s3.stop()
    print(json.dumps(result, ensure_ascii=False))


def _s3(endpoint: str | None) -> S3Service:
    if endpoint is None:
        return provision_s3()
    return S3Service(
        endpoint_url=endpoint,
        access_key=os.environ.get("XUNCHA_LOAD_S3_ACCESS_KEY", "minioadmin"),
        secret_key=os.environ.get("XUNCHA_LOAD_S3_SECRET_KEY", "minioadmin"),
        region=os.environ.get("XUNCHA_LOAD_S3_REGION", "us-east-1"),
        origin="external",
    )


def _run(args: argparse.Namespace, out: Path, admin_url: str, s3: S3Service) -> dict[str, Any]:
    url = create_database(admin_url, "xuncha_load")
    # Production defaults for the pool (the test helper uses 5 for parallel test runs).
    settings = production_settings(
        url, s3, out / "var", log_json=True,
        database_pool_size=args.pool_size, request_threads=args.request_threads,
    )  # fmt: skip
    engine = create_db_engine(settings)
    migrate.upgrade(engine)
    engine.dispose()
    log("seeding …")
    started = time.monotonic()
    runtime = Runtime.build(settings)
    try:
        world = seed(runtime, SeedSpec(args.inspectors, args.coordinators))
    finally:
        runtime.close()
    seed_file = out / "seed.json"
    seed_file.write_text(json.dumps(world))
    log(f"seeded {args.inspectors} phones in {time.monotonic() - started:.0f} s")
    speed_before = machine_speed_s()
    server = ApiProcess(settings, workers=args.workers, log=out / "server.log")
    server.start()
    sampler = RssSampler(server)
    sampler.start()
    cpu = CpuSampler(server)
    cpu.start()
    waits = WaitSampler(url, out / "pg_waits.log")
    waits.start()
    try:
        _locust(args, out, server.url, seed_file)
    finally:
        waits.stop()
        cpu.stop()
        sampler.stop()
        server.stop()
    speed_after = machine_speed_s()
    stats = _stats(out / "stats_stats.csv")
    failures = _failures(out / "stats_failures.csv")
    errors = sum(int(s["failures"]) for s in stats.values() if s["name"] != "Aggregated")
    push_p99 = stats.get("push", {}).get("p99_ms")
    rss = sampler.peaks_mb()
    return {
        "benchmark": "shift_change_load",
        "machine": {
            "cpus": os.cpu_count(), "python": sys.version.split()[0],
            # The same Python work timed before and after the run: this machine's speed
            # varies between runs by a third, so compare runs only alongside these.
            "speed_check_s": [speed_before, speed_after],
        },
        "setup": {
            "inspectors": args.inspectors, "coordinators": args.coordinators,
            "duration_s": args.duration, "uvicorn_workers": args.workers,
            "spawn_rate": args.spawn_rate, "s3": s3.origin,
            "request_threads": args.request_threads, "pool_size": args.pool_size,
        },
        "operations": {k: v for k, v in stats.items() if k != "Aggregated"},
        "total": stats.get("Aggregated"),
        "errors": errors,
        "failures": failures,
        "peak_rss_mb_per_worker": rss,
        "cpu_seconds_by_party": cpu.seconds(),
        "targets": {
            "zero_errors": errors == 0,
            "push_p99_le_250ms": push_p99 is not None and push_p99 <= TARGET_P99_PUSH_MS,
            "rss_le_300mb": bool(rss) and max(rss) <= TARGET_RSS_MB,
        },
    }  # fmt: skip


def machine_speed_s(rounds: int = 3) -> float:
    """CPU seconds of a fixed pure-Python loop (best of ``rounds``): lower is faster."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        total = 0
        for i in range(3_000_000):
            total += i * i
        best = min(best, time.process_time() - started)
    return round(best, 3)


def _locust(args: argparse.Namespace, out: Path, host: str, seed_file: Path) -> None:
    users = args.inspectors + args.coordinators
    env = {
        **os.environ,
        "XUNCHA_LOAD_SEED": str(seed_file),
        "XUNCHA_LOAD_INSPECTORS": str(args.inspectors),
        "XUNCHA_LOAD_COORDINATORS": str(args.coordinators),
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "scripts/load/locustfile.py"),
        "--headless", "--host", host, "-u", str(users), "-r", str(args.spawn_rate),
        "-t", f"{args.duration}s", "--csv", str(out / "stats"), "--only-summary",
        "--stop-timeout", "30", "--loglevel", "WARNING",
    ]  # fmt: skip
    log(f"locust: {users} users for {args.duration} s against {host} …")
    subprocess.run(command, env=env, cwd=ROOT, check=False)


def _stats(path: Path) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            rows[row["Name"]] = {
                "name": row["Name"],
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50_ms": _num(row["50%"]),
                "p95_ms": _num(row["95%"]),
                "p99_ms": _num(row["99%"]),
                "max_ms": _num(row["Max Response Time"]),
                "rps": round(float(row["Requests/s"]), 2),
            }
    return rows


def _failures(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as f:
        return [
            {"name": r["Name"], "error": r["Error"][:200], "count": r["Occurrences"]}
            for r in csv.DictReader(f)
        ]


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class RssSampler(threading.Thread):
    """Samples the resident memory of each uvicorn worker (the supervisor's children)."""

    def __init__(self, server: ApiProcess) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak_kb: dict[int, int] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.5):
            assert self.server.process is not None
            for pid in _children(self.server.process.pid):
                rss = _rss_kb(pid)
                if rss:
                    self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), rss)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def peaks_mb(self) -> list[float]:
        return sorted((round(kb / 1024, 1) for kb in self.peak_kb.values()), reverse=True)


class WaitSampler(threading.Thread):
    """Every 2 s, what the database's sessions wait for (pg_stat_activity), to a log file:
    where a slow run spends its time (locks, I/O, the client)."""

    def __init__(self, url: str, path: Path) -> None:
        super().__init__(daemon=True)
        self.url, self.path = url, path
        self._stop_event = threading.Event()

    def run(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url, pool_size=1)
        query = text(
            "SELECT state, coalesce(wait_event_type, '') || ':' || coalesce(wait_event, ''), "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 90), count(*) "
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 8"
        )
        with self.path.open("w") as out:
            while not self._stop_event.wait(2.0):
                with engine.connect() as conn:
                    rows = conn.execute(query).all()
                out.write(f"-- {time.strftime('%H:%M:%S')}\n")
                out.writelines(f"{n:4} {state} {wait} {q}\n" for state, wait, q, n in rows)
                out.flush()
        engine.dispose()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


class CpuSampler(threading.Thread):
    """CPU seconds used during the run by each party sharing the machine: the API workers,
    PostgreSQL, the S3 server, locust (and anything else), read from /proc every second."""

    PARTIES = (("postgres", "postgresql"), ("moto", "s3 server"), ("locust", "locust"))

    def __init__(self, server: ApiProcess) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.first: dict[int, int] = {}
        self.last: dict[int, tuple[str, int]] = {}
        self._stop_event = threading.Event()
        self._sample(initial=True)

    def run(self) -> None:
        while not self._stop_event.wait(1.0):
            self._sample(initial=False)

    def _sample(self, *, initial: bool) -> None:
        assert self.server.process is not None
        api = {self.server.process.pid, *_children(self.server.process.pid)}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            ticks, command = _cpu_ticks(pid)
            if ticks is None:
                continue
            if initial:
                self.first[pid] = ticks
            party = "api" if pid in api else self._party(command)
            self.last[pid] = (party, ticks)

    def _party(self, command: str) -> str:
        return next((name for key, name in self.PARTIES if key in command), "other")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def seconds(self) -> dict[str, float]:
        hz = os.sysconf("SC_CLK_TCK")
        used: dict[str, float] = {}
        for pid, (party, ticks) in self.last.items():
            used[party] = used.get(party, 0.0) + (ticks - self.first.get(pid, 0)) / hz
        return {k: round(v, 1) for k, v in sorted(used.items(), key=lambda kv: -kv[1])}


def _cpu_ticks(pid: int) -> tuple[int | None, str]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None, ""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), command  # utime + stime


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    main()
