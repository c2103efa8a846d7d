"""Pull cursors: opaque to the phone, signed by the server, bound to one device (section 5).

A cursor is ``c1.<payload>.<mac>``: ``c1`` names the format (a future layout gets ``c2`` and
old cursors simply fail to decode, which the server answers with a reset), ``payload`` is
base64url of a compact JSON array, ``mac`` is base64url of HMAC-SHA256 over ``c1.<payload>``.
Everything is URL-safe and unpadded.

Why sign: a cursor names a position in the change log and a scope; a device that could edit it
could skip changes or read another scope. Why bind to the device: a cursor copied to another
phone must not let that phone continue someone else's pull. Any failure is ``invalid_cursor``
and nothing else, whatever the input, so the server can map it to a reset without guessing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Literal

from sync_protocol._decode import MAX_SAFE_INT, UUID_RE
from sync_protocol.errors import ProtocolError

PREFIX = "c1."
MAX_CURSOR_TEXT = 1024
# c1. + payload + . + 43 characters of MAC, all within MAX_CURSOR_TEXT.
_TEXT_RE = re.compile(r"c1\.([A-Za-z0-9_-]{2,977})\.([A-Za-z0-9_-]{43})", re.ASCII)
_TOKEN_RE = re.compile(r"[0-9A-Za-z_-]{1,64}", re.ASCII)
_ENTITY_RE = re.compile(r"[a-z_]{1,20}", re.ASCII)
# Derive the MAC key for this one purpose: the server may reuse its token-signing secret, and a
# signature for a cursor must never validate as anything else (or the reverse).
_KEY_LABEL = b"xuncha/sync-cursor/v1"

Mode = Literal["snapshot", "feed"]


class InvalidCursor(ProtocolError):
    """The cursor is malformed, tampered, of another format or issued to another device."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_cursor", message)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SAFE_INT


def _is_record_id(value: object) -> bool:
    """1-64 characters that UTF-8 can encode (no lone surrogates)."""
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Cursor:
    """A position in a device's pull.

    ``snapshot``: paging the initial snapshot; ``after_entity``/``after_id`` are the last
    record sent and ``xid``/``seq`` the change-log position captured when the snapshot began,
    where the feed continues afterwards. ``feed``: ``xid``/``seq`` are the last change sent.
    ``scope_hash`` names the scope the position belongs to (a short token such as hex);
    ``issued_at`` is the server's Unix time, so it can age cursors out against its change-log
    horizon. The limits on each field guarantee that every cursor encodes within 1024
    characters, the limit of the ``cursor`` member in messages.
    """

    device_id: str
    mode: Mode
    xid: int
    seq: int
    after_entity: str | None
    after_id: str | None
    scope_hash: str
    issued_at: int

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(problem)

    def _problem(self) -> str | None:
        if not isinstance(self.device_id, str) or UUID_RE.fullmatch(self.device_id) is None:
            return "device_id"
        if self.mode not in ("snapshot", "feed"):
            return "mode"
        if not (_is_count(self.xid) and _is_count(self.seq) and _is_count(self.issued_at)):
            return "xid/seq/issued_at"
        if (self.after_entity is None) != (self.after_id is None):
            return "after_entity and after_id go together"
        if self.after_entity is not None and not (
            isinstance(self.after_entity, str)
            and _ENTITY_RE.fullmatch(self.after_entity)
            and _is_record_id(self.after_id)
        ):
            return "after_entity/after_id"
        if self.mode == "feed" and self.after_entity is not None:
            return "a feed cursor has no snapshot position"
        if not isinstance(self.scope_hash, str) or not _TOKEN_RE.fullmatch(self.scope_hash):
            return "scope_hash (1-64 of A-Z a-z 0-9 _ -)"
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class CursorCodec:
    """Encodes and verifies cursors with the server's secret (at least 16 bytes)."""

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")
        self._key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()

    def _mac(self, signed: str) -> str:
        return _b64(hmac.new(self._key, signed.encode("ascii"), hashlib.sha256).digest())

    def encode(self, cursor: Cursor) -> str:
        payload = [
            cursor.device_id,
            cursor.mode,
            cursor.xid,
            cursor.seq,
            cursor.after_entity,
            cursor.after_id,
            cursor.scope_hash,
            cursor.issued_at,
        ]
        # UTF-8 rather than \u escapes: a Chinese grid code stays short. With the limits
        # checked by Cursor, the longest possible cursor still fits MAX_CURSOR_TEXT.
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        signed = PREFIX + _b64(body)
        text = f"{signed}.{self._mac(signed)}"
        assert len(text) <= MAX_CURSOR_TEXT, "Cursor's limits keep every cursor within bounds"
        return text

    def decode(self, text: object, device_id: str) -> Cursor:
        """The cursor in ``text`` if it is ours, intact and issued to ``device_id``."""
        if not isinstance(text, str) or len(text) > MAX_CURSOR_TEXT:
            raise InvalidCursor("not a cursor")
        match = _TEXT_RE.fullmatch(text)
        if match is None:
            raise InvalidCursor("not a cursor of this format")
        signed = text[: match.start(2) - 1]
        # Compare the canonical text of the MAC, not decoded bytes: base64 has several spellings
        # of the same bytes, and every spelling but ours must fail.
        if not hmac.compare_digest(self._mac(signed).encode(), match[2].encode()):
            raise InvalidCursor("bad signature")
        try:
            raw = base64.urlsafe_b64decode(match[1] + "=" * (-len(match[1]) % 4))
            fields = json.loads(raw)
            if not isinstance(fields, list) or len(fields) != 8:
                raise ValueError("layout")
            cursor = Cursor(*fields)
        except (ValueError, TypeError, RecursionError, binascii.Error) as exc:
            # Only reachable with our own key: a cursor we signed but cannot read is a bug.
            raise InvalidCursor(f"unreadable cursor ({exc})") from None
        if cursor.device_id != device_id:
            raise InvalidCursor("cursor issued to another device")
        return cursor
