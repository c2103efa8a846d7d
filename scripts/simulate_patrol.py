#!/usr/bin/env python3
"""Simulate a shift of inspectors patrolling with phones that keep losing signal.

Every phone is a reference client (sync_protocol.SyncClient) talking real HTTP to a server:
it enrolls with a one-time code, walks its grids making reports (locations from AMap, so
GCJ-02), edits some of them, loses signal now and then, and syncs when it can. At the end the
network heals, every phone syncs, and the script checks what the protocol promises: outboxes
empty, every report on the server exactly once, every phone's digest equal to the server's.

    python scripts/simulate_patrol.py                      # starts its own demo server
    python scripts/simulate_patrol.py --url http://host:8000 --admin admin --password …

The target must hold the demo city (`xuncha demo`) or grids assigned to the inspectors used.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn  # noqa: E402

from backend.geo.chinese_crs import wgs84_to_gcj02  # noqa: E402
from sync_protocol.client import SyncClient  # noqa: E402
from sync_protocol.transport import Response, Transport, TransportError, UrllibTransport  # noqa: E402

console = Console(stderr=True)


@dataclass
class Signal:
    """A phone's radio: a transport that is sometimes simply not there."""

    inner: Transport
    rng: random.Random
    loss: float
    offline: bool = False
    refused: int = 0

    def request(
        self, method: str, path: str, body: dict[str, object] | None, headers: dict[str, str]
    ) -> Response:
        if self.offline:
            self.refused += 1
            raise TransportError("no signal")
        return self.inner.request(method, path, body, headers)

    def wander(self) -> None:
        self.offline = self.rng.random() < self.loss


@dataclass
class Tally:
    reports: int = 0
    edits: int = 0
    syncs: int = 0
    sync_seconds: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)


def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="xuncha-patrol-") as tmp:
        url, stop = (args.url, None) if args.url else start_demo_server(Path(tmp))
        try:
            admin = login(url, args.admin, args.password)
            phones, signals, grids = enroll_phones(url, admin, args, rng, Path(tmp))
            tally = patrol(phones, signals, grids, args, rng)
            summary = settle_and_check(url, admin, phones, signals, tally)
        finally:
            if stop:
                stop()
    print(json.dumps(summary, ensure_ascii=False))
    return 0 if summary["ok"] else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="server base URL (default: start a demo server)")
    parser.add_argument("--admin", default="admin")
    parser.add_argument("--password", default="xuncha-demo")
    parser.add_argument("--inspectors", type=int, default=8, help="inspector01..NN of the demo")
    parser.add_argument("--phones-per-inspector", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40, help="actions per phone")
    parser.add_argument("--signal-loss", type=float, default=0.3, help="chance to be offline")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def start_demo_server(var: Path) -> tuple[str, object]:
    import os

    import uvicorn

    os.environ["XUNCHA_VAR_DIR"] = str(var / "server")
    os.environ.setdefault("XUNCHA_LOG_LEVEL", "WARNING")
    from backend.app import create_app
    from backend.cli.serve import _prepare_schema
    from backend.core.runtime import Runtime
    from backend.core.settings import load_settings
    from backend.demo.seed import seed_demo

    settings = load_settings()
    _prepare_schema(settings, always_migrate=True)
    runtime = Runtime.build(settings)
    with console.status("seeding the demo city"):
        seed_demo(runtime)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime=runtime), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    console.print(f"demo server at http://127.0.0.1:{port}")

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()

    return f"http://127.0.0.1:{port}", stop


def login(url: str, username: str, password: str) -> dict[str, str]:
    answer = UrllibTransport(url).request(
        "POST", "/api/v1/auth/token", {"username": username, "password": password}, {}
    )
    if answer.status != 200 or not isinstance(answer.body, dict):
        raise SystemExit(f"cannot log in as {username}: HTTP {answer.status}")
    return {"Authorization": f"Bearer {answer.body['access_token']}"}


def enroll_phones(url, admin, args, rng, tmp):  # type: ignore[no-untyped-def]
    http = UrllibTransport(url)
    users = http.request("GET", "/api/v1/users", None, admin).body["items"]  # type: ignore[index]
    by_name = {u["username"]: u for u in users}
    phones, signals, grids = [], [], []
    for n in range(1, args.inspectors + 1):
        user = by_name.get(f"inspector{n:02d}")
        if user is None:
            raise SystemExit(f"inspector{n:02d} does not exist on the server (run xuncha demo)")
        for k in range(args.phones_per_inspector):
            code = http.request(
                "POST", f"/api/v1/users/{user['id']}/enrollment-codes", None, admin
            ).body["code"]  # type: ignore[index]
            signal = Signal(UrllibTransport(url), random.Random(rng.random()), args.signal_loss)
            phone = SyncClient.enroll(
                tmp / f"{user['username']}-{k}.sqlite3",
                signal,
                code,
                f"{user['username']} phone {k}",
                "android",
                "1.0.0",
            )
            phone.pull()  # the morning sync in the office: grids arrive
            phones.append(phone)
            signals.append(signal)
            grids.append(list(phone.records("grid").values()))
    return phones, signals, grids


def patrol(phones, signals, grids, args, rng) -> Tally:  # type: ignore[no-untyped-def]
    tally = Tally()
    total = len(phones) * args.steps
    with Progress(
        "[bold]patrolling", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("patrol", total=total)
        for _ in range(args.steps):
            for phone, signal, mine in zip(phones, signals, grids, strict=True):
                signal.wander()
                act(phone, mine, rng, tally)
                if not signal.offline and rng.random() < 0.4:
                    started = time.perf_counter()
                    phone.sync()
                    tally.syncs += 1
                    tally.sync_seconds.append(time.perf_counter() - started)
                progress.advance(task)
    return tally


def act(phone: SyncClient, mine: list[dict], rng: random.Random, tally: Tally) -> None:  # type: ignore[type-arg]
    own = [rid for rid, r in phone.records("report").items() if r["status"] == "submitted"]
    if own and rng.random() < 0.25:
        phone.update_report(rng.choice(own), {"description": f"复查补充 {rng.randint(1, 999)}"})
        tally.edits += 1
        return
    if not mine:
        return
    grid = rng.choice(mine)
    ring = grid["geometry"]["coordinates"][0][0]
    lon = sum(p[0] for p in ring[:-1]) / (len(ring) - 1) + rng.uniform(-2e-4, 2e-4)
    lat = sum(p[1] for p in ring[:-1]) / (len(ring) - 1) + rng.uniform(-2e-4, 2e-4)
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)  # what an AMap-based app reports
    category, text = rng.choice(
        [("0504", "店外经营"), ("0501", "无照游商"), ("0201", "非法小广告"), ("0507", "乱堆物堆料")]
    )
    phone.create_report(
        category,
        text,
        f"{grid['name']}附近",
        {
            "lon": round(gcj_lon, 7),
            "lat": round(gcj_lat, 7),
            "crs": "gcj02",
            "accuracy_m": round(rng.uniform(3, 25), 1),
            "fix_time": "2026-11-23T08:00:00+08:00",
            "provider": "fused",
        },
    )
    tally.reports += 1


def settle_and_check(url, admin, phones, signals, tally: Tally) -> dict[str, object]:  # type: ignore[no-untyped-def]
    for signal in signals:  # the network heals
        signal.offline, signal.loss = False, 0.0
    for _ in range(3):
        for phone in phones:
            phone.sync()
    pending = sum(len(p.pending()) for p in phones)
    verified = sum(1 for p in phones if p.pull().digest_verified)
    for phone in phones:
        for entry in phone.results_log():
            tally.statuses[entry.status] = tally.statuses.get(entry.status, 0) + 1
    created = {
        e.args["report_id"] for p in phones for e in p.results_log() if e.name == "report.create"
    }
    http = UrllibTransport(url)
    missing = [
        rid
        for rid in created
        if http.request("GET", f"/api/v1/reports/{rid}", None, admin).status != 200
    ]
    sync_ms = sorted(s * 1000 for s in tally.sync_seconds) or [0.0]
    summary = {
        "phones": len(phones),
        "reports_made": tally.reports,
        "edits_made": tally.edits,
        "results": tally.statuses,
        "syncs": tally.syncs,
        "sync_ms_p50": round(sync_ms[len(sync_ms) // 2], 1),
        "sync_ms_p95": round(sync_ms[int(len(sync_ms) * 0.95)], 1),
        "outbox_left": pending,
        "phones_digest_verified": verified,
        "reports_missing_on_server": len(missing),
        "ok": pending == 0 and verified == len(phones) and not missing,
    }
    console.print(summary)
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
