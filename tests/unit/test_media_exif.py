"""backend.media.exif: the evidence fields, and no failure on any input."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from backend.media.exif import MAX_TEXT_CHARS, ExifData, parse_exif
from tests.unit.test_media_samples import SHANGHAI_EXIF, SHANGHAI_LAT, SHANGHAI_LON, exif_bytes

G = ExifTags.GPS


def test_reads_every_evidence_field() -> None:
    exif = parse_exif(exif_bytes(**SHANGHAI_EXIF))
    assert exif.gps_lat == pytest.approx(SHANGHAI_LAT, abs=1e-9)
    assert exif.gps_lon == pytest.approx(SHANGHAI_LON, abs=1e-9)
    assert exif.gps_altitude_m == 12.5
    assert exif.gps_accuracy_m == 4.5
    assert exif.gps_time == datetime(2024, 5, 1, 2, 20, 29, tzinfo=UTC)
    assert exif.taken_at == datetime(2024, 5, 1, 10, 20, 30, tzinfo=timezone(timedelta(hours=8)))
    assert exif.taken_at == datetime(2024, 5, 1, 2, 20, 30, tzinfo=UTC)
    assert exif.taken_at_local == datetime(2024, 5, 1, 10, 20, 30)
    assert exif.offset == "+08:00"
    assert exif.orientation == 1
    assert (exif.make, exif.model, exif.software) == ("HUAWEI", "ALN-AL00", "ALN-AL00 4.0.0.150")


def test_the_exif_prefix_is_optional() -> None:
    block = exif_bytes(**SHANGHAI_EXIF)
    assert block.startswith(b"Exif\0\0")  # Pillow 13 writes the APP1 prefix
    assert parse_exif(block[6:]) == parse_exif(block) != ExifData()


def little_endian_ifd0(*entries: tuple[int, int, int, bytes]) -> bytes:
    """A little-endian TIFF whose IFD0 holds ``(tag, type, count, value bytes)`` entries."""
    table, heap = b"", b""
    heap_at = 8 + 2 + 12 * len(entries) + 4
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            table += struct.pack("<HHL", tag, kind, count) + value.ljust(4, b"\0")
        else:
            table += struct.pack("<HHLL", tag, kind, count, heap_at + len(heap))
            heap += value
    return b"II*\0" + struct.pack("<LH", 8, len(entries)) + table + b"\0" * 4 + heap


def test_little_endian_tiff_is_read_too() -> None:
    # Pillow writes big-endian ("MM"); many phones write "II".
    exif = parse_exif(
        little_endian_ifd0((0x0112, 3, 1, struct.pack("<H", 8)), (0x010F, 2, 7, b"Xiaomi\0"))
    )
    assert exif.orientation == 8
    assert exif.make == "Xiaomi"


def test_southern_and_western_coordinates_are_negative() -> None:
    exif = parse_exif(
        exif_bytes(lat=(33.0, 52.0, 0.0), lat_ref="S", lon=(70.0, 30.0, 0.0), lon_ref="W")
    )
    assert exif.gps_lat == pytest.approx(-(33 + 52 / 60))
    assert exif.gps_lon == pytest.approx(-70.5)


@pytest.mark.parametrize(
    "gps",
    [
        {"lat_ref": None},  # no hemisphere: the sign would be a guess
        {"lon_ref": None},
        {"lat_ref": "X"},
        {"lon_ref": "Q"},
        {"lat": (91.0, 0.0, 0.0)},
        {"lat": (90.0, 30.0, 0.0)},
        {"lon": (181.0, 0.0, 0.0)},
        {"lat": (31.0, 61.0, 0.0)},
        {"lat": (0.0, 0.0, 0.0), "lon": (0.0, 0.0, 0.0)},  # "no fix" placeholder
        {"lon": None},  # half a position is no position
    ],
)
def test_unusable_positions_are_missing(gps: dict[str, object]) -> None:
    values = {"lat": (31.0, 13.0, 49.44), "lon": (121.0, 28.0, 25.32), **gps}
    exif = parse_exif(exif_bytes(**values))  # type: ignore[arg-type]
    assert exif.gps_lat is None and exif.gps_lon is None
    assert not exif.has_gps


def test_lowercase_refs_are_unambiguous_and_accepted() -> None:
    exif = parse_exif(exif_bytes(lat=(31.0, 0.0, 0.0), lat_ref="s", lon=(121.0, 0.0, 0.0)))
    assert exif.gps_lat == -31.0


def test_a_zero_denominator_makes_the_field_missing_not_nan() -> None:
    nan = Image.Exif()
    gps = nan.get_ifd(ExifTags.IFD.GPSInfo)
    gps[G.GPSLatitudeRef], gps[G.GPSLongitudeRef] = "N", "E"
    gps[G.GPSLatitude] = (31.0, 13.0, 49.0)
    gps[G.GPSLongitude] = (121.0, 28.0, 25.0)
    gps[G.GPSAltitude] = 3.0
    gps[G.GPSHPositioningError] = 5.0
    data = bytearray(nan.tobytes())
    # Zero the denominators of the latitude's seconds, the altitude and the accuracy.
    for value in (49, 3, 5):
        at = data.index(struct.pack(">LL", value, 1))
        struct.pack_into(">L", data, at + 4, 0)
    exif = parse_exif(bytes(data))
    assert exif.gps_lat is None and exif.gps_lon is None
    assert exif.gps_altitude_m is None
    assert exif.gps_accuracy_m is None
    assert all(v is None or math.isfinite(v) for v in (exif.gps_lat, exif.gps_altitude_m))


def test_altitude_sign_follows_its_reference() -> None:
    below = parse_exif(exif_bytes(altitude=4.0, altitude_ref=b"\x01"))
    unspecified = parse_exif(exif_bytes(altitude=4.0))  # the spec's default: above sea level
    ellipsoidal = parse_exif(exif_bytes(altitude=4.0, altitude_ref=b"\x02"))
    assert (below.gps_altitude_m, unspecified.gps_altitude_m) == (-4.0, 4.0)
    assert ellipsoidal.gps_altitude_m is None


def test_without_offset_the_local_time_stays_naive() -> None:
    exif = parse_exif(exif_bytes(taken="2024:05:01 10:20:30", subsec="25"))
    assert exif.taken_at is None
    assert exif.offset is None
    assert exif.taken_at_local == datetime(2024, 5, 1, 10, 20, 30, 250_000)
    assert exif.best_time is None


@pytest.mark.parametrize(
    ("taken", "offset"),
    [
        ("0000:00:00 00:00:00", "+08:00"),  # what cameras write for "unknown"
        ("    :  :     :  :  ", "+08:00"),
        ("2024:02:30 10:00:00", "+08:00"),
        ("2024:05:01 24:00:00", "+08:00"),
        ("yesterday", "+08:00"),
    ],
)
def test_malformed_capture_times_are_missing(taken: str, offset: str) -> None:
    exif = parse_exif(exif_bytes(taken=taken, offset=offset))
    assert (exif.taken_at, exif.taken_at_local, exif.offset) == (None, None, None)


@pytest.mark.parametrize("offset", ["+25:00", "08:00", "+8", "CST", "+08:75"])
def test_malformed_offsets_are_missing(offset: str) -> None:
    exif = parse_exif(exif_bytes(taken="2024:05:01 10:20:30", offset=offset))
    assert exif.taken_at is None and exif.offset is None
    assert exif.taken_at_local == datetime(2024, 5, 1, 10, 20, 30)


def test_negative_offsets() -> None:
    exif = parse_exif(exif_bytes(taken="2024:05:01 10:20:30", offset="-03:30"))
    assert exif.taken_at == datetime(2024, 5, 1, 13, 50, 30, tzinfo=UTC)


def test_gps_time_needs_date_and_valid_clock() -> None:
    assert parse_exif(exif_bytes(gps_time=(1.0, 2.0, 3.0))).gps_time is None
    assert parse_exif(exif_bytes(gps_date="2024:05:01", gps_time=(25.0, 0.0, 0.0))).gps_time is None
    exif = parse_exif(exif_bytes(gps_date="2024:05:01", gps_time=(23.0, 59.0, 59.5)))
    assert exif.gps_time == datetime(2024, 5, 1, 23, 59, 59, 500_000, tzinfo=UTC)
    assert exif.best_time == exif.gps_time


@pytest.mark.parametrize("orientation", [0, 9, 65535])
def test_orientation_outside_1_to_8_is_missing(orientation: int) -> None:
    assert parse_exif(exif_bytes(orientation=orientation)).orientation is None


def test_strings_are_capped_and_cleaned() -> None:
    exif = parse_exif(exif_bytes(make="A" * 10_000, model="Mate\x0760\x1b[31m", software=" \0 "))
    assert exif.make == "A" * MAX_TEXT_CHARS
    assert exif.model == "Mate60[31m"
    assert exif.software is None


def test_utf8_strings_survive() -> None:
    # Pillow writes "????"; Chinese phone software writes UTF-8 into ASCII fields.
    text = "华为相机".encode()
    exif = parse_exif(little_endian_ifd0((0x0131, 2, len(text) + 1, text + b"\0")))
    assert exif.software == "华为相机"


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    exif = parse_exif(little_endian_ifd0((0x010F, 2, 6, b"Le\xffca\0")))
    assert exif.make == "Le\ufffdca"


def _with_gps(**gps: object) -> bytearray:
    values = {"lat": (31.0, 13.0, 49.44), "lon": (121.0, 28.0, 25.32), "make": "Huawei", **gps}
    return bytearray(exif_bytes(**values)[6:])  # type: ignore[arg-type]


def _ifd_entry(data: bytes | bytearray, tag: int) -> int:
    """Position of ``tag``'s 12-byte entry in a big-endian TIFF made by Pillow."""
    at = 8
    while True:
        (count,) = struct.unpack_from(">H", data, at)
        for i in range(count):
            pos = at + 2 + 12 * i
            if struct.unpack_from(">H", data, pos)[0] == tag:
                return pos
        raise AssertionError(f"tag {tag:#x} not in IFD0")


def test_absurd_counts_and_offsets_are_missing_fields_not_errors() -> None:
    data = _with_gps(make="Huawei")
    make = _ifd_entry(data, 0x010F)
    struct.pack_into(">L", data, make + 4, 0xFFFFFFFF)  # Make claims 4 GB
    gps = _ifd_entry(data, 0x8825)
    struct.pack_into(">L", data, gps + 8, 0xFFFFFFF0)  # GPS IFD far beyond the block
    exif = parse_exif(bytes(data))
    assert exif.make is None
    assert exif.gps_lat is None


def test_an_ifd_that_points_at_itself_does_not_loop() -> None:
    data = _with_gps()
    for tag in (0x8825, 0x8769):
        struct.pack_into(">L", data, _ifd_entry(data, tag) + 8, 8)  # both point back to IFD0
    exif = parse_exif(bytes(data))
    assert exif.make == "Huawei"
    assert exif.gps_lat is None


def test_an_entry_count_of_65535_is_bounded_by_the_data() -> None:
    data = _with_gps()
    struct.pack_into(">H", data, 8, 0xFFFF)
    assert parse_exif(bytes(data)).make == "Huawei"


@pytest.mark.parametrize("junk", [b"", b"Exif\0\0", b"II*\0", b"MM\0*\xff\xff\xff\xff", b"<html>"])
def test_garbage_blocks_give_empty_data(junk: bytes) -> None:
    assert parse_exif(junk) == ExifData()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_never_raises_on_arbitrary_bytes(junk: bytes) -> None:
    parse_exif(b"MM\0*\0\0\0\x08" + junk)
    parse_exif(junk)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=12))
def test_never_raises_on_damaged_real_blocks(damage: list[tuple[int, int]]) -> None:
    data = bytearray(exif_bytes(**SHANGHAI_EXIF))
    for position, value in damage:
        data[position % len(data)] = value
    exif = parse_exif(bytes(data))
    if exif.gps_lat is not None:
        assert -90 <= exif.gps_lat <= 90
    for text in (exif.make, exif.model, exif.software, exif.offset):
        assert text is None or len(text) <= MAX_TEXT_CHARS


def test_json_round_trip_with_iso_strings() -> None:
    exif = parse_exif(exif_bytes(**SHANGHAI_EXIF))
    stored = exif.as_json()
    assert stored["gps_time"] == "2024-05-01T02:20:29Z"
    assert stored["taken_at"] == "2024-05-01T10:20:30+08:00"
    assert stored["taken_at_local"] == "2024-05-01T10:20:30"
    assert set(stored) >= {"gps_lat", "gps_lon", "orientation", "make", "model", "software"}
    assert ExifData.from_json(stored) == exif


def test_from_json_ignores_what_it_does_not_understand() -> None:
    stored = {
        "gps_lat": "31.2",
        "gps_lon": float("nan"),
        "taken_at": "2024-05-01T10:20:30",  # naive where aware is required
        "taken_at_local": "not a date",
        "orientation": True,
        "make": 7,
    }
    assert ExifData.from_json(stored) == ExifData()
