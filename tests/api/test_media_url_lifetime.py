"""Every signed URL the API hands out lives at most 15 minutes, on both stores.

The URLs are found by walking every JSON answer of a photo's life (upload target, complete,
photo metadata with original/preview/thumbnail links, the case detail) for anything that
looks like a signed URL, so a new field carrying one is checked too. S3 URLs carry their
lifetime in ``X-Amz-Date`` + ``X-Amz-Expires``; the local store's grants in their signed
payload (``iat``/``exp``). ``XUNCHA_MEDIA_URL_SECONDS`` above 900 is refused at start-up.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from backend.cli.main import app as cli
from backend.core.settings import Settings, load_settings
from backend.jobs.worker import run_until_idle
from backend.storage.base import MAX_PRESIGN_SECONDS
from tests.support.apps import ApiHarness
from tests.support.case_flow import case_city
from tests.support.photos import put_bytes
from tests.support.sync import device_headers

LIMIT = timedelta(seconds=900)
SKEW = timedelta(seconds=5)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _signed_urls(answer: Any) -> list[str]:
    return [
        s
        for s in _strings(answer)
        if "X-Amz-Signature=" in s or "/media/signed/" in s or "/media/direct/" in s
    ]


def _lifetime(url: str, now: datetime) -> tuple[timedelta, timedelta]:
    """(the lifetime the URL was signed with, the time it has left at ``now``)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if "X-Amz-Signature" in query:
        signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        life = timedelta(seconds=int(query["X-Amz-Expires"][0]))
        return life, signed + life - now
    token = parts.path.rsplit("/", 1)[1]
    payload_b64 = token.split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    expires = datetime.fromtimestamp(payload["exp"], UTC)
    return timedelta(seconds=payload["exp"] - payload["iat"]), expires - now


def _check(urls: list[str], seen: list[str]) -> None:
    now = datetime.now(UTC)
    for url in urls:
        life, left = _lifetime(url, now)
        assert timedelta(0) < life <= LIMIT, (url, life)
        assert timedelta(0) < left <= LIMIT + SKEW, (url, left)
        seen.append(url)


def _check_expiry_field(answer: dict[str, Any], name: str) -> None:
    expires = datetime.fromisoformat(answer[name].replace("Z", "+00:00"))
    assert timedelta(0) < expires - datetime.now(UTC) <= LIMIT + SKEW


@pytest.mark.parametrize("seconds", [None, 900])
def test_every_signed_url_lives_at_most_15_minutes(
    api: ApiHarness, tmp_path: Path, seconds: int | None
) -> None:
    if seconds is not None:
        api.runtime.settings.media_url_seconds = seconds  # the largest allowed
    flow = case_city(api, tmp_path)
    phone = flow.phone("zhangwei")
    photo, data = flow.photo(0)
    report_id = phone.create_report("0504", "店外经营", "", flow.city.centre_of(0), photos=[photo])
    assert phone.push().results[-1].status.value == "applied"
    headers = device_headers(phone)
    seen: list[str] = []
    target = flow.client.post(
        f"/api/v1/photos/{photo['photo_id']}/upload-target",
        json={k: photo[k] for k in ("sha256", "size", "content_type")},
        headers=headers,
    ).json()
    assert target["state"] == "declared"
    _check(_signed_urls(target), seen)
    _check_expiry_field(target, "expires_at")
    assert put_bytes(flow.client, target["url"], target["headers"], data) in (200, 204)
    completed = flow.client.post(f"/api/v1/photos/{photo['photo_id']}/complete", headers=headers)
    assert completed.status_code == 200, completed.text
    _check(_signed_urls(completed.json()), seen)
    run_until_idle(api.runtime)  # previews and thumbnails: links of their own
    view = flow.client.get(f"/api/v1/photos/{photo['photo_id']}", headers=headers).json()
    assert {"original", "preview", "thumbnail"} <= set(view["links"])
    _check(_signed_urls(view), seen)
    _check_expiry_field(view, "links_expire_at")
    phone.pull()
    case_id = phone.records("report")[report_id]["case_id"]
    detail = flow.client.get(f"/api/v1/cases/{case_id}", headers=flow.headers["intake"]).json()
    _check(_signed_urls(detail), seen)
    assert len(seen) >= 1 + 1 + 3 + 3
    if seconds is not None:
        now = datetime.now(UTC)
        assert all(_lifetime(url, now)[0] == timedelta(seconds=seconds) for url in seen)


def test_url_lifetimes_above_15_minutes_are_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert MAX_PRESIGN_SECONDS == 900
    assert Settings().media_url_seconds <= 900
    assert Settings(media_url_seconds=900).media_url_seconds == 900
    for bad in (901, 3600, 0):
        with pytest.raises(ValidationError):
            Settings(media_url_seconds=bad)
    monkeypatch.setenv("XUNCHA_MEDIA_URL_SECONDS", "901")
    with pytest.raises(ValidationError):
        load_settings()
    result = CliRunner().invoke(cli, ["serve"], env={"XUNCHA_MEDIA_URL_SECONDS": "901"})
    assert result.exit_code == 2
    assert "invalid configuration: media_url_seconds" in (result.stderr or result.output)
