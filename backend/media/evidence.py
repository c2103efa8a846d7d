"""Evidence checks on a photo's metadata: pure functions returning flags and numbers.

A flag is a stable snake_case name a coordinator reads next to the photo; none of them
rejects anything (the original is kept either way), each says what to look at. Numbers
(distance, time differences) are returned too so the screen can show *how* far off.

============================== =========================================================
flag                           meaning
============================== =========================================================
photo_gps_missing              the photo has no usable EXIF GPS position (none, no N/S/E/W
                               reference, out of range, or 0/0): where it was taken is
                               only what the phone reported
photo_far_from_report          the EXIF position is more than ``threshold_m`` (100 m) from
                               the report's location
photo_time_missing             the photo has no capture time at all (no DateTimeOriginal,
                               no GPS time)
photo_time_zone_missing        only a wall-clock DateTimeOriginal without
                               OffsetTimeOriginal and no GPS time: the instant is known
                               only to within the world's offsets (UTC-12 … UTC+14); the
                               checks below then flag only what is off in *every* zone
photo_time_far_from_report     the capture time is more than ``max_skew`` (24 h) before or
                               after the report's capture time (device clock)
photo_time_after_receipt       the photo was taken, by its own time, more than 5 min after
                               the server received it: the phone's clock is ahead or was
                               changed (GPS time, from satellites, cannot do this)
photo_undecodable              complete by its structure but its pixels do not decode
                               (found by the worker): no renditions; the original is still
                               the bytes the phone declared
after_photo_unpaired           an after (整改后) photo could not be matched to any before
                               (整改前) photo: no GPS and no perceptual hash to compare
after_photo_far_from_before    the after photo was taken more than 50 m from its before
                               photo: it may show another place
after_photo_before_report      the after photo was taken *earlier* than the before photo it
                               is paired with: it cannot show the fix
after_photo_identical_to_before
                               the after photo is the before photo (same SHA-256) or the
                               same picture (perceptual hashes within 3 bits): the "fix"
                               photo proves nothing
============================== =========================================================

No "before the report window" flag: the report's own capture time is the only window there
is, and ``photo_time_far_from_report`` already covers both directions.

Positions: EXIF GPS is WGS-84 by definition; the caller passes the report's location already
normalised to WGS-84 (``backend.geo.crs``). Distances are geodesic on the WGS-84 ellipsoid.
Times: only aware datetimes are compared; a wall-clock time is never given a guessed zone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pyproj

from backend.media.exif import ExifData
from backend.media.renditions import hamming

__all__ = [
    "FLAGS",
    "LocationCheck",
    "Pair",
    "PhotoFacts",
    "TimeCheck",
    "before_after_pair",
    "location_check",
    "time_check",
]

FLAGS = (
    "photo_gps_missing",
    "photo_far_from_report",
    "photo_time_missing",
    "photo_time_zone_missing",
    "photo_time_far_from_report",
    "photo_time_after_receipt",
    "photo_undecodable",
    "after_photo_unpaired",
    "after_photo_far_from_before",
    "after_photo_before_report",
    "after_photo_identical_to_before",
)

_GEOD = pyproj.Geod(ellps="WGS84")
# Every UTC offset in use lies in [-12:00, +14:00]: a wall-clock time is an instant within
# [local - 14 h, local + 12 h].
_EARLIEST_ZONE, _LATEST_ZONE = timedelta(hours=14), timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class LocationCheck:
    flags: tuple[str, ...]
    distance_m: float | None  # EXIF position to the reported one; None without EXIF GPS


@dataclass(frozen=True, slots=True)
class TimeCheck:
    flags: tuple[str, ...]
    photo_time: datetime | None  # the instant used: EXIF with offset, else GPS time
    source: Literal["exif", "gps"] | None
    from_report: timedelta | None  # photo_time - report_time
    from_receipt: timedelta | None  # photo_time - received_at


def location_check(
    exif: ExifData, reported_lon: float, reported_lat: float, *, threshold_m: float = 100.0
) -> LocationCheck:
    """Compare the photo's EXIF GPS position with the report's (both WGS-84)."""
    _check_position(reported_lon, reported_lat)
    if exif.gps_lat is None or exif.gps_lon is None:
        return LocationCheck(("photo_gps_missing",), None)
    distance = _distance_m(exif.gps_lon, exif.gps_lat, reported_lon, reported_lat)
    return LocationCheck(("photo_far_from_report",) if distance > threshold_m else (), distance)


def time_check(
    exif: ExifData,
    report_time: datetime,
    received_at: datetime,
    *,
    max_skew: timedelta = timedelta(hours=24),
    clock_tolerance: timedelta = timedelta(minutes=5),
) -> TimeCheck:
    """Compare the photo's capture time with the report's capture time and the receipt.

    ``report_time`` is the device's capture time of the report (its clock), ``received_at``
    the server's; both must be aware.
    """
    for name, value in (("report_time", report_time), ("received_at", received_at)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime")
    source: Literal["exif", "gps"]
    if exif.taken_at is not None:
        photo_time, source = exif.taken_at, "exif"
    elif exif.gps_time is not None:
        photo_time, source = exif.gps_time, "gps"
    else:
        return _wall_clock_check(exif, report_time, received_at, max_skew, clock_tolerance)
    flags = []
    from_report, from_receipt = photo_time - report_time, photo_time - received_at
    if abs(from_report) > max_skew:
        flags.append("photo_time_far_from_report")
    if from_receipt > clock_tolerance:
        flags.append("photo_time_after_receipt")
    return TimeCheck(tuple(flags), photo_time, source, from_report, from_receipt)


def _wall_clock_check(
    exif: ExifData,
    report_time: datetime,
    received_at: datetime,
    max_skew: timedelta,
    clock_tolerance: timedelta,
) -> TimeCheck:
    """Only a naive DateTimeOriginal: flag what is wrong whatever the zone was."""
    if exif.taken_at_local is None:
        return TimeCheck(("photo_time_missing",), None, None, None, None)
    as_utc = exif.taken_at_local.replace(tzinfo=UTC)
    earliest, latest = as_utc - _EARLIEST_ZONE, as_utc + _LATEST_ZONE
    flags = ["photo_time_zone_missing"]
    if report_time < earliest - max_skew or report_time > latest + max_skew:
        flags.append("photo_time_far_from_report")
    if earliest - received_at > clock_tolerance:
        flags.append("photo_time_after_receipt")
    return TimeCheck(tuple(flags), None, None, None, None)


@dataclass(frozen=True, slots=True)
class PhotoFacts:
    """What pairing needs to know about one stored photo."""

    photo_id: str
    sha256: str
    exif: ExifData
    phash: int | None = None

    @classmethod
    def from_stored(
        cls, *, photo_id: str, sha256: str, exif: Mapping[str, Any], phash: int | None
    ) -> PhotoFacts:
        """From a stored row: ``exif`` is what :meth:`ExifData.as_json` produced."""
        return cls(photo_id, sha256.lower(), ExifData.from_json(exif), phash)

    @property
    def time(self) -> datetime | None:
        return self.exif.best_time


@dataclass(frozen=True, slots=True)
class Pair:
    """One after photo and the before photo it is compared with."""

    after_id: str
    before_id: str | None
    matched_by: Literal["identical", "gps", "phash", "only"] | None
    distance_m: float | None
    time_gap: timedelta | None  # after - before; negative: the "after" is older
    hamming: int | None
    flags: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        gap = None if self.time_gap is None else self.time_gap.total_seconds()
        return {
            "after_id": self.after_id,
            "before_id": self.before_id,
            "matched_by": self.matched_by,
            "distance_m": self.distance_m,
            "time_gap_s": gap,
            "hamming": self.hamming,
            "flags": list(self.flags),
        }


def before_after_pair(
    before: Sequence[PhotoFacts],
    after: Sequence[PhotoFacts],
    *,
    far_m: float = 50.0,
    identical_bits: int = 3,
) -> list[Pair]:
    """Pair each after photo (整改后) with the closest before photo (整改前), in ``after`` order.

    Closest means: a before photo that is the same picture if there is one (that is the
    finding that matters most), else the nearest by GPS distance, else the most similar by
    perceptual hash, else the only before photo there is. Ties go to the lower Hamming
    distance, then to the earlier before photo.
    """
    return [_pair(a, before, far_m, identical_bits) for a in after]


def _pair(a: PhotoFacts, before: Sequence[PhotoFacts], far_m: float, bits: int) -> Pair:
    def similarity(b: PhotoFacts) -> int:
        return 65 if a.phash is None or b.phash is None else hamming(a.phash, b.phash)

    def identical(b: PhotoFacts) -> bool:
        return a.sha256.lower() == b.sha256.lower() or similarity(b) <= bits

    order = {id(b): i for i, b in enumerate(before)}
    chosen: PhotoFacts | None = None
    how: Literal["identical", "gps", "phash", "only"] | None = None
    same = [b for b in before if identical(b)]
    located = [b for b in before if b.exif.has_gps] if a.exif.has_gps else []
    hashed = [b for b in before if b.phash is not None] if a.phash is not None else []
    if same:
        chosen, how = min(same, key=lambda b: (similarity(b), order[id(b)])), "identical"
    elif located:
        chosen = min(located, key=lambda b: (_between(a, b), similarity(b), order[id(b)]))
        how = "gps"
    elif hashed:
        chosen, how = min(hashed, key=lambda b: (similarity(b), order[id(b)])), "phash"
    elif len(before) == 1:
        chosen, how = before[0], "only"
    if chosen is None:
        return Pair(a.photo_id, None, None, None, None, None, ("after_photo_unpaired",))
    distance = _between(a, chosen) if a.exif.has_gps and chosen.exif.has_gps else None
    bits_apart = None if a.phash is None or chosen.phash is None else similarity(chosen)
    gap = None if a.time is None or chosen.time is None else a.time - chosen.time
    flags = []
    if distance is not None and distance > far_m:
        flags.append("after_photo_far_from_before")
    if gap is not None and gap < timedelta(0):
        flags.append("after_photo_before_report")
    if how == "identical":
        flags.append("after_photo_identical_to_before")
    return Pair(a.photo_id, chosen.photo_id, how, distance, gap, bits_apart, tuple(flags))


def _between(a: PhotoFacts, b: PhotoFacts) -> float:
    assert a.exif.gps_lon is not None and a.exif.gps_lat is not None
    assert b.exif.gps_lon is not None and b.exif.gps_lat is not None
    return _distance_m(a.exif.gps_lon, a.exif.gps_lat, b.exif.gps_lon, b.exif.gps_lat)


def _distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    _, _, distance = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(distance)


def _check_position(lon: float, lat: float) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"not a WGS-84 position: lon={lon!r}, lat={lat!r}")
