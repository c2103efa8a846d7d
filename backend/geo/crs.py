"""The one place where "any input coordinate system" becomes WGS-84 lon/lat (SRID 4326).

Why: locations reach us from phones in WGS-84, GCJ-02 or BD-09, and grid files arrive in
CGCS2000 Gauss-Krüger zones, UTM or plain lon/lat. Mixing them silently puts points
hundreds of metres away -- several ~100 m grid cells -- so every coordinate is converted
here, on the way in, and nothing downstream ever sees another system.

Decisions worth knowing:

* **CGCS2000 is treated as identical to WGS-84.** The two frames agree to a few
  centimetres for our purposes (sub-metre at most), far below grid scale, and PROJ itself
  only knows a zero "ballpark" shift between them. EPSG:4490 (and ``cgcs2000``) is
  therefore an identity, like EPSG:4326; CGCS2000 projected zones go through PROJ.
* **GCJ-02 / BD-09** are not datums and PROJ cannot do them; they are handled by
  :mod:`backend.geo.chinese_crs` with exact iterative inverses.
* **Only CRSs built on WGS-84 or CGCS2000 are accepted** for EPSG codes. PROJ has no
  accurate public transformation from Beijing 1954 or Xian 1980 to WGS-84 in mainland
  China and silently applies a zero "ballpark" shift -- an error of tens to ~100 m, i.e.
  a wrong grid cell. Such files must be converted with the authority's local parameters
  first; refusing them with a clear message is safer than importing them shifted.
* **Axis order is always x=lon/easting, y=lat/northing**, whatever the EPSG definition says
  (EPSG:4326 is formally lat,lon); transformers are built with ``always_xy=True``.
* **Range checks catch a wrongly declared CRS.** Geographic input must be finite and
  within lon [-180, 180] / lat [-90, 90]; projected input must be finite and must
  transform to such a lon/lat. A Gauss-Krüger file declared as WGS-84 (lon=500000)
  therefore fails loudly instead of being stored. Projected results must also fall near
  the EPSG area of use (with a generous margin): PROJ happily inverts nonsense such as
  swapped x/y columns into a valid-looking lon/lat in the ocean, and a valid-range test
  alone would store it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from pyproj.exceptions import CRSError

from backend.core.errors import InvalidInput
from backend.geo import chinese_crs

__all__ = [
    "CoordinatesOutOfRange",
    "LocationCRS",
    "SourceCRS",
    "UnknownCoordinateSystem",
    "detect_crs_from_wkt_or_authority",
    "normalise_location",
    "parse_source_crs",
]

FloatArray = npt.NDArray[np.float64]

WGS84_EPSG = 4326
CGCS2000_EPSG = 4490
# Geographic bases whose conversion to SRID 4326 is exact or sub-metre (see docstring).
_SUPPORTED_BASE_EPSG = frozenset({WGS84_EPSG, CGCS2000_EPSG})
# Degrees allowed outside a projected CRS's EPSG area of use. Real data strays past zone
# edges (a city straddling two Gauss-Kruger zones, UTM data spanning zones) but not by
# this much, while swapped axes or a wrong zone prefix land thousands of km away.
AREA_OF_USE_MARGIN_DEG = 3.0

_ACCEPTED_FORMS = (
    "'EPSG:<code>' (e.g. EPSG:4326, EPSG:4490, EPSG:4547 for CGCS2000 Gauss-Kruger "
    "CM 114E, EPSG:32650 for UTM 50N), a bare EPSG code such as '4547', "
    "or one of the names wgs84, cgcs2000, gcj02, bd09"
)


class UnknownCoordinateSystem(InvalidInput):
    code = "unknown_crs"
    title = "Unknown coordinate system"


class CoordinatesOutOfRange(InvalidInput):
    code = "coordinates_out_of_range"
    title = "Coordinates out of range"


class LocationCRS(StrEnum):
    """The systems a phone may declare for a location it reports."""

    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"
    cgcs2000 = "cgcs2000"


class _Method(Enum):
    identity = "identity"
    gcj02 = "gcj02"
    bd09 = "bd09"
    proj = "proj"


# ----------------------------------------------------------------- range validation


def _fmt(x: float, y: float) -> str:
    return f"({x!r}, {y!r})"


def _check_lonlat(lon: float, lat: float, crs_name: str) -> None:
    """Raise unless (lon, lat) is a finite, in-range geographic coordinate.

    One chained comparison covers NaN and +-inf too (every comparison with them is false),
    which keeps the per-report hot path to a single branch.
    """
    if -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0:
        return
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise CoordinatesOutOfRange(
            f"Coordinates {_fmt(lon, lat)} are not finite numbers.", crs=crs_name
        )
    raise CoordinatesOutOfRange(
        f"Coordinates {_fmt(lon, lat)} are not a valid longitude/latitude in {crs_name} "
        "(longitude must be within [-180, 180] and latitude within [-90, 90], in that "
        "order). They do not look like the declared coordinate system: projected "
        "coordinates such as Gauss-Kruger eastings/northings need their EPSG code.",
        crs=crs_name,
    )


def _check_finite(x: float, y: float, crs_name: str) -> None:
    if not (math.isfinite(x) and math.isfinite(y)):
        raise CoordinatesOutOfRange(
            f"Coordinates {_fmt(x, y)} are not finite numbers.", crs=crs_name
        )


def _check_transformed(x: float, y: float, lon: float, lat: float, crs_name: str) -> None:
    """A projected point must land on a valid lon/lat, else the declared CRS is wrong."""
    if -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0:
        return
    raise CoordinatesOutOfRange(
        f"Coordinates {_fmt(x, y)} do not transform from {crs_name} to a valid "
        f"longitude/latitude (got {_fmt(lon, lat)}); they do not look like {crs_name} "
        "coordinates.",
        crs=crs_name,
    )


def _check_area(
    x: float, y: float, lon: float, lat: float, crs_name: str, area: _Area | None
) -> None:
    """A projected point must land near where its CRS is used (see the module docstring)."""
    if area is None or area.contains(lon, lat):
        return
    raise CoordinatesOutOfRange(
        f"Coordinates {_fmt(x, y)} transform from {crs_name} to {_fmt(lon, lat)}, far "
        f"outside the area where {crs_name} is used ({area.description}); they do not look "
        f"like {crs_name} coordinates (swapped x/y columns, or a different zone?).",
        crs=crs_name,
    )


def _first_bad(ok: npt.NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(~ok)[0])


def _lonlat_ok(lons: FloatArray, lats: FloatArray) -> npt.NDArray[np.bool_]:
    # NaN compares false, so non-finite values are "not ok" without a separate test.
    ok: npt.NDArray[np.bool_] = (
        (lons >= -180.0) & (lons <= 180.0) & (lats >= -90.0) & (lats <= 90.0)
    )
    return ok


def _check_lonlat_arrays(lons: FloatArray, lats: FloatArray, crs_name: str) -> None:
    ok = _lonlat_ok(lons, lats)
    if not ok.all():
        i = _first_bad(ok)
        _check_lonlat(float(lons.flat[i]), float(lats.flat[i]), crs_name)


def _check_finite_arrays(xs: FloatArray, ys: FloatArray, crs_name: str) -> None:
    ok = np.isfinite(xs) & np.isfinite(ys)
    if not ok.all():
        i = _first_bad(ok)
        _check_finite(float(xs.flat[i]), float(ys.flat[i]), crs_name)


def _check_transformed_arrays(
    xs: FloatArray, ys: FloatArray, lons: FloatArray, lats: FloatArray, crs_name: str
) -> None:
    ok = _lonlat_ok(lons, lats)
    if not ok.all():
        i = _first_bad(ok)
        _check_transformed(
            float(xs.flat[i]),
            float(ys.flat[i]),
            float(lons.flat[i]),
            float(lats.flat[i]),
            crs_name,
        )


def _check_area_arrays(
    xs: FloatArray,
    ys: FloatArray,
    lons: FloatArray,
    lats: FloatArray,
    crs_name: str,
    area: _Area | None,
) -> None:
    if area is None:
        return
    ok = area.contains_arrays(lons, lats)
    if not ok.all():
        i = _first_bad(ok)
        args = (float(xs.flat[i]), float(ys.flat[i]), float(lons.flat[i]), float(lats.flat[i]))
        _check_area(*args, crs_name, area)


# ----------------------------------------------------------------- EPSG via pyproj


class _Area(NamedTuple):
    """An EPSG area of use widened by AREA_OF_USE_MARGIN_DEG."""

    west: float
    south: float
    east: float
    north: float
    description: str

    def contains(self, lon: float, lat: float) -> bool:
        if not self.south <= lat <= self.north:
            return False
        # Areas crossing the antimeridian have west > east; skip the longitude test there.
        return self.west > self.east or self.west <= lon <= self.east

    def contains_arrays(self, lons: FloatArray, lats: FloatArray) -> npt.NDArray[np.bool_]:
        ok: npt.NDArray[np.bool_] = (lats >= self.south) & (lats <= self.north)
        if self.west <= self.east:
            ok &= (lons >= self.west) & (lons <= self.east)
        return ok


class _EpsgInfo(NamedTuple):
    name: str
    is_geographic: bool
    area: _Area | None


def _widened_area(crs: pyproj.CRS) -> _Area | None:
    aou = crs.area_of_use
    if aou is None:
        return None
    m = AREA_OF_USE_MARGIN_DEG
    return _Area(
        west=aou.west - m,
        south=max(aou.south - m, -90.0),
        east=aou.east + m,
        north=min(aou.north + m, 90.0),
        description=aou.name.rstrip("."),
    )


@lru_cache(maxsize=128)
def _describe_epsg(code: int) -> _EpsgInfo:
    """Validate an EPSG code for import use and return what the transforms need.

    Cached because pyproj's database look-ups cost milliseconds and imports repeat codes.
    """
    try:
        crs = pyproj.CRS.from_epsg(code)
    except CRSError as exc:
        raise UnknownCoordinateSystem(
            f"EPSG:{code} is not a coordinate system known to PROJ. Accepted: {_ACCEPTED_FORMS}.",
            crs=f"EPSG:{code}",
        ) from exc
    if not (crs.is_geographic or crs.is_projected) or crs.is_compound or len(crs.axis_info) != 2:
        raise UnknownCoordinateSystem(
            f"EPSG:{code} ({crs.name}, {crs.type_name}) cannot be used here: only 2D "
            f"geographic (lon/lat) or projected (easting/northing) systems are accepted. "
            f"Accepted: {_ACCEPTED_FORMS}.",
            crs=f"EPSG:{code}",
        )
    base = crs.geodetic_crs
    base_epsg = base.to_epsg() if base is not None else None
    if base_epsg not in _SUPPORTED_BASE_EPSG:
        base_name = base.name if base is not None else "an unknown datum"
        raise UnknownCoordinateSystem(
            f"EPSG:{code} ({crs.name}) is based on {base_name}, which has no transformation "
            "to WGS-84 accurate at grid scale (PROJ would shift it by an unknown tens of "
            "metres). Convert the file to CGCS2000 (e.g. EPSG:4490 or the CGCS2000 "
            "Gauss-Kruger zone, EPSG:4513-4554) with your surveying authority's "
            "parameters and import that instead.",
            crs=f"EPSG:{code}",
        )
    return _EpsgInfo(f"EPSG:{code}", crs.is_geographic, _widened_area(crs))


@lru_cache(maxsize=128)
def _transformer(code: int) -> pyproj.Transformer:
    # pyproj >= 3.1 Transformers are thread-safe, so one cached instance serves the
    # FastAPI threadpool. always_xy: in and out are (x=lon/easting, y=lat/northing).
    return pyproj.Transformer.from_crs(
        pyproj.CRS.from_epsg(code), pyproj.CRS.from_epsg(WGS84_EPSG), always_xy=True
    )


# ----------------------------------------------------------------- SourceCRS

_ScalarFn = Callable[[float, float], tuple[float, float]]
_ArrayFn = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

_SCALAR_TO_WGS84: dict[_Method, _ScalarFn] = {
    _Method.gcj02: chinese_crs.gcj02_to_wgs84,
    _Method.bd09: chinese_crs.bd09_to_wgs84,
}
_ARRAYS_TO_WGS84: dict[_Method, _ArrayFn] = {
    _Method.gcj02: chinese_crs.gcj02_to_wgs84_arrays,
    _Method.bd09: chinese_crs.bd09_to_wgs84_arrays,
}


@dataclass(frozen=True, slots=True)
class SourceCRS:
    """A validated coordinate system of imported data, able to convert to WGS-84 lon/lat.

    Build it with :func:`parse_source_crs`. ``name`` is canonical: ``"EPSG:<n>"`` for EPSG
    systems (``wgs84`` -> ``EPSG:4326``, ``cgcs2000`` -> ``EPSG:4490``) or
    ``"gcj02"`` / ``"bd09"``.
    """

    name: str
    epsg: int | None
    is_geographic: bool
    _method: _Method

    def to_wgs84_xy(self, x: float, y: float) -> tuple[float, float]:
        """Convert one point; returns (lon, lat). Raises CoordinatesOutOfRange."""
        method = self._method
        if method is _Method.proj:
            return self._proj_xy(x, y)
        _check_lonlat(x, y, self.name)
        if method is _Method.identity:
            return float(x), float(y)
        return _SCALAR_TO_WGS84[method](x, y)

    def _proj_xy(self, x: float, y: float) -> tuple[float, float]:
        assert self.epsg is not None  # _Method.proj is only built with a code
        if self.is_geographic:
            _check_lonlat(x, y, self.name)
        else:
            _check_finite(x, y, self.name)
        lon, lat = _transformer(self.epsg).transform(x, y)
        _check_transformed(x, y, lon, lat, self.name)
        _check_area(x, y, lon, lat, self.name, _describe_epsg(self.epsg).area)
        return float(lon), float(lat)

    def to_wgs84_arrays(
        self, xs: npt.ArrayLike, ys: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        """Convert many points; returns new (lons, lats) arrays. Raises on any bad point."""
        x_arr = np.asarray(xs, dtype=np.float64)
        y_arr = np.asarray(ys, dtype=np.float64)
        if x_arr.shape != y_arr.shape:
            raise ValueError(f"xs and ys differ in shape: {x_arr.shape} != {y_arr.shape}")
        method = self._method
        if method is _Method.proj:
            return self._proj_arrays(x_arr, y_arr)
        _check_lonlat_arrays(x_arr, y_arr, self.name)
        if method is _Method.identity:
            return x_arr.copy(), y_arr.copy()
        return _ARRAYS_TO_WGS84[method](x_arr, y_arr)

    def _proj_arrays(self, xs: FloatArray, ys: FloatArray) -> tuple[FloatArray, FloatArray]:
        assert self.epsg is not None
        if self.is_geographic:
            _check_lonlat_arrays(xs, ys, self.name)
        else:
            _check_finite_arrays(xs, ys, self.name)
        lon_out, lat_out = _transformer(self.epsg).transform(xs, ys)
        lons = np.asarray(lon_out, dtype=np.float64)
        lats = np.asarray(lat_out, dtype=np.float64)
        _check_transformed_arrays(xs, ys, lons, lats, self.name)
        _check_area_arrays(xs, ys, lons, lats, self.name, _describe_epsg(self.epsg).area)
        return lons, lats

    def to_wgs84_geometry(self, geom: shapely.Geometry) -> shapely.Geometry:
        """Convert every vertex of ``geom``; structure (parts, rings, holes) is preserved.

        The result is 2D: a Z coordinate, if any, is dropped (we store 2D SRID 4326).
        """

        def convert(coords: FloatArray) -> FloatArray:
            lons, lats = self.to_wgs84_arrays(coords[:, 0], coords[:, 1])
            return np.column_stack((lons, lats))

        result: shapely.Geometry = shapely.transform(geom, convert)
        return result


def _named(name: str, method: _Method) -> SourceCRS:
    return SourceCRS(name=name, epsg=None, is_geographic=True, _method=method)


def _from_epsg(code: int) -> SourceCRS:
    info = _describe_epsg(code)
    # Both geographic systems we accept are identities: skip pyproj entirely for them.
    method = _Method.identity if code in _SUPPORTED_BASE_EPSG else _Method.proj
    return SourceCRS(name=info.name, epsg=code, is_geographic=info.is_geographic, _method=method)


_NAMED_SOURCES: dict[str, Callable[[], SourceCRS]] = {
    "wgs84": lambda: _from_epsg(WGS84_EPSG),
    "cgcs2000": lambda: _from_epsg(CGCS2000_EPSG),
    "gcj02": lambda: _named("gcj02", _Method.gcj02),
    "bd09": lambda: _named("bd09", _Method.bd09),
}

_EPSG_RE = re.compile(r"^(?:epsg\s*:\s*)?(\d{1,9})$", re.IGNORECASE)


def parse_source_crs(text: str) -> SourceCRS:
    """Parse a grid-file import's declared CRS.

    Accepts ``EPSG:<n>`` / bare ``<n>`` for 2D geographic or projected systems on WGS-84
    or CGCS2000, and the names ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``
    (case-insensitive; ``-``, ``_`` and spaces in names are ignored, so ``WGS-84`` works).
    Anything else raises :class:`UnknownCoordinateSystem`.
    """
    cleaned = (text or "").strip()
    named = _NAMED_SOURCES.get(re.sub(r"[\s_-]", "", cleaned).lower())
    if named is not None:
        return named()
    match = _EPSG_RE.match(cleaned)
    if match is None:
        raise UnknownCoordinateSystem(
            f"Unknown coordinate system {cleaned!r}. Accepted: {_ACCEPTED_FORMS}.",
            crs=cleaned,
        )
    return _from_epsg(int(match.group(1)))


# ----------------------------------------------------------------- phone locations


def _identity(lon: float, lat: float) -> tuple[float, float]:
    return float(lon), float(lat)


# Keyed by the members; plain strings such as "gcj02" also hit, because an Enum member
# hashes like its *name* and compares like its value, and here name == value.
_LOCATION_TO_WGS84: dict[str, _ScalarFn] = {
    LocationCRS.wgs84: _identity,
    LocationCRS.cgcs2000: _identity,
    LocationCRS.gcj02: chinese_crs.gcj02_to_wgs84,
    LocationCRS.bd09: chinese_crs.bd09_to_wgs84,
}


def normalise_location(lon: float, lat: float, crs: LocationCRS) -> tuple[float, float]:
    """Convert a phone-reported location to WGS-84 (lon, lat). Pure math, no pyproj.

    Raises CoordinatesOutOfRange for non-finite or out-of-range input and
    UnknownCoordinateSystem for a ``crs`` that is not a :class:`LocationCRS` value.
    """
    convert = _LOCATION_TO_WGS84.get(crs)
    if convert is None:
        raise UnknownCoordinateSystem(
            f"Unknown location coordinate system {crs!r}; expected one of "
            f"{', '.join(LocationCRS)}.",
            crs=str(crs),
        )
    _check_lonlat(lon, lat, crs)
    return convert(lon, lat)


# ----------------------------------------------------------------- GIS file metadata


def detect_crs_from_wkt_or_authority(crs_text: str | None) -> str | None:
    """Turn a GIS file's declared CRS (``"EPSG:4326"``, WKT, PROJ string) into ``"EPSG:<n>"``.

    Returns None when nothing is declared or PROJ cannot identify it with at least 70 %
    confidence (ESRI .prj WKT often lacks authority codes, hence the fuzzy match); the
    caller then asks the user. The result still has to go through
    :func:`parse_source_crs`, which decides whether the system is usable.
    """
    if crs_text is None or not crs_text.strip():
        return None
    try:
        epsg = pyproj.CRS.from_user_input(crs_text).to_epsg(min_confidence=70)
    except CRSError:
        return None
    return None if epsg is None else f"EPSG:{epsg}"
