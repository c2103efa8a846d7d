"""The category file: the defaults, round trips, and every problem reported at once."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.categories.service import default_file
from backend.categories.taxonomy import TaxonomyProblems, dump, parse


def test_the_defaults_hold_the_families_the_city_rules_name() -> None:
    specs = {s.code: s for s in parse(default_file())}
    for code in ("0101", "0201", "0202", "0203", "0204", "0501", "0504", "0507", "0510", "0511"):
        assert code in specs, code
    assert specs["0504"].name == "店外经营" and specs["0504"].key == "shop_front_trading"
    assert specs["0101"].measure == "m2" and specs["0101"].limits["handle"] == "4h"
    assert specs["0504"].parent_code == "05"
    # Children inherit what they do not override.
    assert specs["0511"].limits == specs["05"].limits
    assert {s.parent_code for s in specs.values()} == {None, "01", "02", "03", "04", "05"}


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_dump_and_parse_round_trip(fmt: str) -> None:
    specs = parse(default_file())
    assert parse(dump(specs, fmt)) == specs


def test_every_problem_is_reported_at_once() -> None:
    document = {
        "version": 1,
        "categories": [
            {
                "code": "05",
                "key": "street_order",
                "name": "街面秩序",
                "colour": "red",
                "children": [
                    {"code": "0601", "key": "Bad Key", "name": ""},
                    {"code": "0504", "key": "street_order", "name": "x", "measure": "kg"},
                    {"code": "0504", "key": "dup_code", "name": "y"},
                    {"code": "0505", "key": "parking", "name": "z", "limits": {"fix": "1h"}},
                    {"code": "0506", "key": "bikes", "name": "z", "limits": {"handle": "soon"}},
                ],
            }
        ],
    }
    with pytest.raises(TaxonomyProblems) as caught:
        parse(json.dumps(document).encode())
    text = "\n".join(caught.value.problems)
    for expected in (
        "unknown field 'colour'",
        "must extend its parent's code 05",
        "lower_snake_case",
        "name: 1-100",
        "street_order appears twice",
        "measure: one of",
        "0504 appears twice",
        "unknown step 'fix'",
        "limits.handle: a working duration",
    ):
        assert expected in text, expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "must be a mapping"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"version: 1\ncategories: [", "not valid YAML"),
        (b"version: 2\ncategories: []", "non-empty list"),
        (b"a: &x [1]\nb: *x\n", "anchors and aliases"),
        (b"version: 1\ncategories:\n  - code: 504\n    key: k\n    name: n\n", "quote codes"),
        (b"x" * 1_000_001, "larger than"),
    ],
)
def test_bad_files_are_refused_with_a_reason(data: bytes, expected: str) -> None:
    with pytest.raises(TaxonomyProblems) as caught:
        parse(data)
    assert expected in str(caught.value.problems)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_arbitrary_input_raises_nothing_but_taxonomy_problems(data: bytes) -> None:
    with contextlib.suppress(TaxonomyProblems):  # anything else fails the test
        parse(data)
