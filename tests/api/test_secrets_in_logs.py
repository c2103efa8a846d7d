"""No secret reaches the logs, even at DEBUG for every logger, on both profiles.

A realistic day — an admin logs in, creates an account and an enrollment code; a wrong
password; the inspector logs in, the phone enrolls, exchanges its secret for a token, pushes
a report with a photo, uploads it through a presigned URL, completes it, pulls; a coordinator
opens the photo's signed links; a bad token; and a request that fails with a database error
(whose message would carry the statement's parameters) — runs with the app's logging
(backend.core.logging: JSON lines) at DEBUG, and pytest's capture on the root logger too.
Neither may contain a password, an access token (or its signature), a device secret, an
enrollment code, a presigned URL's signature, our media grant tokens, an Authorization
header, a password hash or the service's own secrets.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from backend.accounts import repository as accounts_repository
from backend.core import logging as app_logging
from tests.support.apps import TEST_PASSWORD, TEST_SECRET, ApiHarness
from tests.support.photos import (
    get_bytes,
    jpeg_with_exif,
    photo_city,
    put_bytes,
    report_with_photo,
)
from tests.support.sync import device_headers

NEW_PASSWORD = "Mi-Ma-2026-蓝天"
WRONG_PASSWORD = "not-the-password-42"


@dataclass
class Secrets:
    values: set[str] = field(default_factory=set)

    def add(self, *values: str | None) -> None:
        for value in values:
            if value:
                self.values.add(value)

    def token(self, token: str) -> None:
        """An access token, its signature and the Authorization header it travels in."""
        self.add(token, token.rsplit(".", 1)[-1], f"Bearer {token}")

    def url(self, url: str) -> None:
        """A signed URL: S3's signature, or the local store's grant token (the path)."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if "X-Amz-Signature" in query:
            self.add(query["X-Amz-Signature"][0], url)
        else:
            grant = parts.path.rsplit("/", 1)[-1]
            self.add(grant, grant.rsplit(".", 1)[-1], url)


@dataclass
class Captured:
    stream: io.StringIO
    caplog: pytest.LogCaptureFixture

    def everything(self) -> str:
        records = "\n".join(repr(vars(r)) for r in self.caplog.records)
        return "\n".join((self.stream.getvalue(), self.caplog.text, records))


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[Captured]:
    """The app's own logging at DEBUG (as `xuncha serve` sets it up), into a buffer, plus
    pytest's capture; everything put back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_factory = logging.getLogRecordFactory()
    names = [*app_logging.QUIET_LIBRARIES, "uvicorn", "uvicorn.error", "uvicorn.access"]
    saved = {
        name: (lg.level, lg.handlers[:], lg.propagate, lg.disabled)
        for name in names
        if (lg := logging.getLogger(name))
    }
    stream = io.StringIO()
    app_logging.configure_logging("DEBUG", json_lines=True)
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    root.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield Captured(stream, caplog)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logging.setLogRecordFactory(saved_factory)
        for name, (level, handlers, propagate, disabled) in saved.items():
            lg = logging.getLogger(name)
            lg.setLevel(level)
            lg.handlers[:] = handlers
            lg.propagate, lg.disabled = propagate, disabled


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _realistic_day(api: ApiHarness, tmp: Path, secrets: Secrets, monkeypatch: Any) -> None:
    client = api.client
    settings = api.runtime.settings
    secrets.add(TEST_PASSWORD, "patrol-pass-1", NEW_PASSWORD, WRONG_PASSWORD, TEST_SECRET)
    s3_secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else ""
    if len(s3_secret) >= 12:  # a test server's "testing" is also its access key id (public)
        secrets.add(s3_secret)
    city = photo_city(api, tmp)
    admin_login = client.post(
        "/api/v1/auth/token", json={"username": "admin", "password": TEST_PASSWORD}
    )
    secrets.token(admin_login.json()["access_token"])
    admin = _bearer(admin_login.json()["access_token"])
    created = client.post(
        "/api/v1/users",
        json={"username": "chenjing", "password": NEW_PASSWORD, "role": "inspector"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    wrong = client.post(
        "/api/v1/auth/token", json={"username": "chenjing", "password": WRONG_PASSWORD}
    )
    assert wrong.status_code == 401
    mine = client.post(
        "/api/v1/auth/token", json={"username": "chenjing", "password": NEW_PASSWORD}
    )
    secrets.token(mine.json()["access_token"])
    assert (
        client.get("/api/v1/auth/me", headers=_bearer(mine.json()["access_token"])).status_code
        == 200
    )
    code = client.post(f"/api/v1/users/{created.json()['id']}/enrollment-codes", headers=admin)
    secrets.add(
        code.json()["code"], code.json()["code"].replace("-", ""), code.json()["qr_payload"]
    )
    enrolled = client.post(
        "/api/v1/devices/enroll",
        json={"code": code.json()["code"], "device_name": "Redmi", "platform": "android",
              "app_version": "1.4.2"},
    )  # fmt: skip
    assert enrolled.status_code == 201, enrolled.text
    device = enrolled.json()
    secrets.add(device["device_secret"], device["device_secret"].split(".", 1)[1])
    secrets.token(device["access_token"])
    exchanged = client.post(
        "/api/v1/devices/token",
        json={"device_id": device["device_id"], "device_secret": device["device_secret"]},
    )
    secrets.token(exchanged.json()["access_token"])
    # The inspector's phone (reference client): push a report with a photo, upload, pull.
    phone = city.phone("zhangwei")
    credentials = phone._store.credentials()  # tests reach into the client on purpose
    assert credentials is not None
    secrets.add(credentials.device_secret)
    secrets.token(str(credentials.access_token))
    data = jpeg_with_exif(city.geoms[0].centroid.x, city.geoms[0].centroid.y)
    photo = report_with_photo(city, phone, data)
    headers = device_headers(phone)
    target = client.post(
        f"/api/v1/photos/{photo['photo_id']}/upload-target",
        json={k: photo[k] for k in ("sha256", "size", "content_type")},
        headers=headers,
    ).json()
    secrets.url(target["url"])
    assert put_bytes(client, target["url"], target["headers"], data) in (200, 204)
    done = client.post(f"/api/v1/photos/{photo['photo_id']}/complete", headers=headers)
    assert done.status_code == 200, done.text
    phone.pull()
    view = client.get(f"/api/v1/photos/{photo['photo_id']}", headers=admin).json()
    for url in view["links"].values():
        secrets.url(url)
        assert get_bytes(client, url)[0] == 200
    # Failing requests: a forged token, a revoked one, and a database error (a duplicate
    # username slipping past the check) whose message carries the INSERT's parameters.
    forged = _bearer(mine.json()["access_token"][:-4] + "AAAA")
    assert client.get("/api/v1/auth/me", headers=forged).status_code == 401
    monkeypatch.setattr(accounts_repository, "by_username", lambda session, name: None)
    boom = client.post(
        "/api/v1/users",
        json={"username": "chenjing", "password": NEW_PASSWORD, "role": "inspector"},
        headers=admin,
    )
    assert boom.status_code in (409, 500, 503), boom.text
    monkeypatch.undo()
    with api.session() as session:
        user = accounts_repository.by_username(session, "chenjing")
        assert user is not None
        secrets.add(user.password_hash, user.password_hash.rsplit("$", 1)[-1])


def test_no_secret_reaches_the_logs(
    api: ApiHarness, tmp_path: Path, debug_logs: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = Secrets()
    _realistic_day(api, tmp_path, secrets, monkeypatch)
    captured = debug_logs.everything()
    # The capture really is at DEBUG for our loggers and did see the day's requests.
    assert '"logger": "xuncha.access"' in debug_logs.stream.getvalue()
    assert "unhandled error" in captured or "database unavailable" in captured
    assert len(debug_logs.caplog.records) > 50
    leaked = sorted(s for s in secrets.values if s in captured)
    assert leaked == [], f"secrets in the logs: {leaked}"
    # The failed INSERT's hash (a fresh salt, so not among the values above) neither.
    assert not re.search(r"\$argon2(?:id|i|d)\$", captured)
    assert "X-Amz-Signature=" not in captured.replace("X-Amz-Signature=[redacted]", "")
    for line in debug_logs.stream.getvalue().splitlines():
        json.loads(line)  # still one JSON object per line after redaction


def test_redaction_covers_every_shape_of_secret() -> None:
    redact = app_logging.redact
    assert (
        redact("Authorization: Bearer xat1.eyJzdWIiOjF9.c2ln") == "Authorization: Bearer [redacted]"
    )
    assert "xds1.AbC" not in redact("secret xds1.AbCdEf_-0123456789")
    assert redact("code K7QF-2MXD-9RTB") == "code [redacted-code]"
    uuid = "a1b2c3d4-e5f6-7890-abcd-ef0123456789"
    assert redact(uuid) == uuid  # ids stay readable
    assert "deadbeef" not in redact("https://s3/b/k?X-Amz-Expires=600&X-Amz-Signature=deadbeef&a=1")
    assert "deadbeef" not in redact("AWS4-HMAC-SHA256 Credential=AK/x, Signature=deadbeef")
    assert "tok" not in redact("GET /api/v1/media/signed/eyJ0b2s.c2ln 200")
    assert "hunter2" not in redact('{"username": "a", "password": "hunter2"}')
    assert "hunter2" not in redact("{'password': 'hunter2'}")
    assert "hunter2" not in redact("username=a&password=hunter2")
    assert "c2FsdA" not in redact("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
    assert "s3cr3t" not in redact("postgresql+psycopg://xuncha:s3cr3t@db/xuncha")
    assert redact("GET /api/v1/cases/12 200 in 4 ms") == "GET /api/v1/cases/12 200 in 4 ms"


def test_json_lines_redact_extras_and_tracebacks() -> None:
    formatter = app_logging.JsonFormatter()
    try:
        raise RuntimeError("token xat1.eyJ9.c2ln failed")
    except RuntimeError:
        info = sys.exc_info()
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "boom %s", ("K7QF-2MXD-9RTB",), info
    )
    record.password = "hunter2"  # extra=
    record.headers = {"Authorization": "Bearer xat1.a.b", "accept": "*/*"}
    line = formatter.format(record)
    entry = json.loads(line)
    assert "hunter2" not in line and "K7QF" not in line and "xat1.eyJ9" not in line
    assert entry["password"] == "[redacted]" and entry["headers"]["Authorization"] == "[redacted]"
    assert entry["headers"]["accept"] == "*/*"
