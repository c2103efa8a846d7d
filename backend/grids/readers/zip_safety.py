"""Open an uploaded zip safely and decide which member GDAL should read.

Uploads are untrusted, so the archive is inspected with Python's :mod:`zipfile` before
GDAL sees it: path traversal, zip bombs (declared *and* actually inflated sizes), too
many entries, encrypted or damaged members are all refused with a stable error. Only then
is the chosen Shapefile (or the KML of a KMZ) handed to GDAL as a ``/vsizip/`` path, so
nothing is extracted to disk. Choosing among several Shapefiles in one zip, and reading
the ``.cpg``/``.dbf`` bytes needed to pick the DBF encoding, happen here too.
"""

from __future__ import annotations

import lzma
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from backend.core.errors import XunchaError
from backend.grids.readers import limits
from backend.grids.readers.dbf_encoding import choose_dbf_encoding
from backend.grids.readers.errors import (
    GridFileFormatUnsupported,
    GridFileLayerAmbiguous,
    GridFileLayerNotFound,
    GridFileTooLarge,
    GridFileUnreadable,
)

# Enough DBF records to see non-ASCII text in practice without reading a huge file twice.
_DBF_SAMPLE_BYTES = 4 << 20


@dataclass(frozen=True)
class _ZipSource:
    format: str  # "shapefile" | "kml"
    gdal_path: str  # /vsizip/{...}/member
    layer: str
    encoding: str | None = None


# What zipfile raises for damaged (including the decompressors' own errors), encrypted
# (RuntimeError) or exotic-compression (NotImplementedError) members.
_ZIP_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


def _display_name(info: zipfile.ZipInfo) -> str:
    """Human name of a zip entry.

    Zips made by Windows' Chinese-locale tools store GBK names without the UTF-8 flag;
    zipfile (and GDAL) decode those as CP437. We keep that form for addressing the
    entry and show the GBK reading to people.
    """
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


@contextmanager
def _open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        zf = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise GridFileUnreadable(f"{path.name} is not a readable zip archive") from exc
    try:
        yield zf
    finally:
        zf.close()


def _safe_entries(zf: zipfile.ZipFile, name: str) -> list[zipfile.ZipInfo]:
    """Validate the whole archive and return the entries worth looking at."""
    infos = zf.infolist()
    if len(infos) > limits.MAX_ZIP_ENTRIES:
        raise GridFileTooLarge(
            f"{name} has {len(infos)} entries; the limit is {limits.MAX_ZIP_ENTRIES}",
            limit_entries=limits.MAX_ZIP_ENTRIES,
        )
    total = 0
    for info in infos:
        entry = info.filename.replace("\\", "/")
        parts = PurePosixPath(entry).parts
        if (
            entry.startswith("/")
            or re.match(r"^[A-Za-z]:", entry)
            or ".." in parts
            or "\x00" in entry
        ):
            raise GridFileUnreadable(
                f"{name} contains an unsafe entry path {_display_name(info)!r}",
                reason="unsafe_zip_entry",
            )
        total += info.file_size
        # The declared sizes are only a first line of defence; _verify_members
        # re-checks the bytes that are actually inflated.
        if total > limits.MAX_UNCOMPRESSED_BYTES:
            raise GridFileTooLarge(
                f"{name} expands to more than {limits.MAX_UNCOMPRESSED_BYTES} bytes",
                limit_bytes=limits.MAX_UNCOMPRESSED_BYTES,
            )
    return [i for i in infos if not i.is_dir() and not _is_junk(i.filename)]


def _is_junk(entry: str) -> bool:
    # macOS Finder adds __MACOSX/._name.shp twins that would make every zip "ambiguous".
    base = entry.replace("\\", "/").rsplit("/", 1)[-1]
    return entry.startswith("__MACOSX/") or base.startswith("._") or base in {".DS_Store"}


def _split_ext(entry: str) -> tuple[str, str]:
    stem, dot, ext = entry.rpartition(".")
    return (stem, "." + ext.lower()) if dot else (entry, "")


def _basename(entry: str) -> str:
    return entry.replace("\\", "/").rsplit("/", 1)[-1]


def _plan_zip(path: Path, zf: zipfile.ZipFile, layer: str | None) -> _ZipSource:
    entries = _safe_entries(zf, path.name)
    by_stem: dict[str, dict[str, zipfile.ZipInfo]] = {}
    for info in entries:
        stem, ext = _split_ext(info.filename)
        by_stem.setdefault(stem, {})[ext] = info
    shapefiles = {stem: exts for stem, exts in by_stem.items() if ".shp" in exts}
    if shapefiles:
        stem = _choose_shapefile(shapefiles, layer, path.name)
        return _plan_shapefile(path, zf, stem, shapefiles[stem])
    kmls = [i for i in entries if _split_ext(i.filename)[1] == ".kml"]
    if kmls:
        # KMZ: by convention the first root-level .kml (usually doc.kml) is the document.
        root = [i for i in kmls if "/" not in i.filename.replace("\\", "/")] or kmls
        main = root[0]
        _verify_members(zf, [main], path.name)
        return _ZipSource(
            format="kml",
            gdal_path=_vsizip(path, main.filename),
            layer=_display_name(main),
        )
    listing = sorted(_display_name(i) for i in entries)[:20]
    raise GridFileFormatUnsupported(
        f"{path.name} contains no Shapefile (.shp) or KML; a grid zip must hold "
        ".shp + .shx + .dbf (+ .prj, .cpg)",
        detected="zip",
        entries=listing,
    )


def _choose_shapefile(
    shapefiles: dict[str, dict[str, zipfile.ZipInfo]], layer: str | None, name: str
) -> str:
    labels = {stem: _split_ext(_display_name(exts[".shp"]))[0] for stem, exts in shapefiles.items()}
    names = sorted(_basename(label) for label in labels.values())
    if layer is None:
        if len(shapefiles) == 1:
            return next(iter(shapefiles))
        raise GridFileLayerAmbiguous(
            f"{name} contains {len(shapefiles)} Shapefiles; choose one of: {', '.join(names)}",
            layers=names,
        )
    wanted = layer.removesuffix(".shp").removesuffix(".SHP")
    for match_on in (lambda s: (s, labels[s]), lambda s: (_basename(s), _basename(labels[s]))):
        hits = [stem for stem in shapefiles if wanted in match_on(stem)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            paths = sorted(labels[h] for h in hits)
            raise GridFileLayerAmbiguous(
                f"{name} has several Shapefiles named {layer!r}; use the full path: "
                f"{', '.join(paths)}",
                layers=paths,
            )
    raise GridFileLayerNotFound(
        f"{name} has no Shapefile named {layer!r}; available: {', '.join(names)}",
        layers=names,
    )


def _plan_shapefile(
    path: Path, zf: zipfile.ZipFile, stem: str, exts: dict[str, zipfile.ZipInfo]
) -> _ZipSource:
    label = _basename(_split_ext(_display_name(exts[".shp"]))[0])
    missing = [ext for ext in (".shx", ".dbf") if ext not in exts]
    if missing:
        raise GridFileUnreadable(
            f"the Shapefile {label} in {path.name} is incomplete: missing "
            f"{' and '.join(label + ext for ext in missing)}",
            missing=[label + ext for ext in missing],
        )
    members = [exts[ext] for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg") if ext in exts]
    _verify_members(zf, members, path.name)
    cpg = _read_member(zf, exts[".cpg"], 256) if ".cpg" in exts else None
    dbf_head = _read_member(zf, exts[".dbf"], _DBF_SAMPLE_BYTES)
    return _ZipSource(
        format="shapefile",
        gdal_path=_vsizip(path, exts[".shp"].filename),
        layer=label,
        encoding=choose_dbf_encoding(dbf_head, cpg),
    )


def _vsizip(path: Path, member: str) -> str:
    # The {…} form lets GDAL open archives whose name does not end in .zip.
    return f"/vsizip/{{{path.resolve()}}}/{member}"


def _verify_members(zf: zipfile.ZipFile, members: Sequence[zipfile.ZipInfo], name: str) -> None:
    """Inflate the members GDAL will read, enforcing CRCs and the size cap.

    zipfile stops at each member's declared size and checks its CRC, so a member whose
    header under-states its size (the classic bomb) or whose data is damaged fails here
    instead of inside GDAL.
    """
    budget = limits.MAX_UNCOMPRESSED_BYTES
    for info in members:
        if info.flag_bits & 0x1:
            raise GridFileUnreadable(f"{name} is password-protected", reason="encrypted_zip")
        try:
            with zf.open(info) as fh:
                while chunk := fh.read(1 << 20):
                    budget -= len(chunk)
                    if budget < 0:
                        raise GridFileTooLarge(
                            f"{name} expands to more than {limits.MAX_UNCOMPRESSED_BYTES} bytes",
                            limit_bytes=limits.MAX_UNCOMPRESSED_BYTES,
                        )
        except XunchaError:
            raise
        except _ZIP_ERRORS as exc:
            raise GridFileUnreadable(
                f"{_display_name(info)} in {name} is damaged or uses an unsupported "
                "zip compression method"
            ) from exc


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    try:
        with zf.open(info) as fh:
            return fh.read(limit)
    except _ZIP_ERRORS as exc:
        raise GridFileUnreadable(f"{_display_name(info)} cannot be read from the zip") from exc
