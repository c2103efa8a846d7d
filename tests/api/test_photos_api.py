"""Photo evidence on both profiles: direct upload, tus by hand, renditions, flags, access."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backend.accounts.models import Role
from backend.jobs.worker import run_until_idle
from tests.api.test_grids_api import assert_problem
from tests.support.apps import ApiHarness
from tests.support.photos import (
    TUS,
    TusByHand,
    centre,
    direct_upload,
    dms,
    get_bytes,
    image_size,
    jpeg_with_exif,
    photo_city,
    put_bytes,
    report_with_photo,
    tus_upload,
)
from tests.support.sync import device_headers
from tests.support.sync_city import SyncCity


@pytest.fixture
def city(api: ApiHarness, tmp_path: Path) -> SyncCity:
    return photo_city(api, tmp_path)


def test_direct_upload_verifies_and_keeps_the_original(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    data = jpeg_with_exif(lon, lat)
    photo = report_with_photo(city, phone, data)
    done = direct_upload(city, phone, photo, data)
    assert done.status_code == 200, done.text
    stored = done.json()
    assert stored["state"] == "stored" and stored["detected_type"] == "image/jpeg"
    assert stored["uploaded_via"] == "direct" and stored["flags"] == []
    assert stored["exif"]["make"] == "HUAWEI" and stored["evidence"]["distance_m"] < 5
    status, original = get_bytes(city.api.client, stored["links"]["original"])
    assert status == 200 and original == data  # byte for byte
    expires = datetime.fromisoformat(stored["links_expire_at"].replace("Z", "+00:00"))
    assert (expires - datetime.now(UTC)).total_seconds() <= 900
    again = direct_upload(city, phone, photo, data)  # idempotent
    assert again.status_code == 200 and again.json()["stored_at"] == stored["stored_at"]


def test_wrong_bytes_are_refused_and_nothing_is_kept(city: SyncCity) -> None:
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
    tampered = bytearray(data)
    tampered[-100] ^= 0xFF
    put_bytes(city.api.client, target["url"], target["headers"], bytes(tampered))
    refused = city.api.client.post(f"/api/v1/photos/{photo['photo_id']}/complete", headers=headers)
    assert refused.status_code in (409, 403), refused.text  # local store refuses at PUT time
    view = city.api.client.get(f"/api/v1/photos/{photo['photo_id']}", headers=headers).json()
    assert view["state"] == "declared" and "original" not in view["links"]
    other = dict(photo, sha256="0" * 64)
    mismatch = city.api.client.post(
        f"/api/v1/photos/{photo['photo_id']}/upload-target",
        json={k: other[k] for k in ("sha256", "size", "content_type")},
        headers=headers,
    )
    assert_problem(mismatch, 409, "photo_declaration_mismatch")


def test_tus_upload_by_hand_with_checksums_and_offsets(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    data = jpeg_with_exif(lon, lat, size=(1600, 1200))
    photo = report_with_photo(city, phone, data)
    upload, _ = TusByHand.start(city, phone, photo, len(data))
    headers, url = upload.headers, upload.url
    first = data[:50_000]
    ok = upload.patch(0, first)
    assert ok.status_code == 204 and ok.headers["upload-offset"] == "50000"
    stale = upload.patch(0, first)
    assert_problem(stale, 409, "upload_offset_mismatch")
    wrong_sum = upload.patch(
        50_000,
        data[50_000:60_000],
        {"Upload-Checksum": "sha1 " + base64.b64encode(b"x" * 20).decode()},
    )
    assert wrong_sum.status_code == 460
    head = city.api.client.head(url, headers=headers)
    assert head.headers["upload-offset"] == "50000" and head.headers["cache-control"] == "no-store"
    rest = upload.patch(50_000, data[50_000:])
    assert rest.status_code == 204, rest.text
    view = city.api.client.get(f"/api/v1/photos/{photo['photo_id']}", headers=headers).json()
    assert view["state"] == "stored" and view["uploaded_via"] == "tus"
    # A HEAD answer has no body, so the version check is shown on PATCH.
    assert_problem(
        city.api.client.patch(url, content=b"", headers={**device_headers(phone)}),
        412,
        "tus_version_unsupported",
    )
    assert city.api.client.head(url, headers={**device_headers(phone)}).status_code == 412
    options = city.api.client.options("/api/v1/uploads")
    assert "checksum" in options.headers["tus-extension"]


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("truncated", lambda d: d[: len(d) // 2], (422, "photo_corrupt")),
        ("not-an-image", lambda d: b"%PDF-1.7 " + d[9:], (415, "photo_type_unsupported")),
    ],
)
def test_bad_photos_are_refused_on_both_paths(city: SyncCity, name: str, make, expected) -> None:  # type: ignore[no-untyped-def]
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    bad = make(jpeg_with_exif(lon, lat))
    for path in ("direct", "tus"):
        photo = report_with_photo(city, phone, bad)
        if path == "direct":
            answer = direct_upload(city, phone, photo, bad)
        else:
            answer = tus_upload(city, phone, photo, bad, chunk=4096)
        assert_problem(answer, *expected)
        view = city.api.client.get(
            f"/api/v1/photos/{photo['photo_id']}", headers=device_headers(phone)
        ).json()
        assert view["state"] == "declared", (name, path)


def test_bomb_and_oversize_and_undeclared(city: SyncCity) -> None:
    from tests.unit.test_media_samples import png_bomb

    phone = city.phone("zhangwei")
    bomb = png_bomb(30_000, 30_000)
    photo = report_with_photo(city, phone, bomb)
    photo_png = dict(photo, content_type="image/jpeg")  # declared as JPEG: sniffing decides
    assert_problem(direct_upload(city, phone, photo_png, bomb), 422, "photo_too_many_pixels")
    other = city.phone("lina")
    headers = {**device_headers(other), **TUS}
    metadata = "photo_id " + base64.b64encode(photo["photo_id"].encode()).decode()
    foreign = city.api.client.post(
        "/api/v1/uploads",
        headers={**headers, "Upload-Length": str(len(bomb)), "Upload-Metadata": metadata},
    )
    assert_problem(foreign, 404, "photo_not_declared")
    huge = city.api.client.post(
        "/api/v1/uploads",
        headers={
            **device_headers(phone),
            **TUS,
            "Upload-Length": str(50 * 1024 * 1024),
            "Upload-Metadata": metadata,
        },
    )
    assert huge.status_code == 413


def test_renditions_flags_and_near_duplicates(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    far = jpeg_with_exif(lon + 0.01, lat, size=(2000, 1500), seed=5)  # ~1 km east
    photo = report_with_photo(city, phone, far)
    assert direct_upload(city, phone, photo, far).status_code == 200
    assert run_until_idle(city.api.runtime) >= 1
    headers = device_headers(phone)
    view = city.api.client.get(f"/api/v1/photos/{photo['photo_id']}", headers=headers).json()
    assert view["renditions_ready"] and "photo_far_from_report" in view["flags"]
    status, preview = get_bytes(city.api.client, view["links"]["preview"])
    assert status == 200 and max(image_size(preview)) == 1280
    status, thumb = get_bytes(city.api.client, view["links"]["thumbnail"])
    assert status == 200 and max(image_size(thumb)) == 320
    # The same scene, re-encoded: a near-duplicate in another report.
    import io

    from PIL import Image

    again = jpeg_with_exif(lon, lat, image=Image.open(io.BytesIO(far)).resize((1900, 1425)))
    second = report_with_photo(city, phone, again)
    assert direct_upload(city, phone, second, again).status_code == 200
    run_until_idle(city.api.runtime)
    view2 = city.api.client.get(f"/api/v1/photos/{second['photo_id']}", headers=headers).json()
    assert "photo_near_duplicate" in view2["flags"]
    phone.pull()
    report = next(
        r
        for r in phone.records("report").values()
        if r["photos"][0]["photo_id"] == second["photo_id"]
    )
    assert "photo_near_duplicate" in report["flags"]
    assert run_until_idle(city.api.runtime) == 0  # nothing left, nothing done twice


def test_reused_photo_and_access_rules(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    data = jpeg_with_exif(lon, lat)
    first = report_with_photo(city, phone, data)
    assert direct_upload(city, phone, first, data).status_code == 200
    second = report_with_photo(city, phone, data)  # the same bytes in a new report
    done = direct_upload(city, phone, second, data).json()
    assert "photo_reused" in done["flags"]
    outsider = city.api.token_for("wangfang", Role.inspector)  # no grids
    assert_problem(
        city.api.client.get(f"/api/v1/photos/{first['photo_id']}", headers=outsider),
        403,
        "forbidden",
    )
    reviewer = city.api.token_for("reviewer", Role.intake_operator)
    seen = city.api.client.get(f"/api/v1/photos/{first['photo_id']}", headers=reviewer)
    assert seen.status_code == 200 and seen.json()["links"]["original"]


@pytest.mark.parametrize(
    ("fmt", "content_type", "options", "has_exif"),
    [
        ("HEIF", "image/heic", {"quality": 80}, True),
        ("WEBP", "image/webp", {"quality": 80}, True),
        ("PNG", "image/png", {}, False),
    ],
)
def test_heic_webp_and_png_go_through_tus_with_their_metadata(
    city: SyncCity, fmt: str, content_type: str, options: dict[str, Any], has_exif: bool
) -> None:
    from tests.unit.test_media_samples import encode, exif_bytes, picture

    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    gps = {"lat": dms(lat), "lon": dms(lon), "lat_ref": "N", "lon_ref": "E"}
    exif = exif_bytes(taken="2026:11:23 08:14:00", offset="+08:00", make="Apple", **gps)
    data = encode(picture(900, 600), fmt, exif=exif if has_exif else None, **options)
    photo = report_with_photo(city, phone, data, content_type=content_type)
    done = tus_upload(city, phone, photo, data, chunk=40_000)
    assert done is not None and done.status_code == 204, done.text
    view = city.api.client.get(
        f"/api/v1/photos/{photo['photo_id']}", headers=device_headers(phone)
    ).json()
    assert view["state"] == "stored" and view["detected_type"] == content_type
    assert (view["width"], view["height"]) == (900, 600)
    if has_exif:
        assert abs(view["exif"]["gps_lat"] - lat) < 1e-4 and view["exif"]["make"] == "Apple"
        assert view["exif"]["taken_at"].startswith("2026-11-23T08:14:00+08:00")
        assert "photo_far_from_report" not in view["flags"]
    else:
        assert "photo_gps_missing" in view["flags"] and "photo_time_missing" in view["flags"]
    run_until_idle(city.api.runtime)
    view = city.api.client.get(
        f"/api/v1/photos/{photo['photo_id']}", headers=device_headers(phone)
    ).json()
    status, preview = get_bytes(city.api.client, view["links"]["preview"])
    assert status == 200 and image_size(preview) == (900, 600)  # never enlarged


def test_tus_method_override_for_networks_that_only_pass_post(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    lon, lat = centre(city, 0)
    data = jpeg_with_exif(lon, lat)
    photo = report_with_photo(city, phone, data)
    upload, _ = TusByHand.start(city, phone, photo, len(data))
    headers, url = upload.headers, upload.url
    patched = city.api.client.post(
        url,
        content=data,
        headers={
            **headers,
            "X-HTTP-Method-Override": "PATCH",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert patched.status_code == 204 and patched.headers["upload-offset"] == str(len(data))
    view = city.api.client.get(f"/api/v1/photos/{photo['photo_id']}", headers=headers).json()
    assert view["state"] == "stored"
