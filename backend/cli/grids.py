"""``xuncha grids``: import, versions, list, export, activate, match."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from backend.cli.common import (
    cli_actor,
    console,
    err_console,
    fail,
    one_line_errors,
    refuse_to_overwrite,
    runtime_for,
    settings_from_env,
    stage_progress,
)
from backend.core.db import transaction
from backend.core.params import DB_ID_MAX
from backend.geo.crs import LocationCRS
from backend.grids import importer, repository, service
from backend.grids.codes import GridCodeScheme
from backend.grids.export import write_cells
from backend.grids.repository import CellFilter

app = typer.Typer(no_args_is_help=True)
VersionOpt = Annotated[
    int | None, typer.Option(help="Version (default: active)", min=1, max=DB_ID_MAX)
]


@app.command("import")
@one_line_errors
def import_(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Grid file")],
    crs: Annotated[
        str | None,
        typer.Option(help="Source system: EPSG:<n> (4326, 4490, 4547...), gcj02 or bd09"),
    ] = None,
    layer: Annotated[str | None, typer.Option(help="Layer (GeoPackage, KML, zip)")] = None,
    field: Annotated[
        list[str] | None, typer.Option(help="Column mapping, repeatable: --field code=WGBM")
    ] = None,
    invalid: Annotated[
        str, typer.Option(help="Invalid polygons: repair (make_valid) or refuse")
    ] = "repair",
    activate: Annotated[bool, typer.Option(help="Make the new version active")] = False,
    label: Annotated[str | None, typer.Option(help="Version label")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the full report as JSON")] = None,
) -> None:
    """Import a grid file (GeoJSON, zipped Shapefile, GeoPackage, KML) as a new version."""
    if invalid not in ("repair", "refuse"):
        fail("--invalid must be repair or refuse")
    mapping = {}
    for pair in field or []:
        ours, sep, theirs = pair.partition("=")
        if not sep:
            fail(f"--field {pair!r} must look like code=WGBM")
        mapping[ours.strip()] = theirs.strip()
    settings = settings_from_env()
    options = importer.ImportOptions(
        crs=crs,
        layer=layer,
        field_map=mapping,
        invalid=invalid,  # type: ignore[arg-type]
        label=label,
        activate=activate,
        actor="cli",
        overlap_tolerance_m2=settings.grid_overlap_tolerance_m2,
        gap_tolerance_m2=settings.grid_gap_tolerance_m2,
    )
    with (
        runtime_for(settings) as runtime,
        stage_progress(f"importing {path.name}") as step,
        transaction(runtime.sessions) as session,
    ):
        result = importer.import_grid_file(
            session, path, options, GridCodeScheme(settings.grid_code_pattern), progress=step
        )
        version_id, active = result.version.id, result.version.is_active
        if report is not None:
            # Inside the transaction: if the report cannot be written, nothing is imported,
            # so a retry does not leave a duplicate version behind.
            report.write_text(json.dumps(result.report, ensure_ascii=False, indent=2), "utf-8")
    _print_report(result.report)
    state = "active" if active else f"inactive — activate with `xuncha grids activate {version_id}`"
    console.print(f"[bold green]imported version {version_id}[/] ({state})", highlight=False)


def _print_report(report: dict[str, object]) -> None:
    table = Table("check", "result", title="import report", title_justify="left")
    table.add_row(
        "grids",
        f"{report['grid_count']} in {report['community_count']} communities, "
        f"{report['street_count']} streets, {report['district_count']} districts",
    )
    table.add_row("source system", str(report["source_crs"]))
    table.add_row("total area", f"{float(report['total_area_m2']) / 1e6:.3f} km²")  # type: ignore[arg-type]
    table.add_row("zone tiers", ", ".join(f"{k}: {v}" for k, v in report["zone_tiers"].items()))  # type: ignore[attr-defined]
    table.add_row(
        "invalid polygons", f"{report['invalid_polygon_count']} ({report['invalid_polygon_mode']})"
    )
    table.add_row("overlaps", f"{report['overlap_count']} totalling {report['overlap_area_m2']} m²")
    table.add_row("gaps", f"{report['gap_count']} totalling {report['gap_area_m2']} m²")
    console.print(table)
    for overlap in report["overlaps"][:10]:  # type: ignore[index]
        console.print(
            f"  overlap {overlap['code_a']} × {overlap['code_b']}: {overlap['area_m2']} m²"
        )
    for gap in report["gaps"][:10]:  # type: ignore[index]
        console.print(
            f"  gap of {gap['area_m2']} m² at {gap['lon']},{gap['lat']} "
            f"between {', '.join(gap['neighbour_codes'])}"
        )


@app.command("versions")
@one_line_errors
def versions() -> None:
    """List grid versions; the active one is marked."""
    with runtime_for(settings_from_env()) as runtime, transaction(runtime.sessions) as session:
        table = Table("id", "active", "label", "grids", "area km²", "source", "created")
        for v in repository.list_versions(session):
            table.add_row(
                str(v.id),
                "✓" if v.is_active else "",
                v.label,
                str(v.cell_count),
                f"{v.total_area_m2 / 1e6:.3f}",
                f"{v.source_format} {v.source_crs}",
                v.created_at.strftime("%Y-%m-%d %H:%M"),
            )
        console.print(table)


@app.command("list")
@one_line_errors
def list_(
    version: VersionOpt = None,
    parent: Annotated[str | None, typer.Option(help="District, street or community code")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
) -> None:
    """List grids of a version, by code."""
    with runtime_for(settings_from_env()) as runtime, transaction(runtime.sessions) as session:
        version_id = service.resolve_version_id(session, version)
        cells, more = service.list_cells(
            session, CellFilter(version_id=version_id, parent_code=parent, limit=limit)
        )
        table = Table("code", "name", "community", "zone", "area m²")
        for c in cells:
            table.add_row(
                c.code,
                c.name,
                c.community_name or c.community_code,
                c.zone_tier or "",
                f"{c.area_m2:.0f}",
            )
        console.print(table)
        if more:
            err_console.print(f"(first {limit} shown; raise --limit for more)")


@app.command("export")
@one_line_errors
def export(
    output: Annotated[Path, typer.Argument(help="Output file (.geojson or .gpkg)")],
    version: VersionOpt = None,
    parent: Annotated[str | None, typer.Option(help="District, street or community code")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file")] = False,
) -> None:
    """Export a version's grids (WGS-84) as GeoJSON or GeoPackage."""
    fmt: Literal["geojson", "gpkg"]
    if output.suffix.lower() in (".geojson", ".json"):
        fmt = "geojson"
    elif output.suffix.lower() == ".gpkg":
        fmt = "gpkg"
    else:
        fail("output must end in .geojson or .gpkg")
    if output.is_dir():
        fail(f"{output} is a directory")
    refuse_to_overwrite(output, overwrite)
    with runtime_for(settings_from_env()) as runtime, transaction(runtime.sessions) as session:
        version_id = service.resolve_version_id(session, version)
        total = repository.count_cells(session, version_id)
        flt = CellFilter(version_id=version_id, parent_code=parent)
        with Progress(
            *Progress.get_default_columns()[:1],
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
        ) as progress:
            task = progress.add_task("exporting", total=total)
            written = write_cells(
                output,
                fmt,
                repository.iter_cells(session, flt),
                on_cell=lambda: progress.advance(task),
            )
    console.print(f"wrote {written} grids of version {version_id} to {output}")


@app.command("activate")
@one_line_errors
def activate(
    version: Annotated[int, typer.Argument(help="Version id", min=1, max=DB_ID_MAX)],
) -> None:
    """Make a version the active one (atomically)."""
    with runtime_for(settings_from_env()) as runtime, transaction(runtime.sessions) as session:
        activated = service.activate_version(session, version, cli_actor())
        console.print(f"version {activated.id} ({activated.label}) is now active")


@app.command("match")
@one_line_errors
def match(
    lon: float,
    lat: float,
    crs: Annotated[LocationCRS, typer.Option(help="System of the coordinates")],
    accuracy: Annotated[float | None, typer.Option(help="Accuracy in metres", min=0)] = None,
) -> None:
    """Which grid of the active version a location falls in."""
    with runtime_for(settings_from_env()) as runtime, transaction(runtime.sessions) as session:
        found = service.match_location(
            session,
            runtime.grid_indexes,
            lon,
            lat,
            crs,
            accuracy,
            poor_accuracy_m=runtime.settings.location_poor_accuracy_m,
        )
        m = found.match
        console.print(
            f"{m.kind.value}: {m.grid_code or '-'} (candidates {', '.join(m.candidates) or '-'}; "
            f"distance {m.distance_m if m.distance_m is not None else '-'} m; "
            f"wgs84 {found.lon:.7f},{found.lat:.7f}; version {m.grid_version_id}; "
            f"flags {', '.join(found.flags) or '-'})",
            highlight=False,
        )
