"""Photos for API tests: real JPEG/HEIC bytes with EXIF, declared through sync, uploaded."""

from __future__ import annotations

import base64
import hashlib
import io
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from tests.support.apps import ApiHarness
from tests.support.sync import device_headers
from tests.support.sync_city import SyncCity, build_city
from tests.unit.test_media_samples import encode, exif_bytes, picture

TUS = {"Tus-Resumable": "1.0.0"}
CHINA = timezone(timedelta(hours=8))


def photo_city(api: ApiHarness, tmp: Path) -> SyncCity:
    """A 4×3 city; zhangwei patrols grids 0 and 1, lina grid 5."""
    city = build_city(api, tmp)
    city.add_inspector("zhangwei", [city.codes[0], city.codes[1]])
    city.add_inspector("lina", [city.codes[5]])
    return city


def centre(city: SyncCity, grid: int) -> tuple[float, float]:
    point = city.geoms[grid].centroid
    return point.x, point.y


def dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes_full = (value - degrees) * 60
    minutes = int(minutes_full)
    return (float(degrees), float(minutes), round((minutes_full - minutes) * 60, 4))


def jpeg_with_exif(
    lon: float | None,
    lat: float | None,
    *,
    taken: str | None = None,
    offset: str | None = "+08:00",
    seed: int = 1,
    size: tuple[int, int] = (640, 480),
    image: Image.Image | None = None,
) -> bytes:
    """``taken``: EXIF local time (default: ten minutes ago in China). A fixed default
    date made the evidence time check flag these photos once it was a day in the past."""
    if taken is None:
        taken = (datetime.now(CHINA) - timedelta(minutes=10)).strftime("%Y:%m:%d %H:%M:%S")
    gps: dict[str, Any] = {}
    if lat is not None and lon is not None:
        gps = {"lat": dms(lat), "lon": dms(lon), "lat_ref": "N", "lon_ref": "E"}
    exif = exif_bytes(taken=taken, offset=offset, make="HUAWEI", model="ALN-AL00", **gps)
    img = image if image is not None else picture(*size, seed=seed)
    return encode(img, "JPEG", exif=exif, quality=88)


def declaration(data: bytes, content_type: str = "image/jpeg") -> dict[str, Any]:
    return {
        "photo_id": str(uuid.uuid4()),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "content_type": content_type,
    }


def report_with_photo(
    city: SyncCity, phone: Any, data: bytes, grid: int = 0, content_type: str = "image/jpeg"
) -> dict[str, Any]:
    """Create and push a report declaring one photo; returns the declaration."""
    photo = declaration(data, content_type)
    phone.create_report("0504", "店外经营", "", city.centre_of(grid), photos=[photo])
    result = phone.push().results[-1]
    assert result.status.value == "applied", result
    return photo


def put_bytes(client: Any, url: str, headers: dict[str, str], data: bytes) -> int:
    """PUT to a target URL: our own API (local store) in-process, anything else over HTTP."""
    if url.startswith("http://testserver"):
        return int(
            client.put(
                url.removeprefix("http://testserver"), content=data, headers=headers
            ).status_code
        )
    request = urllib.request.Request(url, data=data, headers=headers, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def get_bytes(client: Any, url: str) -> tuple[int, bytes]:
    if url.startswith("http://testserver"):
        answer = client.get(url.removeprefix("http://testserver"))
        return int(answer.status_code), bytes(answer.content)
    try:
        with urllib.request.urlopen(url, timeout=30) as remote:
            return int(remote.status), remote.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def direct_upload(city: SyncCity, phone: Any, photo: dict[str, Any], data: bytes) -> Any:
    headers = device_headers(phone)
    target = city.api.client.post(
        f"/api/v1/photos/{photo['photo_id']}/upload-target",
        json={k: photo[k] for k in ("sha256", "size", "content_type")},
        headers=headers,
    )
    assert target.status_code == 200, target.text
    body = target.json()
    if body["state"] == "declared":
        assert put_bytes(city.api.client, body["url"], body["headers"], data) in (200, 204)
    return city.api.client.post(f"/api/v1/photos/{photo['photo_id']}/complete", headers=headers)


@dataclass
class TusByHand:
    """One tus upload driven request by request through the test client."""

    city: SyncCity
    headers: dict[str, str]
    url: str

    @classmethod
    def start(
        cls, city: SyncCity, phone: Any, photo: dict[str, Any], length: int
    ) -> tuple[TusByHand, Any]:
        """POST the creation request; (the upload, the raw answer)."""
        headers = {**device_headers(phone), **TUS}
        metadata = "photo_id " + base64.b64encode(photo["photo_id"].encode()).decode()
        created = city.api.client.post(
            "/api/v1/uploads",
            headers={**headers, "Upload-Length": str(length), "Upload-Metadata": metadata},
        )
        url = created.headers.get("location", "").removeprefix("http://testserver")
        return cls(city, headers, url), created

    @property
    def upload_id(self) -> str:
        return self.url.rsplit("/", 1)[1]

    def patch(self, offset: int | str, piece: bytes, extra: dict[str, str] | None = None) -> Any:
        return self.city.api.client.patch(
            self.url,
            content=piece,
            headers={
                **self.headers,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                **(extra or {}),
            },
        )

    def offset(self) -> int:
        return int(
            self.city.api.client.head(self.url, headers=self.headers).headers["upload-offset"]
        )


def tus_upload(city: SyncCity, phone: Any, photo: dict[str, Any], data: bytes, chunk: int) -> Any:
    upload, created = TusByHand.start(city, phone, photo, len(data))
    assert created.status_code == 201, created.text
    assert created.headers["tus-resumable"] == "1.0.0"
    answer = None
    for offset in range(0, len(data), chunk):
        piece = data[offset : offset + chunk]
        digest = base64.b64encode(hashlib.sha1(piece).digest()).decode()
        answer = upload.patch(offset, piece, {"Upload-Checksum": f"sha1 {digest}"})
        if answer.status_code != 204:
            return answer
    return answer
