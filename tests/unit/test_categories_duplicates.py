"""Duplicate-suggestion settings in the category file: inheritance, defaults, round trips and
every problem listed at once."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.categories.service import default_file
from backend.categories.taxonomy import (
    DEFAULT_DUP_RADIUS_M,
    DEFAULT_DUP_WINDOW_MINUTES,
    TaxonomyProblems,
    dump,
    duplicate_rule,
    format_minutes,
    parse,
)


def _file(major: dict[str, Any], *children: dict[str, Any]) -> bytes:
    node = {"code": "05", "key": "street_order", "name": "街面秩序", **major}
    node["children"] = [
        {"code": f"05{i:02d}", "key": f"child_{i}", "name": f"子类{i}", **child}
        for i, child in enumerate(children, start=1)
    ]
    return json.dumps({"version": 1, "categories": [node]}).encode()


def test_children_inherit_and_override_each_value_separately() -> None:
    data = _file(
        {"duplicates": {"radius_m": 80, "window": "3d"}},
        {},
        {"duplicates": {"radius_m": 20.5}},
        {"duplicates": {"window": "12h"}},
    )
    specs = {s.code: s for s in parse(data)}
    assert (specs["05"].dup_radius_m, specs["05"].dup_window_minutes) == (80.0, 3 * 1440)
    assert (specs["0501"].dup_radius_m, specs["0501"].dup_window_minutes) == (80.0, 3 * 1440)
    assert (specs["0502"].dup_radius_m, specs["0502"].dup_window_minutes) == (20.5, 3 * 1440)
    assert (specs["0503"].dup_radius_m, specs["0503"].dup_window_minutes) == (80.0, 12 * 60)


def test_absent_settings_stay_unset_and_the_defaults_apply() -> None:
    spec = parse(_file({}, {}))[1]
    assert spec.dup_radius_m is None and spec.dup_window_minutes is None
    assert duplicate_rule(None, None) == (50.0, 7 * 24 * 60)
    assert duplicate_rule(None, None) == (DEFAULT_DUP_RADIUS_M, DEFAULT_DUP_WINDOW_MINUTES)
    assert duplicate_rule(12.0, None) == (12.0, DEFAULT_DUP_WINDOW_MINUTES)
    # Unset settings are not written back: an export does not freeze today's defaults.
    assert b"duplicates" not in dump(parse(_file({}, {})))


def test_the_defaults_set_a_few_categories() -> None:
    specs = {s.code: s for s in parse(default_file())}
    assert (specs["0101"].dup_radius_m, specs["0101"].dup_window_minutes) == (None, 30 * 1440)
    assert (specs["0501"].dup_radius_m, specs["0501"].dup_window_minutes) == (100.0, 1440)
    assert specs["0504"].dup_radius_m is None and specs["0504"].dup_window_minutes is None


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_settings_round_trip_in_their_shortest_form(fmt: str) -> None:
    data = _file(
        {"duplicates": {"radius_m": 50, "window": "72h"}},
        {"duplicates": {"radius_m": 12.5, "window": "90m"}},
        {},
    )
    specs = parse(data)
    written = dump(specs, fmt)
    assert parse(written) == specs
    document = yaml.safe_load(written)  # JSON is YAML too
    major = document["categories"][0]
    assert major["duplicates"] == {"radius_m": 50, "window": "3d"}
    assert major["children"][0]["duplicates"] == {"radius_m": 12.5, "window": "90m"}
    assert major["children"][1]["duplicates"] == {"radius_m": 50, "window": "3d"}  # inherited


@pytest.mark.parametrize(
    ("minutes", "text"), [(1, "1m"), (90, "90m"), (120, "2h"), (1440, "1d"), (1500, "25h")]
)
def test_format_minutes(minutes: int, text: str) -> None:
    assert format_minutes(minutes) == text


def test_every_problem_is_reported_at_once() -> None:
    data = _file(
        {"duplicates": [50, "3d"]},
        {"duplicates": {"radius": 50, "window": "3w"}},
        {"duplicates": {"radius_m": True}},
        {"duplicates": {"radius_m": 0}},
        {"duplicates": {"radius_m": 5000, "window": "91d"}},
        {"duplicates": {"radius_m": "50", "window": 3}},
        {"duplicates": {"radius_m": float("nan")}},
    )
    with pytest.raises(TaxonomyProblems) as caught:
        parse(data)
    problems = caught.value.problems
    radius = "duplicates.radius_m: a number of metres from 1 to 1000"
    window = "duplicates.window: a calendar duration such as 12h or 3d, at most 90d"
    expected = [
        "categories[0].duplicates: a mapping with radius_m and/or window",
        "categories[0].children[0].duplicates: unknown field 'radius' (radius_m, window)",
        f"categories[0].children[0].{window}",
        f"categories[0].children[1].{radius}",  # true is not 1 m
        f"categories[0].children[2].{radius}",
        f"categories[0].children[3].{radius}",
        f"categories[0].children[3].{window}",
        f"categories[0].children[4].{radius}",  # "50" is text
        f"categories[0].children[4].{window}",
        f"categories[0].children[5].{radius}",
    ]
    assert sorted(problems) == sorted(expected)


def test_nan_and_infinity_in_yaml_are_refused() -> None:
    for value in (b".nan", b".inf", b"-.inf"):
        data = b'version: 1\ncategories:\n  - {code: "05", key: k5, name: n, ' + (
            b"duplicates: {radius_m: " + value + b"}}\n"
        )
        with pytest.raises(TaxonomyProblems, match="radius_m"):
            parse(data)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["radius_m", "window", "x"]), _JSON, max_size=3) | _JSON)
def test_any_duplicates_value_parses_or_is_a_listed_problem(value: Any) -> None:
    try:
        specs = parse(_file({"duplicates": value}))
    except TaxonomyProblems:
        return
    radius, minutes = duplicate_rule(specs[0].dup_radius_m, specs[0].dup_window_minutes)
    assert 1 <= radius <= 1000 and 1 <= minutes <= 90 * 1440
    assert parse(dump(specs)) == specs
