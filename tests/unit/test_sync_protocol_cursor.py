"""Cursor codec: round trips, tampering, device binding, and nothing but InvalidCursor."""

from __future__ import annotations

import base64
import contextlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_protocol.cursor import Cursor, CursorCodec, InvalidCursor
from sync_protocol.errors import ProtocolError
from sync_protocol.messages import MAX_CURSOR_LENGTH

DEVICE = "9b2f6c1e-4a3d-4f0e-8b7a-2c5d9e1f3a40"
OTHER = "0d4c6a1e-4a3d-4f0e-8b7a-2c5d9e1f3a41"
SECRET = b"s" * 32
CODEC = CursorCodec(SECRET)
SNAPSHOT = Cursor(DEVICE, "snapshot", 812, 41877, "report", "3f5c0d9e", "7e91ab", 1795488569)
FEED = Cursor(DEVICE, "feed", 0, 418, None, None, "7e91ab", 1795488569)


def test_round_trip_and_shape() -> None:
    for cursor in (SNAPSHOT, FEED):
        text = CODEC.encode(cursor)
        assert re.fullmatch(r"c1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}", text)
        assert CODEC.decode(text, DEVICE) == cursor


def test_error_is_a_protocol_error_with_a_stable_code() -> None:
    with pytest.raises(ProtocolError) as info:
        CODEC.decode("nonsense", DEVICE)
    assert isinstance(info.value, InvalidCursor)
    assert (info.value.code, info.value.status_hint) == ("invalid_cursor", 422)


def test_another_device_cannot_use_it() -> None:
    with pytest.raises(InvalidCursor, match="another device"):
        CODEC.decode(CODEC.encode(FEED), OTHER)


def test_another_secret_cannot_read_it() -> None:
    with pytest.raises(InvalidCursor, match="signature"):
        CursorCodec(b"t" * 32).decode(CODEC.encode(FEED), DEVICE)


def test_every_single_character_change_is_detected() -> None:
    text = CODEC.encode(SNAPSHOT)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for i, char in enumerate(text):
        for replacement in {alphabet[(alphabet.index(char) + 1) % len(alphabet)], "A", "."}:
            if replacement == char:
                continue
            with pytest.raises(InvalidCursor):
                CODEC.decode(text[:i] + replacement + text[i + 1 :], DEVICE)
    for broken in (text[:-1], text + "A", text.replace("c1.", "c2.", 1), "c1." + text, " " + text):
        with pytest.raises(InvalidCursor):
            CODEC.decode(broken, DEVICE)


def test_a_re_signed_payload_with_another_device_needs_the_secret() -> None:
    """Editing the payload (e.g. xid forward, another device) and keeping the MAC fails."""
    _, payload, mac = CODEC.encode(FEED).split(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=="))
    fields[2] = 10**9
    forged = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidCursor):
        CODEC.decode(f"c1.{forged}.{mac}", DEVICE)


def test_the_key_is_bound_to_this_purpose() -> None:
    """A MAC made directly with the server secret (as for access tokens) is not accepted."""
    import hashlib
    import hmac

    _, payload, _ = CODEC.encode(FEED).split(".")
    raw_mac = hmac.new(SECRET, f"c1.{payload}".encode(), hashlib.sha256).digest()
    mac = base64.urlsafe_b64encode(raw_mac).rstrip(b"=").decode()
    with pytest.raises(InvalidCursor):
        CODEC.decode(f"c1.{payload}.{mac}", DEVICE)


def test_invalid_cursors_cannot_be_made() -> None:
    for bad in (
        dict(device_id=DEVICE.upper()),
        dict(mode="later"),
        dict(xid=-1),
        dict(seq=True),
        dict(after_id=None),  # after_entity without after_id
        dict(mode="feed", after_entity="report", after_id="x"),
        dict(scope_hash=""),
        dict(scope_hash="h" * 65),
        dict(scope_hash="有"),
        dict(after_id="\ud800"),  # a lone surrogate cannot be encoded
        dict(after_id="x" * 65),
        dict(after_entity="Report"),
    ):
        fields = {**SNAPSHOT.__dict__, **bad}
        with pytest.raises(ValueError):
            Cursor(**fields)
    with pytest.raises(ValueError):
        CursorCodec(b"short")


@pytest.mark.parametrize("char", ["y", "张", "𝕋", "\x01", '"'])
def test_the_longest_cursors_fit_the_message_limit(char: str) -> None:
    big = 2**53 - 1
    longest = Cursor(DEVICE, "snapshot", big, big, "x" * 20, char * 64, "h" * 64, big)
    text = CODEC.encode(longest)
    assert len(text) <= MAX_CURSOR_LENGTH
    assert CODEC.decode(text, DEVICE) == longest


def _decode_only_raises_invalid_cursor(value: object) -> None:
    """Anything but InvalidCursor propagates and fails the test."""
    with contextlib.suppress(InvalidCursor):
        CODEC.decode(value, DEVICE)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_random_text_raises_only_invalid_cursor(text: str) -> None:
    _decode_only_raises_invalid_cursor(text)
    _decode_only_raises_invalid_cursor("c1." + text)
    _decode_only_raises_invalid_cursor(f"c1.{text}.{'A' * 43}")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_invalid_cursor(data: bytes) -> None:
    _decode_only_raises_invalid_cursor(data)
    _decode_only_raises_invalid_cursor(data.decode("latin-1"))
    encoded = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    _decode_only_raises_invalid_cursor(f"c1.{encoded}.{'A' * 43}")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.text()), st.binary()))
def test_non_text_raises_only_invalid_cursor(value: object) -> None:
    _decode_only_raises_invalid_cursor(value)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=9),
        max_leaves=20,
    )
)
def test_correctly_signed_garbage_raises_only_invalid_cursor(payload: object) -> None:
    """Even a payload we signed ourselves but cannot read is an InvalidCursor, not a crash."""
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    if len(body) < 2 or len(body) > 960:
        return
    signed = f"c1.{body}"
    text = f"{signed}.{CODEC._mac(signed)}"
    try:
        cursor = CODEC.decode(text, DEVICE)
    except InvalidCursor:
        return
    assert cursor.device_id == DEVICE  # only a well-formed payload for this device gets through


@given(
    st.sampled_from(["snapshot", "feed"]),
    st.integers(0, 2**53 - 1),
    st.integers(0, 2**53 - 1),
    st.text(min_size=1, max_size=64).filter(
        lambda t: not any(0xD800 <= ord(c) < 0xE000 for c in t)
    ),
    st.from_regex(r"[0-9A-Za-z_-]{1,64}", fullmatch=True),
)
def test_any_valid_cursor_round_trips(
    mode: str, xid: int, seq: int, after_id: str, scope: str
) -> None:
    after = ("report", after_id) if mode == "snapshot" else (None, None)
    cursor = Cursor(DEVICE, mode, xid, seq, after[0], after[1], scope, 1795488569)
    assert CODEC.decode(CODEC.encode(cursor), DEVICE) == cursor
