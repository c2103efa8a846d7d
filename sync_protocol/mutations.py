"""The mutations a phone may send, and the validation of their arguments (section 4.1).

Arguments are checked here, once, for server and client alike, and returned as typed frozen
dataclasses so the server never handles an unchecked dict. A failure raises
:class:`MutationArgsError`, which the server answers with a per-mutation ``rejected`` result:
a mutation that can never apply must not block the ones after it, so argument errors are never
whole-request errors.

Deliberately *not* checked: whether ``captured_at`` or ``fix_time`` are plausible. They come
from the device clock, which may be days off; refusing them would strand a real report.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Self

from sync_protocol._decode import Fields, check_str
from sync_protocol.errors import ProtocolError
from sync_protocol.timefmt import format_rfc3339, parse_rfc3339

CRS_VALUES = ("wgs84", "gcj02", "bd09", "cgcs2000")
PROVIDERS = ("gps", "network", "fused", "manual", "other")
PHOTO_CONTENT_TYPES = ("image/jpeg", "image/heic", "image/heif", "image/png", "image/webp")
MAX_PHOTOS = 20
MAX_PHOTO_BYTES = 50_000_000
MAX_DESCRIPTION = 2000
MAX_ADDRESS = 500
MAX_ACCURACY_M = 100_000.0
# The fields a phone may set on a report; everything else is the server's.
CLIENT_FIELDS = ("category_code", "description", "address", "location")
# Fields the command centre owns: tolerated in report.update, never applied, reported back as
# ``ignored_fields`` so the app learns its change did not stick (section 4.3).
SERVER_OWNED_FIELDS = frozenset({"status", "assignee"})
# Arguments nest (location inside changes inside args); anything deeper is not ours.
_MAX_DEPTH = 8
_CATEGORY_RE = re.compile(r"[0-9]{2,6}", re.ASCII)
_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)


class MutationArgsError(ProtocolError):
    """``unknown_mutation`` or ``invalid_args``: the mutation is rejected, the batch goes on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def _invalid(message: str) -> MutationArgsError:
    return MutationArgsError("invalid_args", message)


def _refuse_nul(value: object, path: str, depth: int = 0) -> None:
    """NUL is refused anywhere, keys included: PostgreSQL text and jsonb cannot store it."""
    if depth > _MAX_DEPTH:
        raise _invalid(f"{path}: nested too deeply")
    if isinstance(value, str):
        if "\x00" in value:
            raise _invalid(f"{path}: NUL characters are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, f"{path} (key)", depth + 1)
            _refuse_nul(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(item, f"{path}[{index}]", depth + 1)


def _time(fields: Fields, key: str) -> datetime:
    text = fields.text(key, min_len=1, max_len=40)
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise _invalid(f"{fields.path(key)}: {exc}") from None


@dataclass(frozen=True)
class Location:
    """A device fix exactly as reported; the server normalises it to WGS-84 itself.

    ``fix_time`` keeps the device's offset; equality compares instants, so the same fix
    rendered in another zone is the same value (not a conflict).
    """

    lon: float
    lat: float
    crs: str
    accuracy_m: float
    fix_time: datetime
    provider: str

    @classmethod
    def from_json(cls, obj: object, path: str = "location") -> Self:
        f = Fields(obj, path, _invalid)
        location = cls(
            lon=f.number("lon", lo=-180.0, hi=180.0),
            lat=f.number("lat", lo=-90.0, hi=90.0),
            crs=f.choice("crs", CRS_VALUES),
            accuracy_m=f.number("accuracy_m", lo=0.0, hi=MAX_ACCURACY_M),
            fix_time=_time(f, "fix_time"),
            provider=f.choice("provider", PROVIDERS),
        )
        f.finish()
        return location

    def to_json(self) -> dict[str, object]:
        return {
            "lon": self.lon,
            "lat": self.lat,
            "crs": self.crs,
            "accuracy_m": self.accuracy_m,
            "fix_time": format_rfc3339(self.fix_time),
            "provider": self.provider,
        }


@dataclass(frozen=True)
class PhotoDecl:
    """A photo the report declares; its bytes are uploaded separately and checked by hash."""

    photo_id: str
    sha256: str
    size: int
    content_type: str

    @classmethod
    def from_json(cls, obj: object, path: str) -> Self:
        f = Fields(obj, path, _invalid)
        photo = cls(
            photo_id=f.uuid("photo_id"),
            sha256=f.text("sha256", min_len=64, max_len=64),
            size=f.integer("size", lo=1, hi=MAX_PHOTO_BYTES),
            content_type=f.choice("content_type", PHOTO_CONTENT_TYPES),
        )
        if _SHA256_RE.fullmatch(photo.sha256) is None:
            raise _invalid(f"{f.path('sha256')}: expected 64 lower-case hex digits")
        f.finish()
        return photo

    def to_json(self) -> dict[str, object]:
        return {
            "photo_id": self.photo_id,
            "sha256": self.sha256,
            "size": self.size,
            "content_type": self.content_type,
        }


def _category(value: object, path: str) -> str:
    if not isinstance(value, str) or _CATEGORY_RE.fullmatch(value) is None:
        raise _invalid(f"{path}: expected 2-6 digits (GB/T 30428.2)")
    return value


def _description(value: object, path: str) -> str:
    return check_str(value, path, _invalid, 1, MAX_DESCRIPTION, True)


def _address(value: object, path: str) -> str:
    return check_str(value, path, _invalid, 0, MAX_ADDRESS, True)


def _photos(f: Fields, *, required: bool) -> tuple[PhotoDecl, ...]:
    """``args.photos``: declarations with distinct ids (at least one when ``required``)."""
    photos = tuple(
        PhotoDecl.from_json(item, f"args.photos[{i}]")
        for i, item in enumerate(f.array("photos", max_items=MAX_PHOTOS))
    )
    if required and not photos:
        raise _invalid("args.photos: at least one photo")
    if len({p.photo_id for p in photos}) != len(photos):
        raise _invalid("args.photos: photo_id values must be unique")
    return photos


def _instant_digest(args: dict[str, object], captured_at: datetime, location: Location) -> str:
    """sha256 of normalised arguments with their times as UTC instants."""
    canonical = {
        **args,
        "captured_at": format_rfc3339(captured_at.astimezone(UTC)),
        "location": {
            **location.to_json(),
            "fix_time": format_rfc3339(location.fix_time.astimezone(UTC)),
        },
    }
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ReportCreate:
    """``report.create``. Text fields are stripped; lengths count Unicode code points."""

    report_id: str
    category_code: str
    description: str
    address: str
    location: Location
    captured_at: datetime
    photos: tuple[PhotoDecl, ...]

    @classmethod
    def from_args(cls, args: dict[str, object]) -> Self:
        f = Fields(args, "args", _invalid)
        report_id = f.uuid("report_id")
        category_code = _category(f.raw("category_code"), "args.category_code")
        description = _description(f.raw("description"), "args.description")
        address = _address(f.raw("address"), "args.address")
        location = Location.from_json(f.raw("location"), "args.location")
        captured_at = _time(f, "captured_at")
        photos = _photos(f, required=False)
        f.finish()
        return cls(report_id, category_code, description, address, location, captured_at, photos)

    def to_args(self) -> dict[str, object]:
        """The normalised arguments (stripped text, canonical times)."""
        return {
            "report_id": self.report_id,
            "category_code": self.category_code,
            "description": self.description,
            "address": self.address,
            "location": self.location.to_json(),
            "captured_at": format_rfc3339(self.captured_at),
            "photos": [p.to_json() for p in self.photos],
        }

    def content_digest(self) -> str:
        """sha256 of the normalised arguments, to tell an idempotent re-create (same content:
        ``applied``) from a ``duplicate_id`` (section 4.3) without storing the arguments.

        Times count as instants (UTC), text after stripping, so only a real difference in
        content makes two creates differ.
        """
        return _instant_digest(self.to_args(), self.captured_at, self.location)


@dataclass(frozen=True)
class ReportUpdate:
    """``report.update``: validated client-field ``changes`` plus the server-owned field names
    the phone tried to change (``ignored_fields``, sorted), which are never applied."""

    report_id: str
    base_version: int
    changes: dict[str, object]
    ignored_fields: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: dict[str, object]) -> Self:
        f = Fields(args, "args", _invalid)
        report_id = f.uuid("report_id")
        base_version = f.integer("base_version", lo=1)
        raw = f.obj("changes")
        f.finish()
        if not raw:
            raise _invalid("args.changes: at least one field")
        unknown = sorted(k for k in raw if k not in CLIENT_FIELDS and k not in SERVER_OWNED_FIELDS)
        if unknown:
            raise _invalid(f"args.changes: unknown field(s) {', '.join(unknown[:5])}")
        changes: dict[str, object] = {}
        for name in CLIENT_FIELDS:
            if name not in raw:
                continue
            path = f"args.changes.{name}"
            if name == "category_code":
                changes[name] = _category(raw[name], path)
            elif name == "description":
                changes[name] = _description(raw[name], path)
            elif name == "address":
                changes[name] = _address(raw[name], path)
            else:
                changes[name] = Location.from_json(raw[name], path)
        ignored = tuple(sorted(k for k in raw if k in SERVER_OWNED_FIELDS))
        return cls(report_id, base_version, changes, ignored)


@dataclass(frozen=True)
class ReportDelete:
    """``report.delete``: only applies on the current version (section 4.3)."""

    report_id: str
    base_version: int

    @classmethod
    def from_args(cls, args: dict[str, object]) -> Self:
        f = Fields(args, "args", _invalid)
        delete = cls(report_id=f.uuid("report_id"), base_version=f.integer("base_version", lo=1))
        f.finish()
        return delete


PHOTO_ROLES = ("before", "after")


@dataclass(frozen=True)
class ReportAddPhotos:
    """``report.add_photos``: more photos for an existing report, e.g. 整改后 (``after``)
    pictures of an on-the-spot fix. Photos are evidence, so they can be added, never edited."""

    report_id: str
    role: str
    photos: tuple[PhotoDecl, ...]

    @classmethod
    def from_args(cls, args: dict[str, object]) -> Self:
        f = Fields(args, "args", _invalid)
        report_id = f.uuid("report_id")
        role = f.choice("role", PHOTO_ROLES)
        photos = _photos(f, required=True)
        f.finish()
        return cls(report_id, role, photos)


TASK_OUTCOMES = ("done", "fixed", "not_fixed")


@dataclass(frozen=True)
class TaskComplete:
    """``task.complete``: a department's 处理反馈 (outcome ``done``) or an inspector's 核查
    (``fixed`` / ``not_fixed``) for a task received by pull. The evidence is a new report made
    on the phone (its own id, location, capture time and at least one ``after`` photo); the
    server gives it the case's category and address."""

    task_id: str
    outcome: str
    comment: str
    report_id: str
    location: Location
    captured_at: datetime
    photos: tuple[PhotoDecl, ...]

    @classmethod
    def from_args(cls, args: dict[str, object]) -> Self:
        f = Fields(args, "args", _invalid)
        task_id = f.uuid("task_id")
        outcome = f.choice("outcome", TASK_OUTCOMES)
        comment = check_str(f.raw("comment"), "args.comment", _invalid, 0, MAX_DESCRIPTION, True)
        report_id = f.uuid("report_id")
        location = Location.from_json(f.raw("location"), "args.location")
        captured_at = _time(f, "captured_at")
        photos = _photos(f, required=True)
        f.finish()
        return cls(task_id, outcome, comment, report_id, location, captured_at, photos)

    def to_args(self) -> dict[str, object]:
        return {
            "task_id": self.task_id,
            "outcome": self.outcome,
            "comment": self.comment,
            "report_id": self.report_id,
            "location": self.location.to_json(),
            "captured_at": format_rfc3339(self.captured_at),
            "photos": [p.to_json() for p in self.photos],
        }

    def content_digest(self) -> str:
        """Like ReportCreate.content_digest: equal digests mean the same submission."""
        return _instant_digest(self.to_args(), self.captured_at, self.location)


@dataclass(frozen=True)
class MutationSpec:
    name: str
    entity: str
    parse: Callable[[dict[str, object]], object]
    summary: str


REGISTRY: Mapping[str, MutationSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            MutationSpec("report.create", "report", ReportCreate.from_args, "create a report"),
            MutationSpec("report.update", "report", ReportUpdate.from_args, "edit client fields"),
            MutationSpec("report.delete", "report", ReportDelete.from_args, "delete a report"),
            MutationSpec(
                "report.add_photos", "report", ReportAddPhotos.from_args, "add photos to a report"
            ),
            MutationSpec(
                "task.complete", "task", TaskComplete.from_args, "complete a handle/verify task"
            ),
        )
    }
)


def validate_mutation(name: str, args: object) -> object:
    """Parse ``args`` of mutation ``name`` into its dataclass, or raise MutationArgsError."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise MutationArgsError("unknown_mutation", f"no mutation named {name[:64]!r}")
    if not isinstance(args, dict):
        raise _invalid("args: expected an object")
    _refuse_nul(args, "args")
    return spec.parse(args)


def parse_location(obj: object) -> Location:
    """A ``location`` object as stored on the server, for comparing with an update's value."""
    return Location.from_json(obj)


__all__ = [
    "CLIENT_FIELDS",
    "PHOTO_ROLES",
    "REGISTRY",
    "SERVER_OWNED_FIELDS",
    "TASK_OUTCOMES",
    "Location",
    "MutationArgsError",
    "MutationSpec",
    "PhotoDecl",
    "ReportAddPhotos",
    "ReportCreate",
    "ReportDelete",
    "ReportUpdate",
    "TaskComplete",
    "parse_location",
    "parse_rfc3339",
    "validate_mutation",
]  # fmt: skip
