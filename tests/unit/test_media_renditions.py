"""backend.media.renditions: upright, small, stripped renditions and the perceptual hash."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageFile, ImageOps, JpegImagePlugin

from backend.media.bench import photo_like, psnr
from backend.media.exif import parse_exif
from backend.media.inspect import PhotoCorrupt, PhotoTypeUnsupported, inspect_photo
from backend.media.renditions import (
    decode_upright,
    hamming,
    make_renditions,
    perceptual_hash,
    phash_bands,
)
from tests.unit.test_media_samples import SHANGHAI_EXIF, encode, exif_bytes, picture, write


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    img.load()
    return img


def jpeg_markers(data: bytes) -> list[tuple[int, bytes]]:
    """The (marker, first payload bytes) of every segment before the first scan."""
    assert data[:2] == b"\xff\xd8"
    found, at = [], 2
    while True:
        marker = data[at + 1]
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        found.append((marker, data[at + 4 : at + 4 + 12]))
        if marker == 0xDA:
            return found
        at += 2 + length


def marker(img: Image.Image) -> tuple[float, float]:
    """Where the blue block of :func:`picture` is, as (x, y) fractions of the image size."""
    arr = np.asarray(img.convert("RGB"), dtype=np.int16)
    blue = (arr[..., 2] > 215) & (arr[..., 0] < 80) & (arr[..., 1] < 80)
    ys, xs = np.nonzero(blue)
    assert 0.03 < len(xs) / (img.width * img.height) < 0.09  # about 1/16 of the picture
    return float(xs.mean()) / img.width, float(ys.mean()) / img.height


def test_orientation_6_gives_an_upright_portrait(tmp_path: Path) -> None:
    exif = exif_bytes(**{**SHANGHAI_EXIF, "orientation": 6})
    path = write(tmp_path / "a", encode(picture(400, 300), "JPEG", exif=exif, quality=92))
    made = make_renditions(path, "image/jpeg")
    assert made.preview_size == (300, 400)  # small photos are not upscaled
    assert made.thumbnail_size == (240, 320)
    preview = decoded(made.preview)
    assert preview.size == (300, 400)
    # Orientation 6 = rotate 90° clockwise to display: the top-left block ends top-right.
    x, y = marker(preview)
    assert x > 0.8 and y < 0.2
    assert decoded(made.thumbnail).size == (240, 320)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillows_exif_transpose(tmp_path: Path, orientation: int) -> None:
    data = encode(picture(400, 300), "JPEG", exif=exif_bytes(orientation=orientation), quality=95)
    made = make_renditions(write(tmp_path / "a", data), "image/jpeg")
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    preview = decoded(made.preview)
    assert preview.size == reference.size
    diff = np.abs(np.asarray(preview, np.int16) - np.asarray(reference.convert("RGB"), np.int16))
    assert diff.mean() < 4
    assert inspect_photo(tmp_path / "a").width == preview.width


def test_large_photo_is_fitted_into_1280_and_320(tmp_path: Path) -> None:
    path = write(tmp_path / "a", encode(picture(4000, 3000), "JPEG", quality=90))
    made = make_renditions(path, "image/jpeg")
    assert made.preview_size == decoded(made.preview).size == (1280, 960)
    assert made.thumbnail_size == decoded(made.thumbnail).size == (320, 240)
    x, y = marker(decoded(made.preview))
    assert x < 0.2 and y < 0.2
    assert len(made.preview) < 400_000 and len(made.thumbnail) < 40_000


def test_the_picture_survives_the_reduced_decode(tmp_path: Path) -> None:
    img = picture(2600, 1950, noise=0)
    path = write(tmp_path / "a", encode(img, "JPEG", quality=95))
    made = make_renditions(path, "image/jpeg")
    reference = np.asarray(img.resize(made.preview_size, Image.Resampling.LANCZOS), np.int16)
    assert np.abs(np.asarray(decoded(made.preview), np.int16) - reference).mean() < 3


def test_renditions_carry_no_exif_xmp_or_comment(tmp_path: Path) -> None:
    exif = exif_bytes(**{**SHANGHAI_EXIF, "orientation": 6})
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>31,13.8N</exif:GPSLatitude>'
    data = encode(picture(), "JPEG", exif=exif, xmp=xmp + b"</x:xmpmeta>", comment=b"31.23N")
    original = Image.open(io.BytesIO(data))
    assert {"exif", "xmp", "comment"} <= set(original.info)
    made = make_renditions(write(tmp_path / "a", data), "image/jpeg")
    for jpeg in (made.preview, made.thumbnail):
        markers = jpeg_markers(jpeg)
        assert not [m for m, _ in markers if m == 0xE1 or m == 0xFE]  # no APP1, no COM
        assert b"Exif" not in jpeg and b"xmpmeta" not in jpeg and b"31.2" not in jpeg
        assert not decoded(jpeg).getexif()
        assert parse_exif(decoded(jpeg).info.get("exif")) == parse_exif(None)


def test_baseline_4_2_0_jpegs(tmp_path: Path) -> None:
    # Progressive coding costs 5x the CPU of baseline for a ~7% smaller preview: not worth it.
    path = write(tmp_path / "a", encode(picture(), "JPEG", progressive=True, subsampling=0))
    made = make_renditions(path, "image/jpeg")
    for jpeg in (made.preview, made.thumbnail):
        markers = [m for m, _ in jpeg_markers(jpeg)]
        assert 0xC0 in markers and 0xC2 not in markers  # SOF0: baseline
        assert JpegImagePlugin.get_sampling(decoded(jpeg)) == 2  # 4:2:0
        assert not decoded(jpeg).info.get("progressive")


# --- the reduced decode of big JPEGs ------------------------------------------------------


@pytest.fixture(scope="module")
def twelve_megapixels() -> Image.Image:
    """A 4000 × 3000 picture (like a 12-megapixel phone photo), made once for these tests."""
    return picture(4000, 3000, noise=4)


def spy_on_jpeg_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, int], tuple]]:
    """Record (size, decoder config) of every JPEG decode: the size is what gets decoded."""
    loads: list[tuple[tuple[int, int], tuple]] = []

    def load(self: JpegImagePlugin.JpegImageFile):  # type: ignore[no-untyped-def]
        if self.tile:  # not yet decoded
            loads.append((self.size, self.decoderconfig))
        return ImageFile.ImageFile.load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)
    return loads


@pytest.mark.parametrize(
    ("size", "mode", "options"),
    [
        ((4000, 3000), "RGB", {}),
        ((3000, 4000), "RGB", {"progressive": True}),
        ((4001, 3003), "RGB", {"subsampling": 0}),  # not a multiple of 8; 4:4:4
        ((4003, 2251), "L", {}),
        ((4000, 3000), "CMYK", {"subsampling": 1, "restart_marker_blocks": 7}),  # 4:2:2
    ],
)
def test_a_12_megapixel_jpeg_is_decoded_at_3_8_never_fully(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    twelve_megapixels: Image.Image,
    size: tuple[int, int],
    mode: str,
    options: dict[str, object],
) -> None:
    img = twelve_megapixels
    if size[0] < size[1]:
        img = img.transpose(Image.Transpose.ROTATE_90)
    img = img.resize(size) if img.size != size else img
    data = encode(img.convert(mode), "JPEG", quality=90, **options)
    path = write(tmp_path / "a", data)
    with Image.open(path) as original:
        original.load()
        full = original.convert("RGB")
    loads = spy_on_jpeg_loads(monkeypatch)
    made = make_renditions(path, "image/jpeg")
    # 3/8 of the size, rounded up as libjpeg-turbo does: e.g. 4000 × 3000 -> 1500 × 1125.
    assert loads == [((-(-size[0] * 3 // 8), -(-size[1] * 3 // 8)), (3, 0))]
    assert max(made.preview_size) == 1280 and max(made.thumbnail_size) == 320
    reference = full.resize(made.preview_size, Image.Resampling.LANCZOS)
    preview = decoded(made.preview).convert("RGB")
    assert np.abs(np.asarray(preview, np.int16) - np.asarray(reference, np.int16)).mean() < 3
    if size[0] > size[1] and mode != "L":  # the marker is blue
        x, y = marker(preview)
        assert x < 0.2 and y < 0.2
    assert perceptual_hash(path) == made.phash


def test_jpegs_too_small_for_3_8_use_pillows_draft(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = spy_on_jpeg_loads(monkeypatch)
    path = write(tmp_path / "a", encode(picture(3000, 2250), "JPEG"))  # 3/8 would be 1125 px
    assert make_renditions(path, "image/jpeg").preview_size == (1280, 960)
    path = write(tmp_path / "b", encode(picture(1300, 975), "JPEG"))
    assert make_renditions(path, "image/jpeg").preview_size == (1280, 960)
    assert loads == [((1500, 1125), (2, 0)), ((1300, 975), (1, 0))]


def test_the_preview_is_within_40_db_of_lanczos_on_a_photograph(tmp_path: Path) -> None:
    # PSNR of the preview (before JPEG encoding) against a Lanczos resize of the fully
    # decoded original; the 1/f-textured scene with edges, blur, sharpening and sensor noise
    # is a 2.7 MB JPEG, like a phone's. BOX instead of BICUBIC would give 36 dB here.
    path = write(tmp_path / "a", encode(photo_like(4000, 3000, detail=0.5), "JPEG", quality=90))
    preview = decode_upright(path, "image/jpeg", 1280)
    with Image.open(path) as original:
        original.load()
        reference = original.resize(preview.size, Image.Resampling.LANCZOS)
    assert psnr(preview, reference) >= 40


def test_a_thumbnail_that_is_not_a_whole_fraction_of_the_preview(tmp_path: Path) -> None:
    path = write(tmp_path / "a", encode(picture(1500, 1001), "PNG"))
    made = make_renditions(path, "image/png")
    assert made.preview_size == (1280, 854)
    assert made.thumbnail_size == decoded(made.thumbnail).size == (320, 214)
    x, y = marker(decoded(made.thumbnail))
    assert x < 0.2 and y < 0.2


def test_the_colour_profile_is_kept(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = write(tmp_path / "a", encode(picture(), "JPEG", icc_profile=icc))
    made = make_renditions(path, "image/jpeg")
    assert decoded(made.preview).info.get("icc_profile") == icc
    assert decoded(made.thumbnail).info.get("icc_profile") == icc


def test_heic_is_not_rotated_twice(tmp_path: Path) -> None:
    exif = exif_bytes(**{**SHANGHAI_EXIF, "orientation": 6})
    path = write(tmp_path / "a", encode(picture(400, 300), "HEIF", exif=exif, quality=90))
    made = make_renditions(path, "image/heic")
    preview = decoded(made.preview)
    assert preview.size == (300, 400)
    x, y = marker(preview)
    assert x > 0.8 and y < 0.2


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp(tmp_path: Path, fmt: str) -> None:
    exif = exif_bytes(orientation=8)
    made = make_renditions(
        write(tmp_path / "a", encode(picture(), fmt, exif=exif)), f"image/{fmt.lower()}"
    )
    assert made.preview_size == (300, 400)
    x, y = marker(decoded(made.preview))
    assert x < 0.2 and y > 0.8  # orientation 8: rotate 90° counter-clockwise


def test_transparency_becomes_white(tmp_path: Path) -> None:
    img = picture().convert("RGBA")
    img.putalpha(Image.new("L", img.size, 0))  # fully transparent (colour underneath: blue etc.)
    made = make_renditions(write(tmp_path / "a", encode(img, "PNG")), "image/png")
    preview = decoded(made.preview)
    assert preview.mode == "RGB"
    assert np.asarray(preview).min() > 240


def test_sixteen_bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256, dtype=np.uint16), (64, 1))
    img = Image.fromarray(ramp)
    assert img.mode.startswith("I;16")
    made = make_renditions(write(tmp_path / "a", encode(img, "PNG")), "image/png")
    preview = np.asarray(decoded(made.preview), dtype=np.int16)
    assert preview[:, 5].mean() < 20 and preview[:, -5].mean() > 235
    assert 100 < preview[:, 128].mean() < 156


def test_corrupt_and_unsupported_inputs_are_client_errors(tmp_path: Path) -> None:
    data = encode(picture(), "JPEG")
    with pytest.raises(PhotoCorrupt):
        make_renditions(write(tmp_path / "a", data[: len(data) // 2]), "image/jpeg")
    with pytest.raises(PhotoCorrupt):  # the type must be what the bytes are
        make_renditions(write(tmp_path / "b", data), "image/png")
    with pytest.raises(PhotoTypeUnsupported):
        make_renditions(write(tmp_path / "c", data), "image/gif")


# --- perceptual hash ---------------------------------------------------------------------


def test_phash_of_a_path_equals_the_renditions_phash(tmp_path: Path) -> None:
    path = write(tmp_path / "a", encode(picture(2000, 1500), "JPEG"))
    made = make_renditions(path, "image/jpeg")
    assert perceptual_hash(path) == made.phash
    assert 0 <= made.phash < 2**64


def test_phash_sees_the_same_picture_through_reencoding_and_resizing(tmp_path: Path) -> None:
    img = picture(1600, 1200, seed=3)
    a = perceptual_hash(write(tmp_path / "a", encode(img, "JPEG", quality=95)))
    smaller = img.resize((800, 600), Image.Resampling.LANCZOS)
    b = perceptual_hash(write(tmp_path / "b", encode(smaller, "WEBP", quality=60)))
    c = perceptual_hash(write(tmp_path / "c", encode(img, "HEIF", quality=50)))
    assert hamming(a, b) <= 3
    assert hamming(a, c) <= 3


def test_phash_tells_different_pictures_apart(tmp_path: Path) -> None:
    one = picture(800, 600, seed=1)
    other = ImageOps.mirror(picture(800, 600, seed=2)).rotate(180)
    a = perceptual_hash(write(tmp_path / "a", encode(one, "JPEG")))
    b = perceptual_hash(write(tmp_path / "b", encode(other, "JPEG")))
    assert hamming(a, b) > 10
    assert perceptual_hash(one) == perceptual_hash(one.copy())


def test_phash_is_orientation_independent(tmp_path: Path) -> None:
    # The same scene, once rotated by the camera and once by an Orientation tag.
    img = picture(800, 600, seed=4)
    tagged = encode(img, "JPEG", exif=exif_bytes(orientation=6), quality=95)
    rotated = encode(img.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=95)
    a = perceptual_hash(write(tmp_path / "a", tagged))
    b = perceptual_hash(write(tmp_path / "b", rotated))
    assert hamming(a, b) <= 2


def test_hamming() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0b1011, 0b0001) == 2
    assert hamming(0, 2**64 - 1) == 64
    # A hash stored signed in a BIGINT column compares like its unsigned self.
    assert hamming(-1, 2**64 - 1) == 0
    assert hamming(2**63, -(2**63)) == 0


def test_bands_are_the_hash_in_four_16_bit_pieces() -> None:
    h = 0x0123_4567_89AB_CDEF
    assert phash_bands(h) == (0x0123, 0x4567, 0x89AB, 0xCDEF)
    assert phash_bands(h - 2**64) == phash_bands(h)  # signed storage again


@given(st.integers(0, 2**64 - 1), st.sets(st.integers(0, 63), max_size=3))
def test_within_3_bits_at_least_one_band_is_shared(h: int, flips: set[int]) -> None:
    other = h
    for bit in flips:
        other ^= 1 << bit
    assert hamming(h, other) == len(flips)
    assert any(x == y for x, y in zip(phash_bands(h), phash_bands(other), strict=True))


def test_at_4_bits_the_bands_can_all_differ() -> None:
    h = 0
    other = (1 << 0) | (1 << 16) | (1 << 32) | (1 << 48)
    assert hamming(h, other) == 4
    assert all(x != y for x, y in zip(phash_bands(h), phash_bands(other), strict=True))
