"""Crashes in the middle of work (issue 6): the API process is killed with SIGKILL, and
separately PostgreSQL is crash-restarted, while phones push reports and upload photos. The
phones retry as they do in the field. Afterwards every acknowledged mutation and every stored
photo exists exactly once, nothing is half-applied (a report without its case, a case
without its timeline or audit entry), and the audit chain verifies.

Production profile only (PostGIS + S3, the API as a uvicorn process): the embedded profile
has no separate server process to kill.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from backend.audit.models import AuditEntry
from backend.audit.service import audit_key, chain_parked, verify_log
from backend.cases.models import Case, CaseEvent
from backend.core.db import create_db_engine, transaction
from backend.core.migrate import upgrade
from backend.devices.models import Device
from backend.media.models import Photo
from backend.reports.models import Report
from sync_protocol.client import SyncClient
from sync_protocol.outcomes import SyncState
from sync_protocol.transport import UrllibTransport
from tests.support.apps import ApiHarness, make_harness, production_settings
from tests.support.databases import create_database
from tests.support.photos import declaration, jpeg_with_exif
from tests.support.server_process import ApiProcess
from tests.support.services import PostgisService, S3Service, private_postgis
from tests.support.sync_city import APP_VERSION, SyncCity, build_city

PHONES = 6
CHAOS_SECONDS = 14.0
SETTLE_SECONDS = 90.0


@dataclass
class Phone:
    """One inspector's phone, driven from its own thread (the client's SQLite store is
    thread-bound): what it made, what it still has to upload, how far it got."""

    name: str
    code: str  # enrollment code, made beforehand
    created: list[str] = field(default_factory=list)
    pending: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)
    uploaded: dict[str, str] = field(default_factory=dict)  # photo id -> sha256
    device_id: str | None = None
    last_mutation_id: int = 0
    interrupted: int = 0  # pushes and uploads the crashes broke off
    error: BaseException | None = None


def test_killing_the_api_process_loses_and_duplicates_nothing(
    postgis_service: PostgisService, s3_service: S3Service, tmp_path: Path
) -> None:
    url = create_database(postgis_service.admin_url, f"crash_api_{random.getrandbits(32):x}")
    with _world(url, s3_service, tmp_path) as world:
        _chaos(world, lambda: _kill_and_restart(world.server), crashes=3, tmp=tmp_path)
        _check_everything(world)


def test_crash_restarting_postgresql_loses_and_duplicates_nothing(
    s3_service: S3Service, tmp_path: Path
) -> None:
    with private_postgis() as cluster:
        url = create_database(cluster.admin_url, "crash_pg")
        with _world(url, s3_service, tmp_path) as world:
            _chaos(world, cluster.crash_restart, crashes=2, tmp=tmp_path)
            _check_everything(world)


# -- the world ----------------------------------------------------------------------------


@dataclass
class _World:
    harness: ApiHarness
    server: ApiProcess
    city: SyncCity
    phones: list[Phone]


@contextmanager
def _world(url: str, s3: S3Service, tmp: Path) -> Iterator[_World]:
    """A migrated database, the API as a 2-worker uvicorn process, a city, enrolled phones
    talking HTTP to that process (the in-process harness only seeds and checks)."""
    engine = create_db_engine(production_settings(url, s3, tmp / "migrate"))
    upgrade(engine)
    engine.dispose()
    settings = production_settings(url, s3, tmp / "var")
    harness = make_harness("production", settings)
    server = ApiProcess(settings, workers=2, log=tmp / "server.log")
    try:
        city = build_city(harness, tmp)
        for i in range(PHONES):
            city.add_inspector(f"inspector{i}", [city.codes[i % len(city.codes)]])
        server.start()
        phones = [
            Phone(f"inspector{i}", city.enrollment_code(f"inspector{i}")) for i in range(PHONES)
        ]
        yield _World(harness, server, city, phones)
    finally:
        server.stop()
        harness.client.close()
        harness.runtime.close()


# -- what phones do ---------------------------------------------------------------------------


def _phone_life(
    phone: Phone, world: _World, until: float, deadline: float, seed: int, tmp: Path
) -> None:
    """Enroll, patrol until ``until`` (every failure is just "try later"), then keep syncing
    until everything is sent and uploaded, as a phone back in signal does."""
    try:
        client = SyncClient.enroll(
            tmp / f"{phone.name}.sqlite3", UrllibTransport(world.server.url), phone.code,
            phone.name, "android", APP_VERSION,
        )  # fmt: skip
        with client:
            phone.device_id = client.device_id
            _patrol(phone, client, world, until, seed)
            _settle(phone, client, world.server, deadline)
            phone.last_mutation_id = client._store.next_mutation_id() - 1  # reach in on purpose
    except BaseException as exc:  # reported by the main thread
        phone.error = exc


def _patrol(phone: Phone, client: SyncClient, world: _World, until: float, seed: int) -> None:
    rng = random.Random(seed)
    grid = rng.randrange(len(world.city.codes))
    while time.monotonic() < until:
        data = jpeg_with_exif(None, None, seed=seed * 1000 + len(phone.created), size=(320, 240))
        photo = declaration(data)
        text = f"巡查 {phone.name} #{len(phone.created)}"
        where = world.city.centre_of(grid)
        phone.created.append(client.create_report("0504", text, "", where, photos=[photo]))
        phone.pending.append((photo, data))
        _push(phone, client)
        _upload_pending(phone, client, world.server)
        time.sleep(rng.uniform(0.05, 0.3))


def _push(phone: Phone, client: SyncClient) -> None:
    if client.push().state is not SyncState.ok:
        phone.interrupted += 1


def _settle(phone: Phone, client: SyncClient, server: ApiProcess, until: float) -> None:
    while time.monotonic() < until:
        _push(phone, client)
        _upload_pending(phone, client, server)
        if not client.pending() and not phone.pending:
            client.pull()
            return
        time.sleep(0.2)
    raise AssertionError(f"{phone.name} could not finish: {len(phone.pending)} photos left")


def _upload_pending(phone: Phone, client: SyncClient, server: ApiProcess) -> None:
    """Even phones upload by presigned PUT, odd ones by tus in small chunks (so a crash
    lands in the middle of an upload through the API)."""
    upload = _tus_upload if int(phone.name[-1]) % 2 else _direct_upload
    for photo, data in list(phone.pending):
        if upload(client, server.url, photo, data):
            phone.pending.remove((photo, data))
            phone.uploaded[photo["photo_id"]] = photo["sha256"]
        else:
            phone.interrupted += 1


def _direct_upload(client: SyncClient, base: str, photo: dict[str, Any], data: bytes) -> bool:
    """upload-target → PUT → complete over HTTP; False when anything failed (retry later)."""
    auth = _auth(client)
    if auth is None:
        return False
    body = {k: photo[k] for k in ("sha256", "size", "content_type")}
    status, target = _http(
        f"{base}/api/v1/photos/{photo['photo_id']}/upload-target",
        "POST",
        json.dumps(body).encode(),
        {**auth, "Content-Type": "application/json"},
    )
    if status != 200:
        if status == 401:
            client.pull()  # refreshes the token
        return False
    if target["state"] == "declared":
        put_status, _ = _http(target["url"], "PUT", data, target["headers"])
        if put_status not in (200, 204, 412):  # 412: an earlier try stored it (no overwrite)
            return False
    status, _ = _http(f"{base}/api/v1/photos/{photo['photo_id']}/complete", "POST", b"", auth)
    return status == 200


TUS_CHUNK = 4 * 1024  # a 320×240 test photo (~15 KB) takes four PATCHes
_TUS_URLS: dict[str, str] = {}  # photo id -> upload URL, as a phone keeps it


def _tus_upload(client: SyncClient, base: str, photo: dict[str, Any], data: bytes) -> bool:
    """Create (or resume) a tus upload and send what the server lacks; True once stored."""
    auth = _auth(client)
    if auth is None:
        return False
    headers = {**auth, "Tus-Resumable": "1.0.0"}
    url = _TUS_URLS.get(photo["photo_id"])
    if url is None:
        metadata = "photo_id " + base64.b64encode(photo["photo_id"].encode()).decode()
        status, _, answer = _http_full(
            f"{base}/api/v1/uploads", "POST", b"",
            {**headers, "Upload-Length": str(len(data)), "Upload-Metadata": metadata},
        )  # fmt: skip
        if status != 201:
            return False
        location = answer.get("location", "")
        url = location if location.startswith("http") else base + location
        _TUS_URLS[photo["photo_id"]] = url
    status, _, answer = _http_full(url, "HEAD", None, headers)
    if status in (404, 410):
        _TUS_URLS.pop(photo["photo_id"], None)  # gone: start a new one next time
        return False
    if status != 200:
        return False
    offset = int(answer["upload-offset"])
    while offset < len(data):
        piece = data[offset : offset + TUS_CHUNK]
        status, _, answer = _http_full(
            url, "PATCH", piece,
            {**headers, "Upload-Offset": str(offset),
             "Content-Type": "application/offset+octet-stream"},
        )  # fmt: skip
        if status != 204:
            return False
        offset = int(answer["upload-offset"])
    return True


def _auth(client: SyncClient) -> dict[str, str] | None:
    credentials = client._store.credentials()  # tests reach into the client on purpose
    if credentials is None or not credentials.access_token:
        return None
    return {"Authorization": f"Bearer {credentials.access_token}"}


def _http_full(
    url: str, method: str, data: bytes | None, headers: dict[str, str]
) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, lower-cased headers); status 0 when no answer came."""
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, answer.read(), {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, b"", {k.lower(): v for k, v in error.headers.items()}
    except (OSError, ConnectionError):
        return 0, b"", {}


def _http(url: str, method: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            raw = answer.read()
            status = answer.status
    except urllib.error.HTTPError as error:
        return error.code, None
    except (OSError, ConnectionError):
        return 0, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


# -- chaos and its aftermath --------------------------------------------------------------


def _kill_and_restart(server: ApiProcess) -> None:
    server.kill()
    time.sleep(0.3)
    server.start()


def _chaos(world: _World, crash: Callable[[], None], crashes: int, tmp: Path) -> None:
    until = time.monotonic() + CHAOS_SECONDS
    deadline = until + SETTLE_SECONDS
    threads = [
        threading.Thread(target=_phone_life, args=(p, world, until, deadline, i, tmp))
        for i, p in enumerate(world.phones)
    ]
    for thread in threads:
        thread.start()
    rng = random.Random(6)
    for _ in range(crashes):
        time.sleep(rng.uniform(2.0, CHAOS_SECONDS / (crashes + 1)))
        crash()
    for thread in threads:
        thread.join(timeout=CHAOS_SECONDS + SETTLE_SECONDS + 30)
    for phone in world.phones:
        if phone.error is not None:
            raise phone.error


def _check_everything(world: _World) -> None:
    harness, phones = world.harness, world.phones
    created = [r for p in phones for r in p.created]
    assert len(created) >= PHONES * 5, "the phones did too little for the test to mean much"
    assert sum(p.interrupted for p in phones) > 0, "the crashes never hit a request"
    with transaction(harness.runtime.sessions) as session:  # entries parked under load
        chain_parked(session, audit_key(harness.runtime.settings))
    with transaction(harness.runtime.sessions) as session:
        reports = session.execute(select(Report.id, Report.case_id)).all()
        assert sorted(r.id for r in reports) == sorted(created), "every report exactly once"
        assert all(r.case_id is not None for r in reports), "every report opened its case"
        per_report = session.execute(
            select(Case.primary_report_id, func.count()).group_by(Case.primary_report_id)
        ).all()
        assert len(per_report) == len(created) and {n for _, n in per_report} == {1}
        opens = session.scalar(select(func.count()).where(CaseEvent.action == "open"))
        audited = session.scalar(select(func.count()).where(AuditEntry.action == "case.open"))
        assert opens == audited == len(created), "no case without its timeline and audit entry"
        photos = {p.photo_id: p for p in session.scalars(select(Photo))}
        uploaded = {k: v for p in phones for k, v in p.uploaded.items()}
        assert set(uploaded) == set(photos)
        for photo_id, sha in uploaded.items():
            row = photos[photo_id]
            assert row.state == "stored" and row.sha256 == sha and row.object_key
            assert (
                hashlib.sha256(harness.runtime.object_store.get(row.object_key)).hexdigest() == sha
            )
        for phone in phones:
            device = session.get(Device, phone.device_id)
            assert device is not None
            assert device.last_mutation_id == phone.last_mutation_id, phone.name
        verification = verify_log(session, audit_key(harness.runtime.settings))
        assert verification.problems == [], verification.problems[:3]
