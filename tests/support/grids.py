"""Synthetic grid sets for tests: exact tilings, with optional overlaps, gaps and odd shapes."""

from __future__ import annotations

import shapely
from sqlalchemy.orm import Session

from backend.core.geometry import bounds_columns_values
from backend.demo.city import jittered_lattice, lattice_ring
from backend.geo.metric import geodesic_area_m2
from backend.grids import repository
from backend.grids.models import GridVersion


def lattice_grids(
    cols: int,
    rows: int,
    *,
    origin: tuple[float, float] = (120.0, 30.0),
    cell_m: float = 100.0,
    jitter_m: float = 12.0,
    seed: int = 7,
    district: str = "330106",
) -> tuple[list[str], list[shapely.MultiPolygon]]:
    """A ``cols`` × ``rows`` tiling with GB/T 30428.1-shaped codes (one community per row)."""
    lattice = jittered_lattice(origin[0], origin[1], cols, rows, cell_m, jitter_m, seed)
    codes, geoms = [], []
    for row in range(rows):
        for col in range(cols):
            street, community = 1 + row // 100, 1 + row % 100
            codes.append(f"{district}{street:03d}{community:03d}{col + 1:03d}")
            geoms.append(shapely.MultiPolygon([shapely.Polygon(lattice_ring(lattice, col, row))]))
    return codes, geoms


def geojson_bytes(
    codes: list[str],
    geoms: list[shapely.Geometry],
    *,
    properties: dict[str, dict[str, object]] | None = None,
    code_field: str = "code",
) -> bytes:
    """A GeoJSON FeatureCollection of the grids (names and tiers derived from codes)."""
    import json

    features = []
    for code, geom in zip(codes, geoms, strict=True):
        props: dict[str, object] = {code_field: code, "name": f"网格 {code}"}
        props.update((properties or {}).get(code, {}))
        features.append(
            {
                "type": "Feature",
                "properties": props,
                "geometry": json.loads(shapely.to_geojson(geom)),
            }
        )
    return json.dumps(
        {"type": "FeatureCollection", "features": features}, ensure_ascii=False
    ).encode()


def store_version(session: Session, codes: list[str], geoms: list[shapely.Geometry]) -> int:
    """Store a grid set as a (non-active) version directly, bypassing the file importer."""
    version = repository.add_version(
        session,
        GridVersion(
            label="synthetic",
            source_filename="synthetic",
            source_format="geojson",
            source_crs="EPSG:4490",
            source_sha256="0" * 64,
            cell_count=len(codes),
            total_area_m2=0.0,
            report={},
        ),
    )
    repository.insert_cells(
        session,
        (
            {
                "version_id": version.id,
                "code": code,
                "name": code,
                "district_code": code[:6],
                "street_code": code[:9],
                "community_code": code[:12],
                "area_m2": geodesic_area_m2(geom),
                "geom": geom,
                "properties": {},
                **bounds_columns_values(geom),
            }
            for code, geom in zip(codes, geoms, strict=True)
        ),
    )
    return version.id
