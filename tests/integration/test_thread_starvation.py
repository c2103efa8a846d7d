"""No request holds a database connection while it waits for a thread (ADR 0001, update).

FastAPI runs sync dependencies, the endpoint and (for sync endpoints) the response's
validation in separate thread-pool calls. When the request's transaction spanned those
calls, a request holding the only connection could wait for a thread while every thread
waited for that connection: under the shift-change load test that meant 503s after the
pool timeout and 60 s client timeouts. Here the API runs as a uvicorn process with one
connection, no overflow and two request threads, and many clients read and write at once:
every request must succeed, and quickly.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from backend.core.db import create_db_engine
from backend.core.migrate import upgrade
from tests.support.apps import make_harness, production_settings
from tests.support.databases import create_database
from tests.support.server_process import ApiProcess
from tests.support.services import PostgisService, S3Service
from tests.support.sync_city import build_city

CLIENTS = 12
ROUNDS = 4
POOL_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 10.0
GIVE_UP_S = 40.0


def test_one_connection_and_two_threads_serve_many_clients(
    postgis_service: PostgisService, s3_service: S3Service, tmp_path: Path
) -> None:
    url = create_database(postgis_service.admin_url, "thread_starvation")
    engine = create_db_engine(production_settings(url, s3_service, tmp_path / "migrate"))
    upgrade(engine)
    engine.dispose()
    settings = production_settings(
        url, s3_service, tmp_path / "var",
        database_pool_size=1, database_max_overflow=0, request_threads=2,
        database_pool_timeout_s=POOL_TIMEOUT_S,
    )  # fmt: skip
    harness = make_harness("production", settings)
    server = ApiProcess(settings, workers=1, log=tmp_path / "server.log")
    try:
        city = build_city(harness, tmp_path)
        server.start()
        statuses: list[int] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            for round_ in range(ROUNDS):
                # Reads, and writes that lock the same row (one department, many editors).
                for method, path, body in (
                    ("GET", "/api/v1/cases?limit=5", None),
                    ("GET", f"/api/v1/grids/{city.codes[0]}", None),
                    ("PUT", "/api/v1/departments",
                     {"code": "xh-zf-01", "name": f"执法中队 {n}-{round_}", "kind": "enforcement"}),
                ):  # fmt: skip
                    status = _call(server.url + path, method, body, city.admin)
                    with lock:
                        statuses.append(status)

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:  # a regression freezes (row locks wait without end)
            thread.join(max(1.0, started + GIVE_UP_S - time.monotonic()))
        elapsed = time.monotonic() - started
    finally:
        server.stop()
        harness.client.close()
        harness.runtime.close()
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    # A request stuck behind the pool would have taken the pool timeout at least.
    assert len(statuses) == CLIENTS * ROUNDS * 3, f"{len(statuses)} answers in {elapsed:.0f} s"
    assert elapsed < POOL_TIMEOUT_S * 3, f"{elapsed:.1f} s for {len(statuses)} requests"


def _call(url: str, method: str, body: object, headers: dict[str, str]) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={**headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except TimeoutError:
        return 0  # no answer in time: the server froze
