"""backend.media.inspect: what is accepted, what is refused (and how cheaply), what is read."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backend.core.errors import InvalidInput, UnsupportedMediaType
from backend.media.exif import ExifData
from backend.media.inspect import (
    PhotoCorrupt,
    PhotoTooLarge,
    PhotoTypeUnsupported,
    inspect_photo,
    sniff,
    sniff_bytes,
)
from tests.unit.test_media_samples import (
    SHANGHAI_EXIF,
    SHANGHAI_LAT,
    SHANGHAI_LON,
    app1_span,
    encode,
    exif_bytes,
    jpeg_claiming,
    picture,
    png_bomb,
    write,
)

FULL_EXIF = exif_bytes(**{**SHANGHAI_EXIF, "orientation": 6})


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\0\0\0\x08meta"


# --- sniffing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
        (b"\xff\xd8\xff\xe1<html><script>", "image/jpeg"),  # judged as JPEG, then must decode
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
        (b"RIFF\x10\0\0\0WEBPVP8 ", "image/webp"),
        (ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
        (ftyp(b"heix", b"mif1"), "image/heic"),
        (ftyp(b"hevc", b"msf1"), "image/heic"),
        (ftyp(b"mif1", b"mif1", b"heic"), "image/heic"),
        (ftyp(b"mif1", b"mif1", b"miaf"), "image/heif"),
        (ftyp(b"msf1", b"msf1"), "image/heif"),
    ],
)
def test_sniffs_the_four_types(head: bytes, expected: str) -> None:
    assert sniff_bytes(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\xff\xd8",
        b"GIF89a\x01\0\x01\0",
        b"BM6\0\0\0",
        b"II*\0\x08\0\0\0",  # TIFF
        b"%PDF-1.7",
        b"PK\x03\x04",
        b"RIFF\x10\0\0\0WAVEfmt ",
        b"<html><body>\xff\xd8\xff</body></html>",
        ftyp(b"avif", b"mif1", b"avif"),
        ftyp(b"mif1", b"mif1", b"avif"),  # AVIF dressed as generic HEIF
        ftyp(b"isom", b"mp42"),  # an MP4 video
        ftyp(b"qt  "),
        b"\0\0\0\x04ftyp",  # a box too short to hold a brand
    ],
)
def test_refuses_everything_else(head: bytes) -> None:
    with pytest.raises(PhotoTypeUnsupported):
        sniff_bytes(head)


def test_file_names_and_extensions_are_not_trusted(tmp_path: Path) -> None:
    png = write(tmp_path / "photo.jpg", encode(picture(), "PNG"))
    assert sniff(png) == "image/png"
    gif = write(tmp_path / "photo.heic", encode(picture(), "GIF"))
    with pytest.raises(PhotoTypeUnsupported):
        inspect_photo(gif)


def test_error_types_codes_and_statuses() -> None:
    assert issubclass(PhotoTypeUnsupported, UnsupportedMediaType)
    assert (PhotoTypeUnsupported.status, PhotoTypeUnsupported.code) == (
        415,
        "photo_type_unsupported",
    )
    assert issubclass(PhotoTooLarge, InvalidInput)
    assert (PhotoTooLarge.status, PhotoTooLarge.code) == (422, "photo_too_many_pixels")
    assert issubclass(PhotoCorrupt, InvalidInput)
    assert (PhotoCorrupt.status, PhotoCorrupt.code) == (422, "photo_corrupt")


# --- accepted photos and their metadata --------------------------------------------------


def test_jpeg_with_full_exif(tmp_path: Path) -> None:
    path = write(tmp_path / "a", encode(picture(400, 300), "JPEG", exif=FULL_EXIF, quality=90))
    info = inspect_photo(path)
    assert info.content_type == "image/jpeg"
    assert (info.width, info.height) == (300, 400)  # Orientation 6: displayed as portrait
    exif = info.exif
    assert exif.orientation == 6
    assert exif.gps_lat == pytest.approx(SHANGHAI_LAT)
    assert exif.gps_lon == pytest.approx(SHANGHAI_LON)
    assert exif.taken_at == datetime(2024, 5, 1, 2, 20, 30, tzinfo=UTC)
    assert exif.offset == "+08:00"
    assert exif.make == "HUAWEI"
    json.dumps(exif.as_json())


def test_heic_with_exif(tmp_path: Path) -> None:
    data = encode(picture(400, 300), "HEIF", exif=FULL_EXIF, quality=70)
    info = inspect_photo(write(tmp_path / "a", data))
    assert info.content_type == "image/heic"
    # pillow-heif stores Orientation 6 as the container's rotation and decodes upright; the
    # camera's value is still what the evidence records.
    assert (info.width, info.height) == (300, 400)
    assert info.exif.orientation == 6
    assert info.exif.gps_lat == pytest.approx(SHANGHAI_LAT)
    assert info.exif.taken_at == datetime(2024, 5, 1, 2, 20, 30, tzinfo=UTC)


def test_generic_heif_brand_is_image_heif(tmp_path: Path) -> None:
    data = bytearray(encode(picture(64, 48), "HEIF", quality=70))
    assert data[8:12] == b"heic"
    end = int.from_bytes(data[:4], "big")
    data[8:12] = b"mif1"
    data[16:end] = data[16:end].replace(b"heic", b"mif1")
    info = inspect_photo(write(tmp_path / "a", bytes(data)))
    assert info.content_type == "image/heif"
    assert (info.width, info.height) == (64, 48)


def test_png_with_exif_chunk(tmp_path: Path) -> None:
    info = inspect_photo(write(tmp_path / "a", encode(picture(), "PNG", exif=FULL_EXIF)))
    assert info.content_type == "image/png"
    assert (info.width, info.height) == (300, 400)
    assert info.exif.gps_lon == pytest.approx(SHANGHAI_LON)


def test_webp_with_exif(tmp_path: Path) -> None:
    info = inspect_photo(write(tmp_path / "a", encode(picture(), "WEBP", exif=FULL_EXIF)))
    assert info.content_type == "image/webp"
    assert info.exif.taken_at_local == datetime(2024, 5, 1, 10, 20, 30)


def test_photo_without_exif(tmp_path: Path) -> None:
    info = inspect_photo(write(tmp_path / "a", encode(picture(), "JPEG")))
    assert (info.width, info.height, info.exif) == (400, 300, ExifData())


def test_progressive_cmyk_and_grey_jpegs(tmp_path: Path) -> None:
    for i, img in enumerate([picture(), picture().convert("CMYK"), picture().convert("L")]):
        path = write(tmp_path / str(i), encode(img, "JPEG", progressive=True))
        assert inspect_photo(path).width == 400


def test_trailing_bytes_after_the_image_are_ignored(tmp_path: Path) -> None:
    # Motion photos append an MP4; a JPEG+ZIP polyglot is the same shape. The picture is what
    # the JPEG decodes to, exactly as without the tail.
    jpeg = encode(picture(), "JPEG", exif=FULL_EXIF)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.txt", "not a picture")
    plain = inspect_photo(write(tmp_path / "plain", jpeg))
    polyglot = inspect_photo(write(tmp_path / "poly", jpeg + archive.getvalue()))
    assert polyglot == plain


def test_multi_picture_jpeg_is_a_jpeg(tmp_path: Path) -> None:
    out = io.BytesIO()
    picture().save(out, "MPO", save_all=True, append_images=[picture(seed=1)])
    assert inspect_photo(write(tmp_path / "a", out.getvalue())).content_type == "image/jpeg"


# --- refused photos ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", os.urandom(4096), "巡查上报 photo.jpg\n".encode() * 100],
    ids=["empty", "random", "text"],
)
def test_non_images_are_unsupported(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(PhotoTypeUnsupported):
        inspect_photo(write(tmp_path / "a", data))


def test_gif_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(PhotoTypeUnsupported) as caught:
        inspect_photo(write(tmp_path / "a", encode(picture(), "GIF")))
    assert caught.value.status == 415


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_truncated_photos_are_corrupt(tmp_path: Path, fmt: str) -> None:
    data = encode(picture(), fmt, exif=FULL_EXIF)
    with pytest.raises(PhotoCorrupt) as caught:
        inspect_photo(write(tmp_path / "a", data[: len(data) // 2]))
    assert caught.value.status == 422
    assert str(tmp_path) not in caught.value.detail


def test_a_jpeg_missing_only_its_end_marker_is_corrupt(tmp_path: Path) -> None:
    data = encode(picture(), "JPEG")
    with pytest.raises(PhotoCorrupt):
        inspect_photo(write(tmp_path / "a", data[:-2]))


def test_html_behind_jpeg_magic_is_corrupt(tmp_path: Path) -> None:
    fake = b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>" * 20
    with pytest.raises(PhotoCorrupt):
        inspect_photo(write(tmp_path / "a", fake))


def test_damaged_scan_data_inside_a_png_is_corrupt(tmp_path: Path) -> None:
    data = bytearray(encode(picture(), "PNG"))
    at = data.index(b"IDAT") + 200
    data[at : at + 64] = os.urandom(64)
    with pytest.raises(PhotoCorrupt):
        inspect_photo(write(tmp_path / "a", bytes(data)))


def test_png_bomb_is_refused_quickly_from_its_header(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb", png_bomb(30_000, 30_000))
    started = time.perf_counter()
    with pytest.raises(PhotoTooLarge) as caught:
        inspect_photo(path)
    assert time.perf_counter() - started < 1.0
    assert caught.value.code == "photo_too_many_pixels"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_png_bomb_is_refused_without_allocating_its_pixels(tmp_path: Path) -> None:
    # In a fresh interpreter, so the high-water mark is this refusal's alone: decoding the
    # 900-megapixel bomb would take 900 MB; refusing it takes what the interpreter needs.
    path = write(tmp_path / "bomb", png_bomb(30_000, 30_000))
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    script = (
        "import re, sys\n"
        "from backend.media.inspect import PhotoTooLarge, inspect_photo\n"
        "try:\n"
        "    inspect_photo(sys.argv[1])\n"
        "except PhotoTooLarge:\n"
        "    status = open('/proc/self/status').read()\n"
        "    print(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    peak_kib = int(done.stdout.strip())
    assert peak_kib < 300 * 1024, done.stderr


def test_more_pixels_than_the_limit_but_less_than_pillows_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a", png_bomb(10_000, 7_000))  # 70 MP: below Pillow's 89 MP guard
    with pytest.raises(PhotoTooLarge):
        inspect_photo(path)
    assert inspect_photo(path, max_pixels=80_000_000).width == 10_000  # decodes when allowed


def test_a_jpeg_header_claiming_billions_of_pixels_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PhotoTooLarge):
        inspect_photo(write(tmp_path / "a", jpeg_claiming(60_000, 60_000)))


def test_max_pixels_applies_to_ordinary_photos(tmp_path: Path) -> None:
    path = write(tmp_path / "a", encode(picture(400, 300), "JPEG"))
    with pytest.raises(PhotoTooLarge) as caught:
        inspect_photo(path, max_pixels=100_000)
    assert caught.value.extra == {"width": 400, "height": 300, "max_pixels": 100_000}


# --- hostile EXIF never costs the photo --------------------------------------------------
# Pillow parses EXIF itself while opening a JPEG without JFIF (for the DPI) and warns about
# what it cannot read; those warnings are expected here.
PILLOW_EXIF_WARNINGS = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")


def _jpeg_with_damaged_exif(damage: dict[int, bytes]) -> bytes:
    data = bytearray(encode(picture(), "JPEG", exif=FULL_EXIF))
    start, _end = app1_span(bytes(data))
    for offset, value in damage.items():
        data[start + offset : start + offset + len(value)] = value
    return bytes(data)


@PILLOW_EXIF_WARNINGS
@pytest.mark.parametrize(
    "damage",
    [
        {4: b"\xff\xff\xff\xf0"},  # IFD0 offset far outside the block
        {8: b"\xff\xff"},  # 65535 entries in IFD0
        {4: b"\0\0\0\x02"},  # IFD0 inside the header
        {0: b"XX"},  # byte order mark destroyed
        {14: b"\xff\xff\xff\xff" * 6},  # counts and offsets of the first entries absurd
    ],
)
def test_broken_exif_offsets_keep_the_photo(tmp_path: Path, damage: dict[int, bytes]) -> None:
    info = inspect_photo(write(tmp_path / "a", _jpeg_with_damaged_exif(damage)))
    assert (info.content_type, info.width * info.height) == ("image/jpeg", 120_000)


@PILLOW_EXIF_WARNINGS
def test_random_damage_inside_the_exif_segment_never_costs_the_photo(tmp_path: Path) -> None:
    clean = encode(picture(), "JPEG", exif=FULL_EXIF)
    start, end = app1_span(clean)
    rng = random.Random(20240501)
    for i in range(150):
        data = bytearray(clean)
        for _ in range(rng.randint(1, 10)):
            data[rng.randrange(start, end)] = rng.randrange(256)
        info = inspect_photo(write(tmp_path / f"{i}", bytes(data)))
        assert info.content_type == "image/jpeg"
        assert info.exif.gps_lat is None or -90 <= info.exif.gps_lat <= 90
