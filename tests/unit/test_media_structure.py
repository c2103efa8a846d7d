"""The structure walks: every cut-off upload is refused, complete photos pass, nothing else
is raised on arbitrary bytes."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from backend.media.structure import Incomplete, check_complete
from tests.unit.test_media_samples import SHANGHAI_EXIF, encode, exif_bytes, picture

FULL_EXIF = exif_bytes(**SHANGHAI_EXIF)

SAMPLES = {
    "image/jpeg": encode(picture(), "JPEG", exif=FULL_EXIF),
    "progressive": encode(picture(), "JPEG", progressive=True),
    "image/png": encode(picture(), "PNG"),
    "image/webp": encode(picture(), "WEBP", exif=FULL_EXIF),
    "image/heic": encode(picture(), "HEIF", quality=70),
}
TYPE = {"progressive": "image/jpeg"}


def _check(data: bytes, content_type: str) -> None:
    with tempfile.NamedTemporaryFile(delete=False) as handle:
        handle.write(data)
    try:
        check_complete(handle.name, TYPE.get(content_type, content_type))
    finally:
        os.unlink(handle.name)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_complete_photos_pass(name: str) -> None:
    _check(SAMPLES[name], name)


@pytest.mark.parametrize("name", list(SAMPLES))
@settings(max_examples=60, deadline=None)
@given(fraction=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_every_cut_off_photo_is_refused(name: str, fraction: float) -> None:
    data = SAMPLES[name]
    cut = max(1, min(len(data) - 1, int(len(data) * fraction)))
    with pytest.raises(Incomplete):
        _check(data[:cut], name)


@pytest.mark.parametrize("name", list(SAMPLES))
@settings(max_examples=40, deadline=None)
@given(junk=st.binary(min_size=0, max_size=300), at=st.integers(min_value=0, max_value=10_000))
def test_arbitrary_damage_raises_nothing_but_incomplete(name: str, junk: bytes, at: int) -> None:
    data = SAMPLES[name]
    at = at % len(data)
    damaged = data[:at] + junk + data[at + len(junk) :]
    with contextlib.suppress(Incomplete):  # any other exception fails the test
        _check(damaged, name)


def test_png_damage_inside_the_image_data_fails_the_crc(tmp_path: Path) -> None:
    data = bytearray(SAMPLES["image/png"])
    at = data.index(b"IDAT") + 100
    data[at] ^= 0x01
    with pytest.raises(Incomplete, match="CRC"):
        _check(bytes(data), "image/png")


def test_bytes_after_the_end_of_the_image_are_ignored() -> None:
    _check(SAMPLES["image/jpeg"] + b"PK\x03\x04 an appended archive", "image/jpeg")
    _check(SAMPLES["image/png"] + b"trailing", "image/png")


def test_a_jpeg_without_scans_is_refused() -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG")
    data = out.getvalue()
    sos = data.index(b"\xff\xda")
    with pytest.raises(Incomplete):
        _check(data[:sos] + b"\xff\xd9", "image/jpeg")
