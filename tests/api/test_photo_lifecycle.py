"""Photo lifecycle on both profiles: jobs queued with the confirmation, abandoned uploads
cleaned up, signed URLs that cannot be altered, and before/after (整改前/整改后) pairing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from backend.core.db import transaction
from backend.jobs.models import Job
from backend.jobs.worker import run_until_idle
from backend.media import keys
from backend.media.cleanup import cleanup
from backend.media.ingest import RENDITIONS_JOB
from backend.storage.base import GrantExpired
from backend.storage.local import LocalObjectStore
from tests.api.test_grids_api import assert_problem
from tests.support.apps import ApiHarness
from tests.support.photos import (
    TUS,
    TusByHand,
    centre,
    declaration,
    direct_upload,
    get_bytes,
    jpeg_with_exif,
    photo_city,
    put_bytes,
    report_with_photo,
    tus_upload,
)
from tests.support.sync import device_headers
from tests.support.sync_city import SyncCity
from tests.unit.test_media_samples import encode, picture


@pytest.fixture
def city(api: ApiHarness, tmp_path: Path) -> SyncCity:
    return photo_city(api, tmp_path)


def rendition_jobs(city: SyncCity, photo_id: str) -> list[Job]:
    with transaction(city.api.runtime.sessions) as session:
        jobs = session.scalars(select(Job).where(Job.kind == RENDITIONS_JOB)).all()
        return [job for job in jobs if job.payload.get("photo_id") == photo_id]


def run_cleanup(city: SyncCity, hours_later: float) -> Any:
    later = datetime.now(UTC) + timedelta(hours=hours_later)
    with transaction(city.api.runtime.sessions) as session:
        return cleanup(session, city.api.runtime, now=later)


def test_the_renditions_job_exists_exactly_when_the_photo_is_stored(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    data = jpeg_with_exif(lon, lat)
    photo = report_with_photo(city, phone, data)
    headers = device_headers(phone)
    target = city.api.client.post(
        f"/api/v1/photos/{photo['photo_id']}/upload-target",
        json={k: photo[k] for k in ("sha256", "size", "content_type")},
        headers=headers,
    ).json()
    wrong = bytearray(data)
    wrong[-50] ^= 0x55
    put_bytes(city.api.client, target["url"], target["headers"], bytes(wrong))
    refused = city.api.client.post(f"/api/v1/photos/{photo['photo_id']}/complete", headers=headers)
    assert refused.status_code == 409, refused.text
    assert rendition_jobs(city, photo["photo_id"]) == []  # refused: no job either

    assert direct_upload(city, phone, photo, data).status_code == 200
    jobs = rendition_jobs(city, photo["photo_id"])
    assert [job.state for job in jobs] == ["queued"]
    assert direct_upload(city, phone, photo, data).status_code == 200  # idempotent
    assert len(rendition_jobs(city, photo["photo_id"])) == 1


def test_an_abandoned_tus_upload_expires_and_its_chunks_are_removed(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    data = jpeg_with_exif(lon, lat, size=(1200, 900))
    photo = report_with_photo(city, phone, data)
    upload, created = TusByHand.start(city, phone, photo, len(data))
    upload_id = upload.upload_id
    patched = upload.patch(0, data[:20_000])
    assert patched.status_code == 204
    store = city.api.runtime.object_store
    assert store.list_keys(keys.chunk_prefix(upload_id))
    expires = datetime.strptime(created.headers["upload-expires"], "%a, %d %b %Y %H:%M:%S GMT")
    hours = (expires.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds() / 3600
    assert 23.9 < hours <= 24.0  # XUNCHA_UPLOAD_EXPIRY_HOURS, default 24

    assert run_cleanup(city, 1).expired_uploads == 0  # still resumable: kept
    assert upload.offset() == 20_000
    assert run_cleanup(city, 25).expired_uploads == 1
    assert store.list_keys(keys.chunk_prefix(upload_id)) == []
    assert_problem(
        upload.patch(20_000, data[20_000:]),
        410,
        "upload_gone",
    )
    # The phone starts again from zero and succeeds.
    _, again = TusByHand.start(city, phone, photo, len(data))
    assert again.status_code == 201 and again.headers["location"] != created.headers["location"]


def test_an_unconfirmed_direct_upload_is_removed(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    data = jpeg_with_exif(lon, lat)
    photo = report_with_photo(city, phone, data)
    headers = device_headers(phone)
    target = city.api.client.post(
        f"/api/v1/photos/{photo['photo_id']}/upload-target",
        json={k: photo[k] for k in ("sha256", "size", "content_type")},
        headers=headers,
    ).json()
    assert put_bytes(city.api.client, target["url"], target["headers"], data) in (200, 204)
    store = city.api.runtime.object_store
    assert store.exists(keys.staging(photo["photo_id"]))
    assert run_cleanup(city, 25).expired_uploads == 1
    assert not store.exists(keys.staging(photo["photo_id"]))
    assert_problem(
        city.api.client.post(f"/api/v1/photos/{photo['photo_id']}/complete", headers=headers),
        409,
        "direct_upload_missing",
    )
    assert direct_upload(city, phone, photo, data).status_code == 200  # a new target works


def test_photo_links_are_short_lived_and_cannot_be_altered(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    data = jpeg_with_exif(lon, lat)
    photo = report_with_photo(city, phone, data)
    assert direct_upload(city, phone, photo, data).status_code == 200
    view = city.api.client.get(
        f"/api/v1/photos/{photo['photo_id']}", headers=device_headers(phone)
    ).json()
    expires = datetime.fromisoformat(view["links_expire_at"].replace("Z", "+00:00"))
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    original = view["links"]["original"]
    status, body = get_bytes(city.api.client, original)
    assert status == 200 and body == data
    assert "preview" not in view["links"]  # renditions are not made yet
    store = city.api.runtime.object_store
    if not isinstance(store, LocalObjectStore):
        assert "X-Amz-Signature=" in original and "X-Amz-Expires=" in original
        return
    token = original.rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    tampered = city.api.client.get(
        original.replace(token, flipped).removeprefix("http://testserver")
    )
    assert tampered.status_code == 403 and tampered.json()["code"] == "upload_grant_invalid"
    as_upload = city.api.client.put(f"/api/v1/media/direct/{token}", content=data)
    assert as_upload.status_code == 403  # a download grant is no upload grant
    with pytest.raises(GrantExpired):
        store.verify_grant(token, kind="get", now=datetime.now(UTC) + timedelta(minutes=16))


def _after_photo_of(
    city: SyncCity, phone: Any, report_id: str, data: bytes
) -> tuple[dict[str, Any], Any]:
    photo = declaration(data)
    phone.add_photos(report_id, [photo], role="after")
    result = phone.push().results[-1]
    assert result.status.value == "applied", result
    return photo, direct_upload(city, phone, photo, data)


def test_after_photos_are_paired_with_the_before_photos(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    before = jpeg_with_exif(lon, lat, taken="2026:11:23 08:14:00", seed=7, size=(1200, 900))
    before_photo = report_with_photo(city, phone, before)
    assert direct_upload(city, phone, before_photo, before).status_code == 200
    phone.pull()
    report_id = next(
        rid
        for rid, r in phone.records("report").items()
        if r["photos"][0]["photo_id"] == before_photo["photo_id"]
    )

    cleared = picture(640, 480, seed=8)  # the same street, the stall gone: a clean wall
    ImageDraw.Draw(cleared).rectangle((160, 120, 480, 360), fill=(235, 235, 225))
    fixed = jpeg_with_exif(lon + 0.0001, lat, taken="2026:11:23 09:40:00", image=cleared)  # ~10 m
    fixed_photo, done = _after_photo_of(city, phone, report_id, fixed)
    assert done.status_code == 200, done.text
    same_again = jpeg_with_exif(
        lon,
        lat,
        taken="2026:11:23 09:45:00",
        image=Image.open(io.BytesIO(before)).resize((1100, 825)),
    )
    lazy_photo, done = _after_photo_of(city, phone, report_id, same_again)
    assert done.status_code == 200, done.text
    assert run_until_idle(city.api.runtime) == 3

    headers = device_headers(phone)
    fixed_view = city.api.client.get(
        f"/api/v1/photos/{fixed_photo['photo_id']}", headers=headers
    ).json()
    pair = fixed_view["evidence"]["pair"]
    assert fixed_view["role"] == "after" and pair["before_id"] == before_photo["photo_id"]
    assert 5 < pair["distance_m"] < 20 and pair["time_gap_s"] == 86 * 60
    assert not [f for f in fixed_view["flags"] if f.startswith("after_photo_")]
    lazy_view = city.api.client.get(
        f"/api/v1/photos/{lazy_photo['photo_id']}", headers=headers
    ).json()
    assert "after_photo_identical_to_before" in lazy_view["flags"]
    phone.pull()
    report = phone.records("report")[report_id]
    assert "after_photo_identical_to_before" in report["flags"]
    assert [p["role"] for p in report["photos"]] == ["before", "after", "after"]


def _png_with_broken_pixels() -> bytes:
    """A PNG whose every chunk is intact (CRCs right) but whose compressed pixels are not."""
    import struct
    import zlib

    data = bytearray(encode(picture(64, 48), "PNG"))
    at = data.index(b"IDAT") - 4
    length = int.from_bytes(data[at : at + 4], "big")
    payload = bytes(data[at + 8 : at + 8 + 8]) + b"\x00\xff" * ((length - 8) // 2)
    payload = payload[:length].ljust(length, b"\x00")
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + payload))
    data[at + 8 : at + 8 + length + 4] = payload + crc
    return bytes(data)


def test_a_photo_intact_in_structure_but_not_in_pixels_is_kept_and_flagged(
    city: SyncCity,
) -> None:
    phone = city.phone("zhangwei")
    data = _png_with_broken_pixels()
    photo = report_with_photo(city, phone, data, content_type="image/png")
    assert tus_upload(city, phone, photo, data, chunk=len(data)).status_code == 204
    assert run_until_idle(city.api.runtime) == 1
    view = city.api.client.get(
        f"/api/v1/photos/{photo['photo_id']}", headers=device_headers(phone)
    ).json()
    assert view["state"] == "stored" and "photo_undecodable" in view["flags"]
    assert not view["renditions_ready"] and "preview" not in view["links"]
    assert view["evidence"]["decode_error"]
    phone.pull()
    report = next(iter(phone.records("report").values()))
    assert "photo_undecodable" in report["flags"]
    assert run_until_idle(city.api.runtime) == 0  # not retried


def test_racing_patches_at_one_offset_count_once(city: SyncCity) -> None:
    import threading

    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    data = jpeg_with_exif(lon, lat, size=(1200, 900))
    photo = report_with_photo(city, phone, data)
    upload, _ = TusByHand.start(city, phone, photo, len(data))
    headers = upload.headers
    answers: list[int] = []

    def send(piece: bytes) -> None:
        answer = upload.patch(0, piece)
        answers.append(answer.status_code)

    # A retry racing its original (one shorter), at the same offset.
    threads = [
        threading.Thread(target=send, args=(data[:30_000],)),
        threading.Thread(target=send, args=(data[:20_000],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [204, 409]
    offset = upload.offset()
    assert offset in (20_000, 30_000)
    store = city.api.runtime.object_store
    assert len(store.list_keys(keys.chunk_prefix(upload.upload_id))) == 1  # loser removed
    rest = upload.patch(offset, data[offset:])
    assert rest.status_code == 204, rest.text
    view = city.api.client.get(f"/api/v1/photos/{photo['photo_id']}", headers=headers).json()
    status, body = get_bytes(city.api.client, view["links"]["original"])
    assert status == 200 and body == data


def test_termination_deletes_the_chunks_and_ends_the_upload(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    data = jpeg_with_exif(lon, lat, size=(1200, 900))
    photo = report_with_photo(city, phone, data)
    upload, created = TusByHand.start(city, phone, photo, len(data))
    headers, url = upload.headers, upload.url
    upload_id = upload.upload_id
    upload.patch(0, data[:10_000])
    store = city.api.runtime.object_store
    assert len(store.list_keys(keys.chunk_prefix(upload_id))) == 1
    outsider = {**city.api.token_for("wangfang"), **TUS}
    assert_problem(city.api.client.delete(url, headers=outsider), 404, "upload_not_found")
    gone = city.api.client.delete(url, headers=headers)
    assert gone.status_code == 204 and gone.headers["tus-resumable"] == "1.0.0"
    assert store.list_keys(keys.chunk_prefix(upload_id)) == []
    assert city.api.client.head(url, headers=headers).status_code == 410
    _, again = TusByHand.start(city, phone, photo, len(data))
    assert again.status_code == 201 and again.headers["location"] != created.headers["location"]
    assert again.headers["upload-offset"] == "0"
