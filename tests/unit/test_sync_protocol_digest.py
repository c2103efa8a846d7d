"""Scope digest (docs/sync-protocol.md 5): definition, order independence, add/remove."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.digest import EMPTY_DIGEST, Digest, digest_of, record_hash

records = st.lists(
    st.tuples(st.sampled_from(["report", "grid"]), st.text(max_size=12), st.integers(1, 10**6)),
    unique_by=lambda r: (r[0], r[1]),
    max_size=30,
)


def test_record_hash_follows_the_definition() -> None:
    expected = int.from_bytes(hashlib.sha256(b"report:3f5c:3").digest()[:16], "big")
    assert record_hash("report", "3f5c", 3) == expected
    # UTF-8, not ASCII-escaped: ids may carry Chinese text.
    assert record_hash("grid", "网格", 1) == int.from_bytes(
        hashlib.sha256("grid:网格:1".encode()).digest()[:16], "big"
    )


def test_known_value_and_empty_scope() -> None:
    assert digest_of([]) == (EMPTY_DIGEST, 0) == ("0" * 32, 0)
    single = f"{record_hash('grid', '99010100200934', 1):032x}"
    assert digest_of([("grid", "99010100200934", 1)]) == (single, 1)
    assert len(single) == 32 and single == single.lower()
    # The value in sync_protocol/examples/first-pull.json, computed independently once.
    pair = [("grid", "99010100200934", 1), ("report", "3f5c0d9e-7b7e-4d4b-9a53-3b1d1c7e9a10", 1)]
    assert digest_of(pair) == ("d94c7ba8f89e8f0ba29cd4e9c8be347c", 2)


def test_version_matters() -> None:
    assert digest_of([("report", "a", 1)]) != digest_of([("report", "a", 2)])


@given(records, st.randoms())
def test_order_does_not_matter(items: list[tuple[str, str, int]], random: object) -> None:
    shuffled = list(items)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert digest_of(shuffled) == digest_of(items)


@given(records, records)
def test_remove_undoes_add(
    base: list[tuple[str, str, int]], extra: list[tuple[str, str, int]]
) -> None:
    digest = Digest()
    for record in base:
        digest.add(*record)
    before = (digest.value, digest.count)
    for record in extra:
        digest.add(*record)
    for record in reversed(extra):
        digest.remove(*record)
    assert (digest.value, digest.count) == before == digest_of(base)


@given(records, st.integers(1, 10**6))
def test_replace_equals_recomputing(items: list[tuple[str, str, int]], new_version: int) -> None:
    if not items:
        return
    digest = Digest()
    for record in items:
        digest.add(*record)
    entity, id, old = items[0]
    digest.replace(entity, id, old, new_version)
    assert (digest.value, digest.count) == digest_of([(entity, id, new_version), *items[1:]])


def test_remove_from_empty_is_an_error() -> None:
    with pytest.raises(ValueError):
        Digest().remove("report", "a", 1)
