"""Importing a city's grid file as a new grid version.

Everything is checked before anything is written, and the writes happen in the caller's one
transaction, so a bad file changes nothing. The report (invalid polygons and their repair,
overlaps and gaps between neighbours, counts) is returned and stored on the version.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import shapely
from sqlalchemy.orm import Session

from backend.core.errors import InvalidInput
from backend.core.geometry import bounds_columns_values
from backend.geo.crs import (
    SourceCRS,
    detect_crs_from_wkt_or_authority,
    parse_source_crs,
)
from backend.geo.metric import geodesic_area_m2
from backend.grids import repository
from backend.grids.codes import GridCodeScheme
from backend.grids.feature_mapping import (
    FeatureProblem,
    MappedGrid,
    UnknownFieldName,
    map_features,
)
from backend.grids.models import GridVersion
from backend.grids.quality import find_gaps, find_overlaps, repair_polygons
from backend.grids.readers import SourceDataset, read_grid_file
from backend.grids.service import activate_version

REPORT_LIST_LIMIT = 500
Progress = Callable[[str], None]


class GridImportRejected(InvalidInput):
    code = "grid_import_rejected"
    title = "The grid file was refused; nothing was imported"


class SourceCRSRequired(InvalidInput):
    code = "source_crs_required"
    title = "The grid file's coordinate system must be declared"


@dataclass(frozen=True)
class ImportOptions:
    crs: str | None = None
    layer: str | None = None
    field_map: Mapping[str, str] = field(default_factory=dict)
    invalid: Literal["repair", "refuse"] = "repair"
    label: str | None = None
    activate: bool = False
    actor: str | None = None
    overlap_tolerance_m2: float = 1.0
    gap_tolerance_m2: float = 1.0


@dataclass
class ImportResult:
    version: GridVersion
    report: dict[str, Any]


def import_grid_file(
    session: Session,
    path: Path,
    options: ImportOptions,
    scheme: GridCodeScheme,
    *,
    original_name: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Read, validate, normalise and store ``path`` as a new (optionally active) version."""
    step = progress or (lambda _stage: None)
    name = original_name or path.name
    step("reading file")
    dataset = read_grid_file(path, layer=options.layer)
    source_crs = _source_crs(dataset, options)
    step("checking attributes")
    grids = _mapped_grids(dataset, options, scheme)
    step("converting coordinates")
    geoms = _normalised_geometries(dataset, grids, source_crs)
    step("checking polygons")
    codes = [g.code for g in grids]
    polygons, invalid = repair_polygons(geoms, codes, mode=options.invalid)
    step("measuring areas")
    areas = [geodesic_area_m2(p) for p in polygons]
    step("finding overlaps")
    overlaps = find_overlaps(polygons, codes, min_area_m2=options.overlap_tolerance_m2)
    step("finding gaps")
    gaps = find_gaps(polygons, codes, min_area_m2=options.gap_tolerance_m2)
    report = _report(dataset, source_crs, grids, areas, invalid, overlaps, gaps, options)
    step("writing grids")
    version = repository.add_version(
        session,
        GridVersion(
            # Column widths: a long upload name must not turn into a database error.
            label=(options.label or f"{name} ({source_crs.name})")[:200],
            source_filename=name[-300:],
            source_format=dataset.format,
            source_crs=source_crs.name,
            source_sha256=_sha256(path),
            cell_count=len(grids),
            total_area_m2=float(sum(areas)),
            report=report,
            is_active=False,
            created_by=options.actor,
        ),
    )
    repository.insert_cells(
        session,
        (
            _cell_row(version.id, grid, polygon, area)
            for grid, polygon, area in zip(grids, polygons, areas, strict=True)
        ),
    )
    if options.activate:
        activate_version(session, version.id)
    return ImportResult(version=version, report=report)


def _source_crs(dataset: SourceDataset, options: ImportOptions) -> SourceCRS:
    # A declaration on import wins over the file's own label: files scraped from AMap are
    # GCJ-02 while labelled WGS-84, and only the person importing knows that.
    if options.crs:
        return parse_source_crs(options.crs)
    if dataset.format == "kml":
        return parse_source_crs("EPSG:4326")  # KML is WGS-84 by definition
    detected = detect_crs_from_wkt_or_authority(dataset.declared_crs)
    if detected is None:
        raise SourceCRSRequired(
            "the file does not declare a coordinate system that can be identified"
            + (f" ({dataset.declared_crs[:80]}...)" if dataset.declared_crs else "")
            + "; declare it, e.g. --crs EPSG:4490, --crs EPSG:4547 or --crs gcj02"
        )
    return parse_source_crs(detected)


def _mapped_grids(
    dataset: SourceDataset, options: ImportOptions, scheme: GridCodeScheme
) -> list[MappedGrid]:
    columns = sorted({k for f in dataset.features for k in f.properties})
    try:
        mapping = map_features(
            ((f.index, f.properties) for f in dataset.features), columns, options.field_map, scheme
        )
    except UnknownFieldName as exc:
        raise InvalidInput(str(exc)) from exc
    problems = list(mapping.problems)
    if not dataset.features:
        problems.append(FeatureProblem("empty_file", "the file holds no features"))
    for feature in dataset.features:
        if feature.geometry is None or feature.geometry.is_empty:
            problems.append(
                FeatureProblem("missing_geometry", "feature has no geometry", feature.index)
            )
    _reject_if(problems)
    return mapping.grids


def _normalised_geometries(
    dataset: SourceDataset, grids: list[MappedGrid], source_crs: SourceCRS
) -> list[shapely.Geometry]:
    by_index = {f.index: f.geometry for f in dataset.features}
    out: list[shapely.Geometry] = []
    problems: list[FeatureProblem] = []
    for grid in grids:
        try:
            out.append(source_crs.to_wgs84_geometry(by_index[grid.feature]))
        except InvalidInput as exc:
            problems.append(FeatureProblem(exc.code, exc.detail, grid.feature, grid.code))
            if len(problems) >= 20:
                break
    _reject_if(problems)
    return out


def _reject_if(problems: list[FeatureProblem]) -> None:
    if not problems:
        return
    counts = Counter(p.code for p in problems)
    summary = ", ".join(f"{n} × {code}" for code, n in counts.most_common())
    first = problems[0]
    where = f"feature {first.feature}: " if first.feature is not None else ""
    raise GridImportRejected(
        f"{len(problems)} problem(s) ({summary}); first: {where}{first.message}",
        problems=[p.as_dict() for p in problems[:REPORT_LIST_LIMIT]],
    )


def _cell_row(
    version_id: int, grid: MappedGrid, polygon: shapely.Geometry, area: float
) -> dict[str, Any]:
    return {
        "version_id": version_id,
        "code": grid.code,
        "name": grid.name,
        "district_code": grid.district_code,
        "street_code": grid.street_code,
        "community_code": grid.community_code,
        "district_name": grid.district_name,
        "street_name": grid.street_name,
        "community_name": grid.community_name,
        "zone_tier": grid.zone_tier.value if grid.zone_tier else None,
        "area_m2": area,
        "geom": polygon,
        "properties": grid.extra,
        **bounds_columns_values(polygon),
    }


def _report(
    dataset: SourceDataset,
    source_crs: SourceCRS,
    grids: list[MappedGrid],
    areas: list[float],
    invalid: list[Any],
    overlaps: list[Any],
    gaps: list[Any],
    options: ImportOptions,
) -> dict[str, Any]:
    tiers = Counter(g.zone_tier.value if g.zone_tier else "unset" for g in grids)
    return {
        "format": dataset.format,
        "layer": dataset.layer,
        "source_crs": source_crs.name,
        "file_declared_crs": (dataset.declared_crs or "")[:200] or None,
        "grid_count": len(grids),
        "district_count": len({g.district_code for g in grids}),
        "street_count": len({g.street_code for g in grids}),
        "community_count": len({g.community_code for g in grids}),
        "zone_tiers": dict(sorted(tiers.items())),
        "total_area_m2": round(sum(areas), 1),
        "invalid_polygon_mode": options.invalid,
        "tolerances": {
            "overlap_m2": options.overlap_tolerance_m2,
            "gap_m2": options.gap_tolerance_m2,
        },
        "invalid_polygons": [
            {"code": p.code, "reason": p.reason, "repaired": p.repaired}
            for p in invalid[:REPORT_LIST_LIMIT]
        ],
        "invalid_polygon_count": len(invalid),
        "overlaps": [
            {"code_a": o.code_a, "code_b": o.code_b, "area_m2": round(o.area_m2, 2)}
            for o in overlaps[:REPORT_LIST_LIMIT]
        ],
        "overlap_count": len(overlaps),
        "overlap_area_m2": round(sum(o.area_m2 for o in overlaps), 2),
        "gaps": [
            {
                "area_m2": round(g.area_m2, 2),
                "neighbour_codes": list(g.neighbour_codes),
                "lon": round(g.representative_lon, 7),
                "lat": round(g.representative_lat, 7),
            }
            for g in gaps[:REPORT_LIST_LIMIT]
        ],
        "gap_count": len(gaps),
        "gap_area_m2": round(sum(g.area_m2 for g in gaps), 2),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
