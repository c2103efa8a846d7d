"""Attribute mapping and validation of grid files, before anything touches the database."""

from __future__ import annotations

import pytest

from backend.core.settings import DEFAULT_GRID_CODE_PATTERN
from backend.grids.codes import GridCodeScheme, InvalidGridCode, InvalidGridCodePattern
from backend.grids.feature_mapping import UnknownFieldName, map_features, resolve_columns
from backend.grids.models import ZoneTier

SCHEME = GridCodeScheme(DEFAULT_GRID_CODE_PATTERN)


def mapped(rows: list[dict[str, object]], field_map: dict[str, str] | None = None):
    columns = sorted({k for r in rows for k in r})
    return map_features(enumerate(rows), columns, field_map or {}, SCHEME)


def test_code_parts_follow_the_pattern() -> None:
    parts = SCHEME.parse("31010100200307")
    assert (parts.district_code, parts.street_code, parts.community_code) == (
        "310101",
        "310101002",
        "310101002003",
    )
    assert SCHEME.parse("310101002003107").community_code == "310101002003"
    with pytest.raises(InvalidGridCode):
        SCHEME.parse("3101010020031")
    with pytest.raises(InvalidGridCodePattern):
        GridCodeScheme(r"^(?P<district>\d{6})\d+$")
    with pytest.raises(InvalidGridCodePattern):
        GridCodeScheme("(unclosed")


def test_chinese_aliases_and_zone_tiers() -> None:
    result = mapped(
        [
            {
                "网格编码": "31010100100101",
                "网格名称": "一号网格",
                "社区": "梧桐社区",
                "管控等级": "严管区",
            },
            {
                "网格编码": 31010100100102,
                "网格名称": "二号网格",
                "社区": "梧桐社区",
                "管控等级": "一般",
            },
        ]
    )
    assert result.problems == []
    first, second = result.grids
    assert first.zone_tier is ZoneTier.strict and second.zone_tier is ZoneTier.general
    assert second.code == "31010100100102"  # numeric codes (shapefile integers) become text
    assert first.community_name == "梧桐社区" and first.community_code == "310101001001"


def test_explicit_field_map_wins_and_unknown_fields_are_refused() -> None:
    result = mapped([{"WGBM": "31010100100101", "code": "garbage"}], {"code": "WGBM"})
    assert result.problems == [] and result.grids[0].code == "31010100100101"
    with pytest.raises(UnknownFieldName):
        resolve_columns(["a"], {"colour": "a"})


def test_every_problem_is_collected() -> None:
    result = mapped(
        [
            {"code": "31010100100101", "community_code": "310101001001"},
            {"code": "31010100100101"},
            {"code": "bad"},
            {"code": None},
            {"code": "31010100100103", "community_code": "310101001009"},
            {"code": "31010100100104", "zone": "red"},
            {"code": "31010100100105", "name": "x" * 201},
        ]
    )
    kinds = [(p.code, p.feature) for p in result.problems]
    assert kinds == [
        ("duplicate_grid_code", 1),
        ("invalid_grid_code", 2),
        ("missing_grid_code", 3),
        ("hierarchy_mismatch", 4),
        ("invalid_zone_tier", 5),
        ("value_too_long", 6),
    ]


def test_one_parent_code_has_one_name() -> None:
    result = mapped(
        [
            {"code": "31010100100101", "街道": "东湖街道"},
            {"code": "31010100100201", "街道": "西湖街道"},
        ]
    )
    assert [p.code for p in result.problems] == ["hierarchy_mismatch"]
    assert "东湖街道" in result.problems[0].message


def test_missing_code_column_is_explained() -> None:
    result = mapped([{"编号": "1"}])
    assert result.problems[0].code == "missing_field"
    assert "编号" in result.problems[0].message and "code=" in result.problems[0].message


def test_attribute_values_become_strict_json_and_nul_is_refused() -> None:
    result = mapped(
        [
            {"code": "31010100100101", "meta": {"a": float("nan"), "b": [float("inf"), "x\x00y"]}},
            {"code": "31010100100102", "name": "bad\x00name"},
        ]
    )
    assert result.grids[0].extra == {"meta": {"a": None, "b": [None, "xy"]}}
    assert [(p.code, p.feature) for p in result.problems] == [("invalid_text", 1)]
