"""backend.media.evidence: location, time and before/after checks on photo metadata."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pyproj
import pytest

from backend.media import evidence
from backend.media.evidence import (
    FLAGS,
    PhotoFacts,
    before_after_pair,
    location_check,
    time_check,
)
from backend.media.exif import ExifData

GEOD = pyproj.Geod(ellps="WGS84")
SHANGHAI = (121.4737, 31.2304)  # lon, lat
CST = timezone(timedelta(hours=8))
REPORTED = datetime(2024, 5, 1, 10, 0, tzinfo=CST)
RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=CST)


def moved(lon: float, lat: float, metres: float, azimuth: float = 90.0) -> tuple[float, float]:
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, metres)
    return lon2, lat2


def at(lon: float, lat: float, **more: object) -> ExifData:
    return ExifData(gps_lon=lon, gps_lat=lat, **more)  # type: ignore[arg-type]


# --- location ----------------------------------------------------------------------------


def test_photo_without_gps() -> None:
    check = location_check(ExifData(), *SHANGHAI)
    assert check.flags == ("photo_gps_missing",)
    assert check.distance_m is None


@pytest.mark.parametrize(("metres", "far"), [(0.0, False), (99.0, False), (101.0, True)])
def test_distance_threshold(metres: float, far: bool) -> None:
    check = location_check(at(*moved(*SHANGHAI, metres)), *SHANGHAI)
    assert check.distance_m == pytest.approx(metres, abs=0.01)
    assert check.flags == (("photo_far_from_report",) if far else ())


def test_distance_is_geodesic() -> None:
    # 0.001° of latitude at 31° N is 110.86 m along the meridian (not 111.19 m of a sphere).
    check = location_check(at(121.4737, 31.2314), 121.4737, 31.2304)
    assert check.distance_m == pytest.approx(110.86, abs=0.05)


def test_threshold_is_a_parameter() -> None:
    exif = at(*moved(*SHANGHAI, 60.0))
    assert location_check(exif, *SHANGHAI, threshold_m=50.0).flags == ("photo_far_from_report",)


@pytest.mark.parametrize("position", [(float("nan"), 31.0), (121.0, 91.0), (200.0, 31.0)])
def test_reported_position_must_be_wgs84(position: tuple[float, float]) -> None:
    with pytest.raises(ValueError):
        location_check(at(*SHANGHAI), *position)


# --- time --------------------------------------------------------------------------------


def test_photo_taken_shortly_before_the_report() -> None:
    exif = ExifData(taken_at=REPORTED - timedelta(minutes=3))
    check = time_check(exif, REPORTED, RECEIVED)
    assert check.flags == ()
    assert (check.source, check.photo_time) == ("exif", REPORTED - timedelta(minutes=3))
    assert check.from_report == timedelta(minutes=-3)
    assert check.from_receipt == timedelta(hours=-2, minutes=-3)


@pytest.mark.parametrize(("hours", "far"), [(-23.9, False), (-24.1, True), (23.9, False)])
def test_more_than_a_day_from_the_report(hours: float, far: bool) -> None:
    exif = ExifData(taken_at=REPORTED + timedelta(hours=hours))
    received = REPORTED + timedelta(hours=30)
    check = time_check(exif, REPORTED, received)
    assert ("photo_time_far_from_report" in check.flags) is far


def test_the_offset_is_honoured() -> None:
    # 10:00 at +08:00 is 02:00 UTC, the report's instant; read as UTC it would be 8 h off.
    exif = ExifData(
        taken_at=datetime(2024, 5, 1, 10, 0, tzinfo=CST),
        taken_at_local=datetime(2024, 5, 1, 10, 0),
        offset="+08:00",
    )
    report = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    check = time_check(exif, report, report + timedelta(hours=1), max_skew=timedelta(hours=1))
    assert check.flags == ()
    assert check.from_report == timedelta(0)


@pytest.mark.parametrize(("minutes", "flagged"), [(4, False), (6, True)])
def test_photo_after_receipt_means_a_clock_ahead(minutes: int, flagged: bool) -> None:
    exif = ExifData(taken_at=RECEIVED + timedelta(minutes=minutes))
    check = time_check(exif, RECEIVED, RECEIVED)
    assert ("photo_time_after_receipt" in check.flags) is flagged


def test_gps_time_is_the_fallback_for_a_zoneless_local_time() -> None:
    gps = REPORTED + timedelta(days=3)
    exif = ExifData(taken_at_local=datetime(2024, 5, 1, 9, 58), gps_time=gps)
    check = time_check(exif, REPORTED, RECEIVED + timedelta(days=4))
    assert (check.source, check.photo_time) == ("gps", gps)
    assert check.flags == ("photo_time_far_from_report",)


def test_no_time_at_all() -> None:
    check = time_check(ExifData(), REPORTED, RECEIVED)
    assert check.flags == ("photo_time_missing",)
    assert check.photo_time is None


def test_a_zoneless_time_is_never_given_a_zone() -> None:
    close = ExifData(taken_at_local=datetime(2024, 5, 1, 9, 58))
    check = time_check(close, REPORTED, RECEIVED)
    assert check.flags == ("photo_time_zone_missing",)
    assert (check.photo_time, check.source, check.from_report) == (None, None, None)


def test_a_zoneless_time_is_still_flagged_when_wrong_in_every_zone() -> None:
    # Three days off in wall-clock time is more than a day off in every zone.
    days_off = ExifData(taken_at_local=datetime(2024, 5, 4, 10, 0))
    flags = time_check(days_off, REPORTED, RECEIVED + timedelta(days=5)).flags
    assert flags == ("photo_time_zone_missing", "photo_time_far_from_report")
    # 30 h off in wall-clock terms is within a day in some zone: not flagged.
    plausible = ExifData(taken_at_local=datetime(2024, 5, 2, 16, 0))
    assert time_check(plausible, REPORTED, RECEIVED + timedelta(days=2)).flags == (
        "photo_time_zone_missing",
    )
    # After receipt even in the earliest zone (UTC+14).
    future = ExifData(taken_at_local=datetime(2024, 5, 2, 12, 0))
    assert "photo_time_after_receipt" in time_check(future, REPORTED, RECEIVED).flags


def test_report_times_must_be_aware() -> None:
    with pytest.raises(ValueError, match="report_time"):
        time_check(ExifData(), datetime(2024, 5, 1, 10, 0), RECEIVED)
    with pytest.raises(ValueError, match="received_at"):
        time_check(ExifData(), REPORTED, datetime(2024, 5, 1, 12, 0))


# --- before / after ----------------------------------------------------------------------


def facts(
    photo_id: str,
    *,
    where: tuple[float, float] | None = None,
    when: datetime | None = None,
    phash: int | None = None,
    sha: str | None = None,
) -> PhotoFacts:
    exif = ExifData(
        gps_lon=where[0] if where else None,
        gps_lat=where[1] if where else None,
        taken_at=when,
    )
    return PhotoFacts(photo_id, sha or photo_id.encode().hex().ljust(64, "0"), exif, phash)


T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def test_each_after_photo_pairs_with_the_nearest_before_photo() -> None:
    before = [
        facts("b-far", where=moved(*SHANGHAI, 200), when=T0, phash=0),
        facts("b-near", where=moved(*SHANGHAI, 10), when=T0, phash=0xFF),
    ]
    after = [facts("a", where=SHANGHAI, when=T0 + timedelta(days=2), phash=0xFFFF_0000)]
    (pair,) = before_after_pair(before, after)
    assert (pair.after_id, pair.before_id, pair.matched_by) == ("a", "b-near", "gps")
    assert pair.distance_m == pytest.approx(10, abs=0.01)
    assert pair.time_gap == timedelta(days=2)
    assert pair.hamming == 24
    assert pair.flags == ()


def test_after_photo_far_from_before() -> None:
    before = [facts("b", where=SHANGHAI, when=T0)]
    after = [facts("a", where=moved(*SHANGHAI, 51), when=T0 + timedelta(hours=5))]
    (pair,) = before_after_pair(before, after)
    assert pair.flags == ("after_photo_far_from_before",)
    assert pair.time_gap == timedelta(hours=5)


def test_after_photo_taken_before_the_before_photo() -> None:
    before = [facts("b", where=SHANGHAI, when=T0)]
    after = [facts("a", where=SHANGHAI, when=T0 - timedelta(minutes=1))]
    assert before_after_pair(before, after)[0].flags == ("after_photo_before_report",)


def test_the_same_file_as_after_photo_is_found_even_if_another_is_nearer() -> None:
    reused = facts("b2", where=moved(*SHANGHAI, 30), when=T0, sha="ab" * 32)
    before = [facts("b1", where=SHANGHAI, when=T0), reused]
    after = [facts("a", where=SHANGHAI, when=T0 + timedelta(days=1), sha="AB" * 32)]
    (pair,) = before_after_pair(before, after)
    assert (pair.before_id, pair.matched_by) == ("b2", "identical")
    assert "after_photo_identical_to_before" in pair.flags


@pytest.mark.parametrize(("bits", "identical"), [(3, True), (4, False)])
def test_the_same_picture_within_3_bits(bits: int, identical: bool) -> None:
    h = 0x1234_5678_9ABC_DEF0
    other = h ^ ((1 << bits) - 1)
    before = [facts("b", where=SHANGHAI, when=T0, phash=h)]
    after = [facts("a", where=SHANGHAI, when=T0 + timedelta(days=1), phash=other)]
    (pair,) = before_after_pair(before, after)
    assert pair.hamming == bits
    assert ("after_photo_identical_to_before" in pair.flags) is identical


def test_without_gps_the_most_similar_picture_is_chosen() -> None:
    before = [facts("b1", phash=0xFFFF_FFFF), facts("b2", phash=0xFFFF_FF00)]
    after = [facts("a", where=SHANGHAI, phash=0xFFFF_0000)]
    (pair,) = before_after_pair(before, after)
    assert (pair.before_id, pair.matched_by, pair.hamming) == ("b2", "phash", 8)
    assert pair.distance_m is None and pair.time_gap is None
    assert pair.flags == ()


def test_with_nothing_to_compare_a_single_before_photo_is_the_pair() -> None:
    (pair,) = before_after_pair([facts("b")], [facts("a")])
    assert (pair.before_id, pair.matched_by, pair.flags) == ("b", "only", ())


def test_unpaired_after_photos() -> None:
    assert before_after_pair([], [facts("a")])[0].flags == ("after_photo_unpaired",)
    (pair,) = before_after_pair([facts("b1"), facts("b2")], [facts("a")])
    assert (pair.before_id, pair.flags) == (None, ("after_photo_unpaired",))


def test_pairs_follow_the_after_order_and_serialise() -> None:
    before = [facts("b", where=SHANGHAI, when=T0, phash=1)]
    after = [
        facts(f"a{i}", where=moved(*SHANGHAI, 20 * i), when=T0 + timedelta(hours=i))
        for i in range(4)
    ]
    pairs = before_after_pair(before, after)
    assert [p.after_id for p in pairs] == ["a0", "a1", "a2", "a3"]
    stored = json.loads(json.dumps([p.as_json() for p in pairs]))
    assert stored[3] == {
        "after_id": "a3",
        "before_id": "b",
        "matched_by": "gps",
        "distance_m": pytest.approx(60, abs=0.01),
        "time_gap_s": 3 * 3600.0,
        "hamming": None,
        "flags": ["after_photo_far_from_before"],
    }


def test_facts_from_a_stored_row() -> None:
    exif = ExifData(
        gps_lon=SHANGHAI[0],
        gps_lat=SHANGHAI[1],
        taken_at=datetime(2024, 5, 1, 10, 0, tzinfo=CST),
        taken_at_local=datetime(2024, 5, 1, 10, 0),
        offset="+08:00",
    )
    stored = json.loads(json.dumps(exif.as_json()))
    f = PhotoFacts.from_stored(photo_id="p", sha256="AB" * 32, exif=stored, phash=7)
    assert f.exif == exif
    assert f.sha256 == "ab" * 32
    assert f.time == datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


def test_every_flag_is_documented_and_every_produced_flag_is_known() -> None:
    doc = evidence.__doc__ or ""
    documented = set(re.findall(r"^([a-z_]+)\s", doc, re.MULTILINE)) | set(
        re.findall(r"^(after_photo_identical_to_before)$", doc, re.MULTILINE)
    )
    assert set(FLAGS) <= documented
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", f) for f in FLAGS)
    produced = set()
    produced |= set(location_check(ExifData(), *SHANGHAI).flags)
    produced |= set(location_check(at(0.5, 0.5), *SHANGHAI).flags)
    for exif in (
        ExifData(),
        ExifData(taken_at_local=datetime(2030, 1, 1)),
        ExifData(taken_at=RECEIVED + timedelta(days=3)),
    ):
        produced |= set(time_check(exif, REPORTED, RECEIVED).flags)
    same = facts("b", where=SHANGHAI, when=T0, sha="cd" * 32)
    far = facts("a", where=moved(*SHANGHAI, 80), when=T0 - timedelta(hours=1), sha="cd" * 32)
    produced |= set(before_after_pair([same], [far])[0].flags)
    produced |= set(before_after_pair([], [far])[0].flags)
    # photo_undecodable comes from the worker's decode (tests/api/test_photo_lifecycle.py).
    assert produced == set(FLAGS) - {"photo_undecodable"}
