"""The official tus clients against a live server, on both profiles, interrupted and resumed.

tuspy (Python) and tus-js-client (Node.js) are driven over real HTTP; uploads stop at random
offsets, one connection drops in the middle of a chunk, and each resume starts from the
offset the server reports. The photo must end up stored, verified and byte-identical.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tusclient import client as tus_client

from tests.support import tusjs_client
from tests.support.apps import ApiHarness
from tests.support.live import live_server
from tests.support.photos import (
    centre,
    get_bytes,
    jpeg_with_exif,
    photo_city,
    report_with_photo,
)
from tests.support.sync import device_headers
from tests.support.sync_city import SyncCity

TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def live(api: ApiHarness, tmp_path: Path) -> Iterator[tuple[SyncCity, str]]:
    city = photo_city(api, tmp_path)
    with live_server(api.client.app) as base:  # type: ignore[arg-type]
        yield city, base


def big_photo(city: SyncCity, seed: int) -> bytes:
    lon, lat = centre(city, 0)
    return jpeg_with_exif(lon, lat, seed=seed, size=(1400, 1000))


def stored_bytes(city: SyncCity, phone: Any, photo_id: str) -> tuple[dict[str, Any], bytes]:
    view = city.api.client.get(f"/api/v1/photos/{photo_id}", headers=device_headers(phone))
    assert view.status_code == 200, view.text
    body = view.json()
    status, data = get_bytes(city.api.client, body["links"]["original"])
    assert status == 200
    return body, data


def server_offset(url: str, headers: dict[str, str]) -> int:
    import urllib.request

    request = urllib.request.Request(url, headers={**headers, **TUS}, method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.headers["Upload-Offset"])


def drop_mid_chunk(url: str, headers: dict[str, str], offset: int, piece: bytes) -> None:
    """Send a PATCH that announces ``piece`` but closes the connection halfway through it."""
    parts = urlsplit(url)
    lines = [
        f"PATCH {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Tus-Resumable: 1.0.0",
        "Content-Type: application/offset+octet-stream",
        f"Upload-Offset: {offset}",
        f"Content-Length: {len(piece)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        conn.sendall(piece[: len(piece) // 2])
    time.sleep(0.2)  # let the server notice the disconnect


@pytest.mark.parametrize("seed", [11, 29])
def test_tuspy_resumes_at_random_offsets(live: tuple[SyncCity, str], seed: int) -> None:
    city, base = live
    rng = random.Random(seed)
    phone = city.phone("zhangwei")
    data = big_photo(city, seed)
    photo = report_with_photo(city, phone, data)
    headers = device_headers(phone)
    client = tus_client.TusClient(f"{base}/api/v1/uploads", headers=headers)
    stops = sorted(rng.sample(range(1, len(data)), 3))

    def uploader(url: str | None) -> Any:
        import io

        return client.uploader(
            file_stream=io.BytesIO(data),
            url=url,
            chunk_size=rng.randint(8_000, 64_000),
            metadata={"photo_id": photo["photo_id"], "filename": "IMG_0001.jpg"},
            upload_checksum=True,
        )

    first = uploader(None)
    first.upload(stop_at=stops[0])
    url = first.url
    assert server_offset(url, headers) == stops[0]
    # The signal goes in the middle of the next chunk: nothing of it counts.
    drop_mid_chunk(url, headers, stops[0], data[stops[0] : stops[0] + 30_000])
    assert server_offset(url, headers) == stops[0]
    for stop in stops[1:]:
        resumed = uploader(url)  # a fresh client asks the server where to go on
        assert resumed.offset == server_offset(url, headers)
        resumed.upload(stop_at=stop)
        assert server_offset(url, headers) == stop
    uploader(url).upload()

    view, stored = stored_bytes(city, phone, photo["photo_id"])
    assert view["state"] == "stored" and view["uploaded_via"] == "tus"
    assert hashlib.sha256(stored).hexdigest() == photo["sha256"] and stored == data
    assert view["exif"]["gps_lat"] is not None and view["exif"]["gps_lon"] is not None


def test_tuspy_refuses_an_undeclared_photo(live: tuple[SyncCity, str]) -> None:
    city, base = live
    phone = city.phone("zhangwei")
    client = tus_client.TusClient(f"{base}/api/v1/uploads", headers=device_headers(phone))
    import io

    from tusclient.exceptions import TusCommunicationError

    data = big_photo(city, 5)
    uploader = client.uploader(
        file_stream=io.BytesIO(data), metadata={"photo_id": "6c0e7f3e-0000-4000-8000-000000000000"}
    )
    with pytest.raises(TusCommunicationError) as refused:
        uploader.upload()
    assert refused.value.status_code == 404


def _node_or_skip() -> None:
    try:
        tusjs_client.ensure_installed()
    except tusjs_client.NodeUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI=true: the official JS client test must run)", pytrace=False)
        pytest.skip(str(exc))


@pytest.mark.parametrize("seed", [3, 17])
def test_tus_js_client_resumes_at_random_offsets(
    live: tuple[SyncCity, str], tmp_path: Path, seed: int
) -> None:
    _node_or_skip()
    city, base = live
    rng = random.Random(seed)
    phone = city.phone("zhangwei")
    data = big_photo(city, seed)
    photo = report_with_photo(city, phone, data)
    file = tmp_path / "IMG_0002.jpg"
    file.write_bytes(data)
    token = device_headers(phone)["Authorization"].removeprefix("Bearer ")
    stops = sorted(rng.sample(range(1, len(data)), 2))
    result = tusjs_client.upload(
        f"{base}/api/v1/uploads",
        file,
        token,
        {"photo_id": photo["photo_id"], "filename": file.name},
        chunk_size=rng.randint(16_000, 80_000),
        stop_offsets=stops,
    )
    assert result["ok"], result
    assert result["resumes"] >= 1
    view, stored = stored_bytes(city, phone, photo["photo_id"])
    assert view["state"] == "stored" and view["uploaded_via"] == "tus"
    assert stored == data
