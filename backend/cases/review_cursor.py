"""Cursors of the case list: opaque, signed, and bound to the sort and filters they came from.

``k1.<payload>.<mac>``: payload is base64url of ``[sort, value, id, filter digest]`` (value an
RFC 3339 UTC timestamp or null), mac is HMAC-SHA256 over ``k1.<payload>`` under a key derived
for this purpose only. Why sign: a cursor is fed straight into SQL comparisons; signing means
nothing but a value we produced ever gets there, and any edit is one clear 422.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Final

from backend.cases.review_errors import InvalidCaseCursor

PREFIX: Final = "k1"
_TEXT = re.compile(r"k1\.([A-Za-z0-9_-]{4,400})\.([A-Za-z0-9_-]{43})", re.ASCII)
_LABEL: Final = b"xuncha/case-list-cursor/v1"
Key = tuple[datetime | None, int]


def signing_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _mac(key: bytes, signed: str) -> str:
    return _b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())


def encode(key: bytes, sort: str, digest: str, position: Key) -> str:
    value, last_id = position
    stamp = None if value is None else value.astimezone(UTC).isoformat()
    payload = _b64(json.dumps([sort, stamp, last_id, digest], separators=(",", ":")).encode())
    signed = f"{PREFIX}.{payload}"
    return f"{signed}.{_mac(key, signed)}"


def decode(key: bytes, text: str, sort: str, digest: str) -> Key:
    """The position after which the next page starts; InvalidCaseCursor on anything else."""
    match = _TEXT.fullmatch(text)
    if match is None:
        raise InvalidCaseCursor("cursor is not one this API issued")
    signed = f"{PREFIX}.{match.group(1)}"
    if not hmac.compare_digest(_mac(key, signed), match.group(2)):
        raise InvalidCaseCursor("cursor is not one this API issued")
    try:
        got_sort, stamp, last_id, got_digest = json.loads(_unb64(match.group(1)))
        value = None if stamp is None else datetime.fromisoformat(stamp)
    except (binascii.Error, ValueError, TypeError):  # signed by us, so only if the key leaked
        raise InvalidCaseCursor("cursor is not one this API issued") from None
    if got_sort != sort or got_digest != digest:
        raise InvalidCaseCursor(
            "cursor belongs to another sort or other filters; start again without a cursor"
        )
    if not isinstance(last_id, int) or (value is not None and value.tzinfo is None):
        raise InvalidCaseCursor("cursor is not one this API issued")
    return value, last_id
