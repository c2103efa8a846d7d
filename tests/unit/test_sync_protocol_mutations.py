"""Mutation argument rules of docs/sync-protocol.md 4.1, one test per rule."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from sync_protocol.mutations import (
    REGISTRY,
    SERVER_OWNED_FIELDS,
    Location,
    MutationArgsError,
    ReportCreate,
    ReportDelete,
    ReportUpdate,
    parse_location,
    parse_rfc3339,
    validate_mutation,
)
from sync_protocol.schemas import MUTATION_ARGS_SCHEMAS
from sync_protocol.timefmt import format_rfc3339

REPORT = "3f5c0d9e-7b7e-4d4b-9a53-3b1d1c7e9a10"
PHOTO = "c0ffee00-1234-4abc-9def-0123456789ab"
SHA = "a" * 64


def location(**overrides: Any) -> dict[str, Any]:
    loc: dict[str, Any] = {
        "lon": 120.13454,
        "lat": 30.26763,
        "crs": "gcj02",
        "accuracy_m": 8.0,
        "fix_time": "2026-11-23T08:14:51+08:00",
        "provider": "fused",
    }
    loc.update(overrides)
    return loc


def create_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "report_id": REPORT,
        "category_code": "0504",
        "description": "店外经营，占用人行道约 6 平方米",
        "address": "文三路 88 号",
        "location": location(),
        "captured_at": "2026-11-23T08:14:40+08:00",
        "photos": [
            {"photo_id": PHOTO, "sha256": SHA, "size": 2481733, "content_type": "image/jpeg"}
        ],
    }
    args.update(overrides)
    return args


def refused(name: str, args: object, code: str = "invalid_args") -> str:
    with pytest.raises(MutationArgsError) as info:
        validate_mutation(name, args)
    assert info.value.code == code
    return info.value.message


def test_a_valid_create() -> None:
    create = validate_mutation("report.create", create_args())
    assert isinstance(create, ReportCreate)
    assert create.location == Location(
        120.13454, 30.26763, "gcj02", 8.0, datetime(2026, 11, 23, 0, 14, 51, tzinfo=UTC), "fused"
    )
    assert create.captured_at.utcoffset() == timedelta(hours=8)  # the offset is kept
    assert create.photos[0].size == 2481733
    assert Draft202012Validator(MUTATION_ARGS_SCHEMAS["report.create"]).is_valid(create_args())


def test_unknown_mutation() -> None:
    assert "report.archive" in refused("report.archive", {}, "unknown_mutation")
    refused("", {}, "unknown_mutation")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_args_must_be_an_object(name: str) -> None:
    for args in (None, [], "x", 3):
        refused(name, args)


SCHEMA_BLIND = {
    repr(" \n\t "),
    repr("2026-02-30T08:14:40+08:00"),
    repr(location(lat=float("nan"))),
    repr(location(lon=float("inf"))),
    repr(location(accuracy_m=float("inf"))),
}


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"report_id": REPORT.upper()}, "args.report_id"),
        ({"report_id": REPORT.replace("-", "")}, "args.report_id"),
        ({"report_id": "{" + REPORT + "}"}, "args.report_id"),
        ({"category_code": "5"}, "args.category_code"),
        ({"category_code": "1234567"}, "args.category_code"),
        ({"category_code": "05a4"}, "args.category_code"),
        ({"category_code": "０５０４"}, "args.category_code"),  # full-width digits
        ({"category_code": 504}, "args.category_code"),
        ({"description": ""}, "args.description"),
        ({"description": " \n\t "}, "args.description"),
        ({"description": "x" * 2001}, "args.description"),
        ({"description": None}, "args.description"),
        ({"address": "x" * 501}, "args.address"),
        ({"address": None}, "args.address"),
        ({"captured_at": "2026-11-23T08:14:40"}, "args.captured_at"),  # naive
        ({"captured_at": "2026-11-23"}, "args.captured_at"),
        ({"captured_at": "2026-02-30T08:14:40+08:00"}, "args.captured_at"),
        ({"captured_at": 1763856880}, "args.captured_at"),
        ({"photos": None}, "args.photos"),
        ({"photos": [{}] * 21}, "args.photos"),
        ({"location": None}, "args.location"),
        ({"location": location(lon=180.5)}, "args.location.lon"),
        ({"location": location(lat=-90.01)}, "args.location.lat"),
        ({"location": location(lat=float("nan"))}, "args.location.lat"),
        ({"location": location(lon=float("inf"))}, "args.location.lon"),
        ({"location": location(lon="120.1")}, "args.location.lon"),
        ({"location": location(lon=True)}, "args.location.lon"),
        ({"location": location(crs="epsg:4326")}, "args.location.crs"),
        ({"location": location(crs="WGS84")}, "args.location.crs"),
        ({"location": location(accuracy_m=-0.1)}, "args.location.accuracy_m"),
        ({"location": location(accuracy_m=100_000.5)}, "args.location.accuracy_m"),
        ({"location": location(accuracy_m=float("inf"))}, "args.location.accuracy_m"),
        ({"location": location(provider="satellite")}, "args.location.provider"),
        ({"location": location(fix_time="2026-11-23T08:14:51")}, "args.location.fix_time"),
        ({"location": location(altitude=12)}, "args.location.altitude"),
        ({"location": {k: v for k, v in location().items() if k != "provider"}}, "provider"),
        ({"colour": "red"}, "args.colour"),
    ],
)
def test_create_rules(overrides: dict[str, Any], path: str) -> None:
    args = create_args(**overrides)
    assert path in refused("report.create", args)
    # The published schema refuses it too, where JSON Schema can express the rule (not: text
    # after stripping, calendar validity, NaN, which is not JSON anyway).
    if not SCHEMA_BLIND.intersection(map(repr, overrides.values())):
        assert not Draft202012Validator(MUTATION_ARGS_SCHEMAS["report.create"]).is_valid(args)


@pytest.mark.parametrize("missing", sorted(create_args()))
def test_every_create_member_is_required(missing: str) -> None:
    args = create_args()
    del args[missing]
    assert f"args.{missing}: required" in refused("report.create", args)


@pytest.mark.parametrize(
    ("photo", "path"),
    [
        ({"photo_id": "not-a-uuid"}, "photo_id"),
        ({"sha256": "A" * 64}, "sha256"),
        ({"sha256": "a" * 63}, "sha256"),
        ({"sha256": "g" * 64}, "sha256"),
        ({"size": 0}, "size"),
        ({"size": 50_000_001}, "size"),
        ({"size": 1.5}, "size"),
        ({"content_type": "image/gif"}, "content_type"),
        ({"content_type": "IMAGE/JPEG"}, "content_type"),
        ({"exif": {}}, "exif"),
    ],
)
def test_photo_rules(photo: dict[str, Any], path: str) -> None:
    base = {"photo_id": PHOTO, "sha256": SHA, "size": 1, "content_type": "image/png"}
    message = refused("report.create", create_args(photos=[{**base, **photo}]))
    assert f"args.photos[0].{path}" in message


def test_photo_limits_and_uniqueness() -> None:
    def photo(i: int) -> dict[str, Any]:
        return {"photo_id": f"{i:08x}-0000-4000-8000-000000000000", "sha256": SHA, "size": 1,
                "content_type": "image/webp"}  # fmt: skip

    create = validate_mutation("report.create", create_args(photos=[photo(i) for i in range(20)]))
    assert isinstance(create, ReportCreate) and len(create.photos) == 20
    assert "unique" in refused("report.create", create_args(photos=[photo(1), photo(1)]))
    assert validate_mutation("report.create", create_args(photos=[]))


def test_boundaries_are_inclusive() -> None:
    args = create_args(
        category_code="05",
        description="x" * 2000,
        address="",
        location=location(lon=-180, lat=90, accuracy_m=0, crs="bd09", provider="manual"),
        photos=[
            {"photo_id": PHOTO, "sha256": SHA, "size": 50_000_000, "content_type": "image/heif"}
        ],
    )
    create = validate_mutation("report.create", args)
    assert isinstance(create, ReportCreate)
    assert create.location.lon == -180.0 and isinstance(create.location.lon, float)
    assert validate_mutation(
        "report.create", create_args(category_code="123456", address="x" * 500)
    )


def test_text_is_stripped_and_counted_in_code_points() -> None:
    create = validate_mutation("report.create", create_args(description="  张" * 1 + " "))
    assert isinstance(create, ReportCreate) and create.description == "张"
    # 2000 CJK characters are 6000 UTF-8 bytes: the limit is on characters.
    assert validate_mutation("report.create", create_args(description="张" * 2000))


@pytest.mark.parametrize(
    "where",
    [
        {"description": "a\x00b"},
        {"address": "\x00"},
        {"location": location(crs="wgs84\x00")},
        {
            "photos": [
                {"photo_id": PHOTO, "sha256": SHA, "size": 1, "content_type": "image/png\x00"}
            ]
        },
        {"extra\x00": 1},
    ],
)
def test_nul_is_refused_anywhere(where: dict[str, Any]) -> None:
    message = refused("report.create", create_args(**where))
    assert "NUL" in message or "unknown" in message or "must be one of" in message
    # Deep inside a server-owned value, which is otherwise not validated:
    update = {"report_id": REPORT, "base_version": 1, "changes": {"status": {"x": ["\x00"]}}}
    assert "NUL" in refused("report.update", update)


def test_deeply_nested_args_are_refused() -> None:
    nested: Any = "x"
    for _ in range(20):
        nested = {"a": nested}
    update = {"report_id": REPORT, "base_version": 1, "changes": {"status": nested}}
    assert "deeply" in refused("report.update", update)


# -- report.update ---------------------------------------------------------------------------


def test_update_validates_each_field_and_separates_server_owned_ones() -> None:
    args = {
        "report_id": REPORT,
        "base_version": 3,
        "changes": {
            "description": " 新描述 ",
            "location": location(crs="wgs84"),
            "status": "closed",
            "assignee": "someone",
        },
    }
    update = validate_mutation("report.update", args)
    assert isinstance(update, ReportUpdate)
    assert update.changes == {
        "description": "新描述",
        "location": parse_location(location(crs="wgs84")),
    }
    assert update.ignored_fields == ("assignee", "status")
    assert set(update.ignored_fields) <= SERVER_OWNED_FIELDS
    assert Draft202012Validator(MUTATION_ARGS_SCHEMAS["report.update"]).is_valid(args)


def test_update_with_only_server_owned_fields_is_valid() -> None:
    update = validate_mutation(
        "report.update", {"report_id": REPORT, "base_version": 1, "changes": {"status": "x"}}
    )
    assert isinstance(update, ReportUpdate)
    assert (update.changes, update.ignored_fields) == ({}, ("status",))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"base_version": 1, "changes": {"address": "a"}}, "args.report_id"),
        ({"report_id": REPORT, "changes": {"address": "a"}}, "args.base_version"),
        ({"report_id": REPORT, "base_version": 0, "changes": {"address": "a"}}, "base_version"),
        ({"report_id": REPORT, "base_version": "1", "changes": {"address": "a"}}, "base_version"),
        ({"report_id": REPORT, "base_version": 1, "changes": {}}, "at least one"),
        ({"report_id": REPORT, "base_version": 1, "changes": []}, "args.changes"),
        ({"report_id": REPORT, "base_version": 1, "changes": {"photos": []}}, "photos"),
        ({"report_id": REPORT, "base_version": 1, "changes": {"descripton": "x"}}, "descripton"),
        ({"report_id": REPORT, "base_version": 1, "changes": {"description": ""}}, "description"),
        ({"report_id": REPORT, "base_version": 1, "changes": {"category_code": "1"}}, "category"),
        ({"report_id": REPORT, "base_version": 1, "changes": {"address": 5}}, "address"),
        ({"report_id": REPORT, "base_version": 1, "changes": {"location": location(lat=91)}},
         "args.changes.location.lat"),
        ({"report_id": REPORT, "base_version": 1, "changes": {"address": "a"}, "x": 1}, "args.x"),
    ],
)  # fmt: skip
def test_update_refusals(args: dict[str, Any], fragment: str) -> None:
    assert fragment in refused("report.update", args)


def test_delete() -> None:
    assert validate_mutation(
        "report.delete", {"report_id": REPORT, "base_version": 2}
    ) == ReportDelete(REPORT, 2)
    refused("report.delete", {"report_id": REPORT})
    refused("report.delete", {"report_id": REPORT, "base_version": 0})
    refused("report.delete", {"report_id": REPORT, "base_version": 2, "force": True})


# -- normalisation and idempotency ------------------------------------------------------------


def test_the_same_content_has_the_same_digest_whatever_its_spelling() -> None:
    a = validate_mutation("report.create", create_args())
    respelled = create_args(
        description="  " + create_args()["description"] + "\n",
        captured_at="2026-11-23t08:14:40.000+08:00",
        location=location(fix_time="2026-11-23T00:14:51Z"),
    )
    b = validate_mutation("report.create", respelled)
    c = validate_mutation("report.create", create_args(address="文三路 90 号"))
    assert isinstance(a, ReportCreate) and isinstance(b, ReportCreate)
    assert isinstance(c, ReportCreate)
    assert a.content_digest() == b.content_digest() != c.content_digest()
    assert validate_mutation("report.create", a.to_args()) == a


def test_args_are_not_modified() -> None:
    args = create_args(description=" x ")
    before = copy.deepcopy(args)
    validate_mutation("report.create", args)
    assert args == before


# -- RFC 3339 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T08:15:00+08:00", datetime(2026, 11, 23, 0, 15, tzinfo=UTC)),
        ("2026-11-23T00:15:00Z", datetime(2026, 11, 23, 0, 15, tzinfo=UTC)),
        ("2026-11-23t00:15:00z", datetime(2026, 11, 23, 0, 15, tzinfo=UTC)),
        ("2026-11-23T00:15:00.5-03:30", datetime(2026, 11, 23, 3, 45, 0, 500000, tzinfo=UTC)),
        ("2026-11-23T00:15:00.123456789Z", datetime(2026, 11, 23, 0, 15, 0, 123456, tzinfo=UTC)),
    ],
)
def test_rfc3339_accepts(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected and parsed.tzinfo is not None


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T08:15:00", "2026-11-23", "2026-11-23 08:15:00+08:00", "20261123T081500Z",
        "2026-W47-1T08:15:00Z", "2026-11-23T24:00:00Z", "2026-11-23T08:15:60Z",
        "2026-11-23T08:15:00+24:00", "2026-11-23T08:15:00+0800", "2026-11-23T08:15Z",
        "2026-11-23T08:15:00.Z", "２026-11-23T08:15:00Z", "2026-11-23T08:15:00Z\n", "",
        "2026-11-23T08:15:00+08:00" + "0" * 40,
    ],
)  # fmt: skip
def test_rfc3339_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.timezones()
    )
)
def test_rfc3339_round_trip(value: datetime) -> None:
    text = format_rfc3339(value)
    # Compare in UTC: Python never calls a fold-ambiguous zoned time equal to another zone's.
    assert parse_rfc3339(text).astimezone(UTC) == value.astimezone(UTC)
    assert text.endswith("Z") or text[-6] in "+-"


def test_format_refuses_naive_and_keeps_offsets() -> None:
    with pytest.raises(ValueError):
        format_rfc3339(datetime(2026, 1, 1))
    east8 = timezone(timedelta(hours=8))
    assert format_rfc3339(datetime(2026, 1, 1, 8, tzinfo=east8)) == "2026-01-01T08:00:00+08:00"
    assert format_rfc3339(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"


TASK = "9b2e4c1a-0f6d-4e8b-8a1c-5d7e3f9a2b64"


def task_args(**overrides: Any) -> dict[str, Any]:
    args = {
        "task_id": TASK,
        "outcome": "fixed",
        "comment": "  摊位已撤离  ",
        "report_id": REPORT,
        "location": location(),
        "captured_at": "2026-11-24T09:02:00+08:00",
        "photos": create_args()["photos"],
    }
    args.update(overrides)
    return args


def test_a_valid_task_completion_matches_its_schema_and_is_stripped() -> None:
    from sync_protocol.mutations import TaskComplete

    typed = validate_mutation("task.complete", task_args())
    assert isinstance(typed, TaskComplete)
    assert typed.comment == "摊位已撤离" and typed.outcome == "fixed"
    validator = Draft202012Validator(MUTATION_ARGS_SCHEMAS["task.complete"])
    assert list(validator.iter_errors(task_args())) == []
    spelled = task_args(captured_at="2026-11-24T01:02:00Z", comment="摊位已撤离")
    assert validate_mutation("task.complete", spelled).content_digest() == typed.content_digest()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"outcome": "maybe"}, "args.outcome"),
        ({"photos": []}, "args.photos: at least one photo"),
        ({"task_id": "not-a-uuid"}, "args.task_id"),
        ({"comment": "x" * 2001}, "args.comment"),
        ({"extra": 1}, "extra"),
    ],
)
def test_task_completion_refusals(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(MutationArgsError) as caught:
        validate_mutation("task.complete", task_args(**overrides))
    assert fragment in str(caught.value)
    validator = Draft202012Validator(MUTATION_ARGS_SCHEMAS["task.complete"])
    assert list(validator.iter_errors(task_args(**overrides))), "the schema refuses it too"
