"""Sample photos for the media tests, generated at test time (no binary file is committed).

Helpers only, imported by ``test_media_*.py``; the few tests here check that the hostile
samples are what they claim to be, so a test using them cannot pass for the wrong reason.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
from PIL import ExifTags, Image

pillow_heif.register_heif_opener()

G = ExifTags.GPS
B = ExifTags.Base


def picture(
    width: int = 400, height: int = 300, *, seed: int = 0, noise: float = 6.0
) -> Image.Image:
    """A gradient with noise and a blue block in the top-left corner (to see orientation).

    The gradient's blue channel stays below 190, so the block is the only strong blue.
    """
    rng = np.random.default_rng(seed)
    y, x = np.ogrid[0:height, 0:width]
    channels = [x / width * 200 + 20, y / height * 200 + 20, (x + y) / (width + height) * 120 + 60]
    arr = np.empty((height, width, 3), np.uint8)
    for i, channel in enumerate(channels):
        noisy = channel + rng.normal(0, noise, (height, width)).astype(np.float32)
        arr[..., i] = np.clip(noisy, 0, 255)
    arr[: height // 4, : width // 4] = (20, 20, 250)
    return Image.fromarray(arr)


def exif_bytes(
    *,
    orientation: int | None = None,
    lat: tuple[float, ...] | None = None,
    lat_ref: str | None = "N",
    lon: tuple[float, ...] | None = None,
    lon_ref: str | None = "E",
    altitude: float | None = None,
    altitude_ref: bytes | None = None,
    accuracy: float | None = None,
    gps_date: str | None = None,
    gps_time: tuple[float, float, float] | None = None,
    taken: str | None = None,
    offset: str | None = None,
    subsec: str | None = None,
    make: str | None = None,
    model: str | None = None,
    software: str | None = None,
) -> bytes:
    """An EXIF block as phones write it, built with Pillow (big-endian TIFF)."""
    exif = Image.Exif()
    ifd0: dict[int, Any] = {
        B.Orientation: orientation,
        B.Make: make,
        B.Model: model,
        B.Software: software,
    }
    sub: dict[int, Any] = {
        B.DateTimeOriginal: taken,
        B.OffsetTimeOriginal: offset,
        B.SubsecTimeOriginal: subsec,
    }
    gps: dict[int, Any] = {
        G.GPSLatitudeRef: lat_ref if lat is not None else None,
        G.GPSLatitude: lat,
        G.GPSLongitudeRef: lon_ref if lon is not None else None,
        G.GPSLongitude: lon,
        G.GPSAltitudeRef: altitude_ref,
        G.GPSAltitude: altitude,
        G.GPSHPositioningError: accuracy,
        G.GPSDateStamp: gps_date,
        G.GPSTimeStamp: gps_time,
    }
    for target, values in (
        (exif, ifd0),
        (exif.get_ifd(ExifTags.IFD.Exif), sub),
        (exif.get_ifd(ExifTags.IFD.GPSInfo), gps),
    ):
        for tag, value in values.items():
            if value is not None:
                target[tag] = value
    return exif.tobytes()


# A photo taken in Shanghai (31.2304 N, 121.4737 E) on 2024-05-01 at 10:20:30 +08:00.
SHANGHAI_EXIF: dict[str, Any] = {
    "orientation": 1,
    "lat": (31.0, 13.0, 49.44),
    "lon": (121.0, 28.0, 25.32),
    "altitude": 12.5,
    "altitude_ref": b"\x00",
    "accuracy": 4.5,
    "gps_date": "2024:05:01",
    "gps_time": (2.0, 20.0, 29.0),
    "taken": "2024:05:01 10:20:30",
    "offset": "+08:00",
    "make": "HUAWEI",
    "model": "ALN-AL00",
    "software": "ALN-AL00 4.0.0.150",
}
SHANGHAI_LAT = 31 + 13 / 60 + 49.44 / 3600
SHANGHAI_LON = 121 + 28 / 60 + 25.32 / 3600


def encode(img: Image.Image, fmt: str, *, exif: bytes | None = None, **options: Any) -> bytes:
    out = io.BytesIO()
    if exif is not None:
        options["exif"] = exif
    img.save(out, fmt, **options)
    return out.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def app1_span(jpeg: bytes) -> tuple[int, int]:
    """(start, end) of the TIFF body inside the JPEG's Exif APP1 segment."""
    at = jpeg.index(b"Exif\0\0")
    length = int.from_bytes(jpeg[at - 2 : at], "big")
    return at + 6, at - 2 + length


def png_bomb(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG of ``width`` × ``height``, deflated to almost nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\0" * (1 + (width + 7) // 8)
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(row * 64) for _ in range(height // 64))
    idat += deflate.compress(row * (height % 64)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF header claims ``width`` × ``height``."""
    data = bytearray(encode(picture(64, 48), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def test_png_bomb_is_small_but_claims_900_million_pixels() -> None:
    bomb = png_bomb(30_000, 30_000)
    assert len(bomb) < 200_000
    width, height = struct.unpack(">II", bomb[16:24])
    assert width * height == 900_000_000
    # The deflate stream really holds every row (a real bomb, not a bare header).
    start = bomb.index(b"IDAT") + 4
    length = struct.unpack(">I", bomb[start - 8 : start - 4])[0]
    inflated = zlib.decompressobj().decompress(bomb[start : start + length], 10_000_000)
    assert len(inflated) == 10_000_000


def test_small_bomb_decodes_as_a_real_png() -> None:
    with Image.open(io.BytesIO(png_bomb(100, 70))) as img:
        img.load()
        assert img.size == (100, 70)
        assert img.getextrema() == (0, 0)


def test_jpeg_claiming_patches_the_frame_header() -> None:
    with Image.open(io.BytesIO(jpeg_claiming(5000, 4000))) as img:
        assert img.size == (5000, 4000)


def test_shanghai_exif_is_what_pillow_reads_back() -> None:
    exif = Image.Exif()
    exif.load(exif_bytes(**SHANGHAI_EXIF))
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert gps[G.GPSLatitudeRef] == "N"
    assert float(gps[G.GPSLatitude][2]) == 49.44
    assert exif.get_ifd(ExifTags.IFD.Exif)[B.OffsetTimeOriginal] == "+08:00"
