"""GCJ-02 ("Mars coordinates") and BD-09 (Baidu) <-> WGS-84, which PROJ cannot do.

Why this module exists: phones in China report positions through AMap / Tencent / Apple
Maps (GCJ-02) or the Baidu SDK (BD-09). Both are deliberate, undocumented-by-decree
obfuscations of WGS-84 with offsets of a few hundred metres (GCJ-02) and about a kilometre
(BD-09) -- far larger than our ~100 m grid cells -- so every location must be de-obfuscated
before it is stored as SRID 4326. They are not datums, so no EPSG code or PROJ pipeline
exists for them; the public reverse-engineered formulas are implemented here from the maths:

* GCJ-02: WGS-84 plus an offset. The offset is a fixed polynomial-plus-sines function of
  ``(lon - 105, lat - 35)`` giving metres, turned into degrees with the radii of curvature
  of the Krasovsky 1940 ellipsoid (a = 6378245.0, e² = 0.00669342162296594323).
* BD-09: GCJ-02 rotated/scaled by tiny sine terms in a polar form around (0, 0)
  (``x_pi = pi * 3000 / 180``) then shifted by (+0.0065°, +0.006°).

Neither forward function has a closed-form inverse. The inverses here solve
``forward(w) = g`` by fixed-point iteration ``w <- w - (forward(w) - g)``. That converges
fast because the offsets vary slowly: their derivative (measured over the whole box) is
below 0.007 for GCJ-02 and 0.022 for BD-09, so each step gains about two decimal digits
and three or four steps reach the tolerance. We stop when the correction is below
``1e-9``° (about 0.1 mm); the error left is then the contraction factor times that,
orders of magnitude under the 0.5 m requirement.
A maximum iteration count guards against pathological input; it is never hit in practice.

Outside mainland China the obfuscation is conventionally not applied, and we do the same
for both systems (Baidu also returns WGS-84 abroad). "Mainland China" is the conventional
rough bounding box used by every public implementation -- lon 72.004..137.8347,
lat 0.8293..55.8271. It is only a rectangle: it includes parts of neighbouring countries,
Taiwan, Hong Kong and Macau, and misses nothing of the mainland. We keep it, rather than a
border polygon, because it is what every public implementation uses, so our output agrees
with the other tools our users compare against.

The scalar functions are pure :mod:`math` (they run once per report, where numpy's per-call
overhead would dominate); the ``*_arrays`` functions are the numpy equivalents for
polygons with many vertices. Both take and return (lon, lat) order.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__all__ = [
    "bd09_to_gcj02",
    "bd09_to_gcj02_arrays",
    "bd09_to_wgs84",
    "bd09_to_wgs84_arrays",
    "gcj02_to_bd09",
    "gcj02_to_bd09_arrays",
    "gcj02_to_wgs84",
    "gcj02_to_wgs84_arrays",
    "out_of_china",
    "out_of_china_arrays",
    "wgs84_to_bd09",
    "wgs84_to_bd09_arrays",
    "wgs84_to_gcj02",
    "wgs84_to_gcj02_arrays",
]

FloatArray = npt.NDArray[np.float64]

# Krasovsky 1940 ellipsoid: GCJ-02 converts its metre offsets to degrees with these radii.
KRASOVSKY_A = 6378245.0
KRASOVSKY_EE = 0.00669342162296594323
# Baidu's angular frequency for its perturbation terms, in radians per degree.
BD_X_PI = math.pi * 3000.0 / 180.0
BD_DLON = 0.0065
BD_DLAT = 0.006

# Conventional rough box for "mainland China" (see the module docstring).
CHINA_MIN_LON = 72.004
CHINA_MAX_LON = 137.8347
CHINA_MIN_LAT = 0.8293
CHINA_MAX_LAT = 55.8271

# Stop the inverse iteration once the correction is this small (degrees, ~0.1 mm).
INVERSE_TOLERANCE_DEG = 1e-9
# Three to four steps suffice everywhere in the box; this only bounds pathological input.
INVERSE_MAX_ITERATIONS = 30

_PI = math.pi
_DEG = math.pi / 180.0
# Metres of arc -> degrees: 180 / (pi * R) with R the meridian / prime-vertical radius;
# the latitude-dependent part of each radius is applied per point.
_LAT_M_TO_DEG = 180.0 / (math.pi * KRASOVSKY_A * (1.0 - KRASOVSKY_EE))
_LON_M_TO_DEG = 180.0 / (math.pi * KRASOVSKY_A)
_sin = math.sin
_cos = math.cos
_sqrt = math.sqrt


# --------------------------------------------------------------------------- scalar


def out_of_china(lon: float, lat: float) -> bool:
    """True outside the conventional rough China box, where no offset is applied.

    NaN is "out of China" (all comparisons are false), so NaN passes through unchanged
    instead of poisoning the iteration; callers validate finiteness separately.
    """
    return not (CHINA_MIN_LON <= lon <= CHINA_MAX_LON and CHINA_MIN_LAT <= lat <= CHINA_MAX_LAT)


def _gcj_offset(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 offset (dlon, dlat) in degrees to add to a WGS-84 point.

    Written with pre-multiplied constants (the published form has ``(20 sin a + 20 sin b)
    * 2 / 3`` etc.); results agree to ~1e-15 relative, and it is the hot path.
    """
    x = lon - 105.0
    y = lat - 35.0
    xp = x * _PI
    yp = y * _PI
    # The 6x / 2x sine pair is shared by both components.
    shared = 13.333333333333334 * (_sin(6.0 * xp) + _sin(2.0 * xp))
    root = _sqrt(abs(x))
    xy = 0.1 * x * y
    north_m = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + xy
        + 0.2 * root
        + shared
        + 13.333333333333334 * _sin(yp)
        + 26.666666666666668 * _sin(yp / 3.0)
        + 106.66666666666667 * _sin(yp / 12.0)
        + 213.33333333333334 * _sin(yp / 30.0)
    )
    east_m = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + xy
        + 0.1 * root
        + shared
        + 13.333333333333334 * _sin(xp)
        + 26.666666666666668 * _sin(xp / 3.0)
        + 100.0 * _sin(xp / 12.0)
        + 200.0 * _sin(xp / 30.0)
    )
    rad = lat * _DEG
    s = _sin(rad)
    magic = 1.0 - KRASOVSKY_EE * s * s
    sqrt_magic = _sqrt(magic)
    dlat = north_m * _LAT_M_TO_DEG * magic * sqrt_magic
    dlon = east_m * _LON_M_TO_DEG * sqrt_magic / _cos(rad)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02 (identity outside the China box)."""
    if out_of_china(lon, lat):
        return lon, lat
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> WGS-84, the exact inverse of :func:`wgs84_to_gcj02` to < 1e-9°."""
    if out_of_china(lon, lat):
        return lon, lat
    return _gcj_to_wgs_inside(lon, lat)


def _gcj_to_wgs_inside(lon: float, lat: float) -> tuple[float, float]:
    """Invert the GCJ-02 offset, assuming the caller has done the China-box test.

    Starts from the classic one-step approximation ``g - offset(g)`` (metre-level) and
    refines it by fixed-point iteration on the forward offset (see the module docstring).
    """
    dlon, dlat = _gcj_offset(lon, lat)
    wlon = lon - dlon
    wlat = lat - dlat
    for _ in range(INVERSE_MAX_ITERATIONS):
        dlon, dlat = _gcj_offset(wlon, wlat)
        err_lon = wlon + dlon - lon
        err_lat = wlat + dlat - lat
        wlon -= err_lon
        wlat -= err_lat
        if abs(err_lon) < INVERSE_TOLERANCE_DEG and abs(err_lat) < INVERSE_TOLERANCE_DEG:
            break
    return wlon, wlat


def _bd_forward(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> BD-09 without the China-box test (the inverse iterates on it)."""
    z = _sqrt(lon * lon + lat * lat) + 0.00002 * _sin(lat * BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * _cos(lon * BD_X_PI)
    return z * _cos(theta) + BD_DLON, z * _sin(theta) + BD_DLAT


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> BD-09 (identity outside the China box)."""
    if out_of_china(lon, lat):
        return lon, lat
    return _bd_forward(lon, lat)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 -> GCJ-02, the exact inverse of :func:`gcj02_to_bd09` to < 1e-9°."""
    if out_of_china(lon, lat):
        return lon, lat
    return _bd_to_gcj_inside(lon, lat)


def _bd_to_gcj_inside(lon: float, lat: float) -> tuple[float, float]:
    """Invert the BD-09 map, assuming the caller has done the China-box test.

    The widely copied closed form (subtract the shift, then subtract the perturbations
    evaluated at the wrong point) is only good to ~1e-6°; it is used as the first guess.
    """
    x = lon - BD_DLON
    y = lat - BD_DLAT
    z = _sqrt(x * x + y * y) - 0.00002 * _sin(y * BD_X_PI)
    theta = math.atan2(y, x) - 0.000003 * _cos(x * BD_X_PI)
    glon = z * _cos(theta)
    glat = z * _sin(theta)
    for _ in range(INVERSE_MAX_ITERATIONS):
        blon, blat = _bd_forward(glon, glat)
        err_lon = blon - lon
        err_lat = blat - lat
        glon -= err_lon
        glat -= err_lat
        if abs(err_lon) < INVERSE_TOLERANCE_DEG and abs(err_lat) < INVERSE_TOLERANCE_DEG:
            break
    return glon, glat


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> BD-09 (via GCJ-02; identity outside the China box)."""
    if out_of_china(lon, lat):
        return lon, lat
    dlon, dlat = _gcj_offset(lon, lat)
    return _bd_forward(lon + dlon, lat + dlat)


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 -> WGS-84, exact inverse of :func:`wgs84_to_bd09` (both inverses chained).

    Like the forward direction, the box test is made once, on the input: the intermediate
    GCJ-02 point is de-obfuscated even if it happens to fall just outside the box.
    """
    if out_of_china(lon, lat):
        return lon, lat
    return _gcj_to_wgs_inside(*_bd_to_gcj_inside(lon, lat))


# --------------------------------------------------------------------------- arrays


def _as_float_arrays(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon_arr = np.asarray(lons, dtype=np.float64)
    lat_arr = np.asarray(lats, dtype=np.float64)
    if lon_arr.shape != lat_arr.shape:
        raise ValueError(f"lons and lats differ in shape: {lon_arr.shape} != {lat_arr.shape}")
    return lon_arr, lat_arr


def out_of_china_arrays(lons: npt.ArrayLike, lats: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Vectorised :func:`out_of_china` (NaN counts as out of China)."""
    lon_arr, lat_arr = _as_float_arrays(lons, lats)
    inside = (
        (lon_arr >= CHINA_MIN_LON)
        & (lon_arr <= CHINA_MAX_LON)
        & (lat_arr >= CHINA_MIN_LAT)
        & (lat_arr <= CHINA_MAX_LAT)
    )
    return ~inside


def _gcj_offset_arrays(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`_gcj_offset`, same constants and operation order."""
    x = lon - 105.0
    y = lat - 35.0
    xp = x * _PI
    yp = y * _PI
    shared = 13.333333333333334 * (np.sin(6.0 * xp) + np.sin(2.0 * xp))
    root = np.sqrt(np.abs(x))
    xy = 0.1 * x * y
    north_m = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + xy
        + 0.2 * root
        + shared
        + 13.333333333333334 * np.sin(yp)
        + 26.666666666666668 * np.sin(yp / 3.0)
        + 106.66666666666667 * np.sin(yp / 12.0)
        + 213.33333333333334 * np.sin(yp / 30.0)
    )
    east_m = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + xy
        + 0.1 * root
        + shared
        + 13.333333333333334 * np.sin(xp)
        + 26.666666666666668 * np.sin(xp / 3.0)
        + 100.0 * np.sin(xp / 12.0)
        + 200.0 * np.sin(xp / 30.0)
    )
    rad = lat * _DEG
    s = np.sin(rad)
    magic = 1.0 - KRASOVSKY_EE * s * s
    sqrt_magic = np.sqrt(magic)
    dlat = north_m * _LAT_M_TO_DEG * magic * sqrt_magic
    dlon = east_m * _LON_M_TO_DEG * sqrt_magic / np.cos(rad)
    return dlon, dlat


def _bd_forward_arrays(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * BD_X_PI)
    return z * np.cos(theta) + BD_DLON, z * np.sin(theta) + BD_DLAT


_ArrayMap = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]


def _apply_inside_china(
    lons: npt.ArrayLike, lats: npt.ArrayLike, fn: _ArrayMap
) -> tuple[FloatArray, FloatArray]:
    """Run ``fn`` on the points inside the box only; others are copied through.

    Masking (rather than computing everywhere and selecting) keeps NaN and far-away
    points out of the iteration, whose convergence test looks at the worst point.
    """
    lon_arr, lat_arr = _as_float_arrays(lons, lats)
    out_lon = lon_arr.copy()
    out_lat = lat_arr.copy()
    inside = ~out_of_china_arrays(lon_arr, lat_arr)
    if inside.any():
        new_lon, new_lat = fn(lon_arr[inside], lat_arr[inside])
        out_lon[inside] = new_lon
        out_lat[inside] = new_lat
    return out_lon, out_lat


def _invert_arrays(
    forward: _ArrayMap,
    target_lon: FloatArray,
    target_lat: FloatArray,
    guess: tuple[FloatArray, FloatArray],
) -> tuple[FloatArray, FloatArray]:
    """Fixed-point inverse of ``forward`` for whole arrays (see the module docstring)."""
    lon, lat = guess
    for _ in range(INVERSE_MAX_ITERATIONS):
        f_lon, f_lat = forward(lon, lat)
        err_lon = f_lon - target_lon
        err_lat = f_lat - target_lat
        lon = lon - err_lon
        lat = lat - err_lat
        worst = max(float(np.max(np.abs(err_lon))), float(np.max(np.abs(err_lat))))
        if worst < INVERSE_TOLERANCE_DEG:
            break
    return lon, lat


def _wgs_to_gcj_inside_arrays(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_offset_arrays(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_to_wgs_inside_arrays(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_offset_arrays(lon, lat)
    return _invert_arrays(_wgs_to_gcj_inside_arrays, lon, lat, (lon - dlon, lat - dlat))


def _bd_to_gcj_inside_arrays(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    x = lon - BD_DLON
    y = lat - BD_DLAT
    z = np.hypot(x, y) - 0.00002 * np.sin(y * BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * BD_X_PI)
    return _invert_arrays(_bd_forward_arrays, lon, lat, (z * np.cos(theta), z * np.sin(theta)))


def _wgs_to_bd_inside_arrays(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _bd_forward_arrays(*_wgs_to_gcj_inside_arrays(lon, lat))


def _bd_to_wgs_inside_arrays(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj_to_wgs_inside_arrays(*_bd_to_gcj_inside_arrays(lon, lat))


def wgs84_to_gcj02_arrays(
    lons: npt.ArrayLike, lats: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`wgs84_to_gcj02`; returns new arrays."""
    return _apply_inside_china(lons, lats, _wgs_to_gcj_inside_arrays)


def gcj02_to_wgs84_arrays(
    lons: npt.ArrayLike, lats: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`gcj02_to_wgs84`; returns new arrays."""
    return _apply_inside_china(lons, lats, _gcj_to_wgs_inside_arrays)


def gcj02_to_bd09_arrays(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`gcj02_to_bd09`; returns new arrays."""
    return _apply_inside_china(lons, lats, _bd_forward_arrays)


def bd09_to_gcj02_arrays(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`bd09_to_gcj02`; returns new arrays."""
    return _apply_inside_china(lons, lats, _bd_to_gcj_inside_arrays)


def wgs84_to_bd09_arrays(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`wgs84_to_bd09`; returns new arrays."""
    return _apply_inside_china(lons, lats, _wgs_to_bd_inside_arrays)


def bd09_to_wgs84_arrays(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`bd09_to_wgs84`; returns new arrays."""
    return _apply_inside_china(lons, lats, _bd_to_wgs_inside_arrays)
