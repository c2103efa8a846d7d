"""The few EXIF fields that matter as evidence, read from untrusted bytes without ever failing.

Photos are evidence, and their metadata is written by thousands of camera apps, editors and,
sometimes, people who want a photo to say something it should not. So this is a deliberately
small, bounded TIFF reader rather than Pillow's general one (which parses eagerly, warns,
and raises different exceptions from one version to the next):

* it visits exactly three IFDs — IFD0, the Exif IFD and the GPS IFD — and never follows a
  "next IFD" chain, so loops and recursion are impossible whatever the offsets say;
* it reads only the tags below, checks every offset and count against the buffer (a value
  that claims more bytes than there are is malformed, not "read what fits"), reads at most
  a few hundred bytes of any string and keeps at most 200 characters of it;
* anything that does not parse becomes ``None`` — missing and malformed look the same to
  the caller, and nothing is ever guessed (no hemisphere without its reference, no time
  zone without OffsetTimeOriginal).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = ["MAX_TEXT_CHARS", "ExifData", "parse_exif"]

MAX_TEXT_CHARS = 200
_MAX_TEXT_BYTES = 4 * MAX_TEXT_CHARS  # enough UTF-8 for 200 characters
_MAX_ENTRIES = 1024  # per IFD; real cameras write well under 100
_MAX_ALTITUDE_M = 100_000.0

# Tags (EXIF 2.32 / 3.0).
_MAKE, _MODEL, _ORIENTATION, _SOFTWARE = 0x010F, 0x0110, 0x0112, 0x0131
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL, _SUBSEC_ORIGINAL = 0x9003, 0x9011, 0x9291
_LAT_REF, _LAT, _LON_REF, _LON, _ALT_REF, _ALT = 1, 2, 3, 4, 5, 6
_GPS_TIME, _GPS_DATE, _GPS_H_ERROR = 7, 0x1D, 0x1F

# TIFF field type -> size of one value in bytes (129 is EXIF 3.0's UTF-8).
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_TYPE_SIZE[129] = 1
_TEXT_TYPES = {1, 2, 7, 129}  # BYTE/UNDEFINED/UTF-8 (EXIF 3.0) strings are common in the wild
_INT_TYPES = {1: "B", 3: "H", 4: "L", 6: "b", 7: "B", 8: "h", 9: "l", 13: "L"}
_FLOAT_TYPES = {11: "f", 12: "d"}

_DATETIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_DATE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})")
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PARSE_ERRORS = (ValueError, ArithmeticError, IndexError, KeyError, TypeError, struct.error)


@dataclass(frozen=True, slots=True)
class ExifData:
    """What a photo's EXIF says; every field is ``None`` when missing or malformed.

    ``taken_at`` is aware only when the file says which offset DateTimeOriginal is in
    (OffsetTimeOriginal); otherwise only the naive ``taken_at_local`` is known and the
    evidence checks must not pretend otherwise. ``gps_time`` comes from the satellites, not
    the phone's clock, and is always UTC.
    """

    gps_lat: float | None = None
    gps_lon: float | None = None
    gps_altitude_m: float | None = None
    gps_accuracy_m: float | None = None
    gps_time: datetime | None = None
    taken_at: datetime | None = None
    taken_at_local: datetime | None = None
    offset: str | None = None
    orientation: int | None = None
    make: str | None = None
    model: str | None = None
    software: str | None = None

    @property
    def has_gps(self) -> bool:
        return self.gps_lat is not None and self.gps_lon is not None

    @property
    def best_time(self) -> datetime | None:
        """The capture instant: DateTimeOriginal with its offset, else the GPS time."""
        return self.taken_at or self.gps_time

    def as_json(self) -> dict[str, Any]:
        """Every field, datetimes as ISO 8601 (UTC as ``Z``), for storage next to the photo."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
                if value.endswith("+00:00") and f.name == "gps_time":
                    value = value[:-6] + "Z"
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExifData:
        """The inverse of :meth:`as_json`, tolerant of stored rows from older versions."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = data.get(f.name)
            if f.name in ("gps_time", "taken_at", "taken_at_local"):
                values[f.name] = _iso(raw, aware=f.name != "taken_at_local")
            elif f.name == "orientation":
                ok = isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= 8
                values[f.name] = raw if ok else None
            elif f.name.startswith("gps_"):
                values[f.name] = _finite(raw)
            else:
                values[f.name] = raw[:MAX_TEXT_CHARS] if isinstance(raw, str) else None
        return cls(**values)


def parse_exif(data: bytes | None) -> ExifData:
    """Parse an EXIF block (with or without the ``Exif\\0\\0`` prefix); never raises."""
    if not data:
        return ExifData()
    try:
        tiff = _Tiff(data)
        ifd0 = tiff.ifd(tiff.first_ifd)
        exif_ifd = tiff.ifd(tiff.integer(ifd0.get(_EXIF_IFD)))
        gps_ifd = tiff.ifd(tiff.integer(ifd0.get(_GPS_IFD)))
    except _PARSE_ERRORS:
        return ExifData()
    lat = _guard(_coordinate, tiff, gps_ifd, _LAT, _LAT_REF, "N", "S", 90.0)
    lon = _guard(_coordinate, tiff, gps_ifd, _LON, _LON_REF, "E", "W", 180.0)
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):
        # Half a position is no position; 0/0 is what some camera apps write without a fix.
        lat = lon = None
    local = _guard(_local_time, tiff, exif_ifd)
    offset_text, zone = _guard(_offset, tiff, exif_ifd) or (None, None)
    orientation = _guard(tiff.integer, ifd0.get(_ORIENTATION))
    return ExifData(
        gps_lat=lat,
        gps_lon=lon,
        gps_altitude_m=_guard(_altitude, tiff, gps_ifd),
        gps_accuracy_m=_guard(_non_negative, tiff, gps_ifd.get(_GPS_H_ERROR)),
        gps_time=_guard(_gps_time, tiff, gps_ifd),
        taken_at=local.replace(tzinfo=zone) if local is not None and zone is not None else None,
        taken_at_local=local,
        offset=offset_text if local is not None else None,
        orientation=orientation if orientation is not None and 1 <= orientation <= 8 else None,
        make=_guard(tiff.text, ifd0.get(_MAKE)),
        model=_guard(tiff.text, ifd0.get(_MODEL)),
        software=_guard(tiff.text, ifd0.get(_SOFTWARE)),
    )


def _guard(fn: Any, *args: Any) -> Any:
    """One malformed field must not cost the others."""
    try:
        return fn(*args)
    except _PARSE_ERRORS:
        return None


@dataclass(frozen=True, slots=True)
class _Entry:
    type: int
    count: int
    at: int  # position of the first value byte in the TIFF buffer


class _Tiff:
    """A bounds-checked view of a TIFF structure (the body of an EXIF block)."""

    def __init__(self, data: bytes) -> None:
        if data[:4] == b"Exif" and data[4:6] in (b"\0\0", b"\0\xff"):
            data = data[6:]
        if data[:4] == b"II*\0":
            self.order = "<"
        elif data[:4] == b"MM\0*":
            self.order = ">"
        else:
            raise ValueError("not a TIFF header")
        self.data = data
        self.first_ifd: int = struct.unpack_from(self.order + "L", data, 4)[0]

    def ifd(self, offset: int | None) -> dict[int, _Entry]:
        """The entries of the IFD at ``offset``; first occurrence of a tag wins."""
        data, order = self.data, self.order
        if offset is None or offset < 8 or offset + 2 > len(data):
            return {}
        (declared,) = struct.unpack_from(order + "H", data, offset)
        room = (len(data) - offset - 2) // 12
        entries: dict[int, _Entry] = {}
        for i in range(min(declared, room, _MAX_ENTRIES)):
            pos = offset + 2 + 12 * i
            tag, kind, count = struct.unpack_from(order + "HHL", data, pos)
            size = _TYPE_SIZE.get(kind, 0) * count
            if tag in entries or size == 0:
                continue
            at = pos + 8 if size <= 4 else struct.unpack_from(order + "L", data, pos + 8)[0]
            if at + size <= len(data):  # a value longer than the buffer is malformed
                entries[tag] = _Entry(kind, count, at)
        return entries

    def numbers(self, entry: _Entry | None, most: int) -> list[float] | None:
        """Between 1 and ``most`` numeric values (rationals as floats, NaN when x/0)."""
        if entry is None or not 1 <= entry.count <= most:
            return None
        kind, n = entry.type, entry.count
        if kind in (5, 10):
            raw = self._unpack(f"{2 * n}{'L' if kind == 5 else 'l'}", entry.at)
            return [a / b if b else math.nan for a, b in zip(raw[::2], raw[1::2], strict=True)]
        code = _INT_TYPES.get(kind) or _FLOAT_TYPES.get(kind)
        if code is None:
            return None
        return [float(v) for v in self._unpack(f"{n}{code}", entry.at)]

    def integer(self, entry: _Entry | None) -> int | None:
        if entry is None or entry.type not in _INT_TYPES:
            return None
        return int(self._unpack(_INT_TYPES[entry.type], entry.at)[0])

    def _unpack(self, fmt: str, at: int) -> tuple[Any, ...]:
        return struct.unpack_from(self.order + fmt, self.data, at)

    def text(self, entry: _Entry | None) -> str | None:
        if entry is None or entry.type not in _TEXT_TYPES:
            return None
        raw = self.data[entry.at : entry.at + min(entry.count, _MAX_TEXT_BYTES)]
        text = raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
        text = _CONTROL.sub("", text).strip()[:MAX_TEXT_CHARS].strip()
        return text or None


def _coordinate(
    tiff: _Tiff, gps: dict[int, _Entry], tag: int, ref_tag: int, pos: str, neg: str, limit: float
) -> float | None:
    ref = (tiff.text(gps.get(ref_tag)) or "").upper()
    parts = tiff.numbers(gps.get(tag), 3)
    if ref not in (pos, neg) or not parts:
        return None
    degrees, minutes, seconds = [*parts, 0.0, 0.0][:3]
    if not all(math.isfinite(p) and p >= 0 for p in parts) or minutes > 60 or seconds > 60:
        return None
    value = degrees + minutes / 60 + seconds / 3600
    if value > limit:
        return None
    return -value if ref == neg else value


def _non_negative(tiff: _Tiff, entry: _Entry | None) -> float | None:
    values = tiff.numbers(entry, 1)
    if not values or not math.isfinite(values[0]) or values[0] < 0:
        return None
    return values[0]


def _altitude(tiff: _Tiff, gps: dict[int, _Entry]) -> float | None:
    value = _non_negative(tiff, gps.get(_ALT))
    # AltitudeRef: 0 above sea level (the spec's default when absent), 1 below. EXIF 3.0's
    # 2/3 are ellipsoidal heights, a different quantity, so they count as missing.
    ref = tiff.integer(gps.get(_ALT_REF)) if _ALT_REF in gps else 0
    if value is None or value > _MAX_ALTITUDE_M or ref not in (0, 1):
        return None
    return -value if ref == 1 else value


def _gps_time(tiff: _Tiff, gps: dict[int, _Entry]) -> datetime | None:
    date = _DATE.fullmatch(tiff.text(gps.get(_GPS_DATE)) or "")
    hms = tiff.numbers(gps.get(_GPS_TIME), 3)
    if date is None or hms is None or len(hms) != 3:
        return None
    h, m, s = hms
    if not all(math.isfinite(v) and v >= 0 for v in hms) or h >= 24 or m >= 60 or s >= 61:
        return None
    year, month, day = (int(g) for g in date.groups())
    midnight = datetime(year, month, day, tzinfo=UTC)
    return midnight + timedelta(hours=int(h), minutes=int(m), seconds=round(s, 6))


def _local_time(tiff: _Tiff, exif: dict[int, _Entry]) -> datetime | None:
    found = _DATETIME.fullmatch(tiff.text(exif.get(_DATETIME_ORIGINAL)) or "")
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in found.groups())
    local = datetime(year, month, day, hour, minute, second)
    subsec = tiff.text(exif.get(_SUBSEC_ORIGINAL)) or ""
    if subsec.isascii() and subsec.isdigit():
        local = local.replace(microsecond=int(subsec[:6].ljust(6, "0")))
    return local


def _offset(tiff: _Tiff, exif: dict[int, _Entry]) -> tuple[str, timezone] | None:
    text = tiff.text(exif.get(_OFFSET_TIME_ORIGINAL)) or ""
    found = _OFFSET.fullmatch(text)
    if found is None:
        return None
    sign, hours, minutes = found.group(1), int(found.group(2)), int(found.group(3))
    if hours > 14 or minutes >= 60:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return text, timezone(-delta if sign == "-" else delta)


def _finite(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


def _iso(raw: Any, *, aware: bool) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if (value.tzinfo is not None) == aware else None
