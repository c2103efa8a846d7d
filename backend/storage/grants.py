"""Signed, expiring grants for the local store's direct upload/download URLs.

The embedded profile has no S3 server to presign against, so ``LocalObjectStore.presign_put``
and ``presign_get`` hand out URLs on our own API (``/api/v1/media/direct/{token}``,
``/api/v1/media/signed/{token}``). The token names everything the request may do — kind
(``put``/``get``), key, and for uploads the content type, size and SHA-256 — and its expiry,
authenticated with HMAC-SHA256 under a key derived from the service secret. The endpoint calls
:func:`verify_local_grant` (or ``LocalObjectStore.verify_grant``) and must then hold the request
to the grant: ``Content-Type`` equal to ``grant.content_type``, exactly ``grant.size`` bytes
(``grant.check_request``) and the body's SHA-256 equal to ``grant.sha256_hex`` — checked
before the bytes are published under ``grant.key``.

Token: ``base64url(json payload) "." base64url(hmac)``, no padding: URL-safe as one path
segment. The HMAC covers a domain prefix too, so no other token signed with the same key can
pass for a grant.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from backend.storage.base import (
    MAX_PRESIGN_SECONDS,
    GrantExpired,
    GrantInvalid,
    InvalidObjectKey,
    check_content_type,
    check_key,
    check_length,
    check_sha256_hex,
)

GrantKind = Literal["put", "get"]

_VERSION = 1
_DOMAIN = b"xuncha-media-grant-v1."
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,4000}\.[A-Za-z0-9_-]{43}$")
_KINDS = ("put", "get")


@dataclass(frozen=True)
class LocalGrant:
    """What a token allows. ``put`` grants carry content_type, size and sha256 (hex)."""

    kind: GrantKind
    key: str
    expires_at: datetime
    content_type: str | None = None
    size: int | None = None
    sha256_hex: str | None = None
    filename: str | None = None
    #: A put grant that may replace an existing object (pass on to ``put_stream``).
    overwrite: bool = False

    def check_request(self, content_type: str, length: int | None) -> None:
        """For the upload endpoint: the PUT must carry the granted type and length.

        (The body's SHA-256 is the endpoint's to compare with ``sha256_hex``.)
        """
        if self.kind != "put":
            raise GrantInvalid("this grant does not allow an upload")
        if content_type.strip() != self.content_type:
            raise GrantInvalid(f"the grant is for Content-Type {self.content_type}")
        if length != self.size:
            raise GrantInvalid(f"the grant is for exactly {self.size} bytes")


def derive_signing_key(secret: str | bytes) -> bytes:
    """The grant key derived from the service secret (never the secret itself)."""
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(raw, b"xuncha object-store grants", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(signing_key: bytes, payload_b64: str) -> bytes:
    return hmac.new(signing_key, _DOMAIN + payload_b64.encode("ascii"), hashlib.sha256).digest()


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def sign_local_grant(signing_key: bytes, grant: LocalGrant, *, now: datetime | None = None) -> str:
    """The token for ``grant``; it must expire within 1..900 s of ``now``."""
    if not signing_key:
        raise ValueError("a signing key is required")
    if grant.expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    issued = int(_aware(now).timestamp())
    expires = int(grant.expires_at.timestamp())
    if not 0 < expires - issued <= MAX_PRESIGN_SECONDS:
        raise ValueError(f"a grant must expire within 1..{MAX_PRESIGN_SECONDS} s")
    if grant.kind not in _KINDS:
        raise ValueError(f"unknown grant kind {grant.kind!r}")
    payload: dict[str, Any] = {
        "v": _VERSION,
        "kind": grant.kind,
        "key": check_key(grant.key),
        "iat": issued,
        "exp": expires,
    }
    if grant.kind == "put":
        if grant.content_type is None or grant.size is None or grant.sha256_hex is None:
            raise ValueError("a put grant names content_type, size and sha256_hex")
        payload["ct"] = check_content_type(grant.content_type)
        payload["size"] = check_length(grant.size)
        payload["sha256"] = check_sha256_hex(grant.sha256_hex)
    if grant.filename is not None:
        payload["fn"] = grant.filename
    if grant.overwrite:
        payload["ow"] = True
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    payload_b64 = _b64(body.encode("utf-8"))
    return f"{payload_b64}.{_b64(_mac(signing_key, payload_b64))}"


def verify_local_grant(
    signing_key: bytes | None,
    token: str,
    now: datetime | None = None,
    *,
    kind: GrantKind | None = None,
) -> LocalGrant:
    """The grant ``token`` carries, if we issued it and it has not expired at ``now``.

    Raises :class:`GrantInvalid` (altered, foreign, malformed, or of another ``kind``) or
    :class:`GrantExpired`.
    """
    if not signing_key:
        raise ValueError("a signing key is required")
    moment = _aware(now)
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise GrantInvalid("malformed grant token")
    payload_b64, mac_b64 = token.split(".", 1)
    try:
        mac = _unb64(mac_b64)
    except (binascii.Error, ValueError):
        raise GrantInvalid("malformed grant token") from None
    if _b64(mac) != mac_b64:  # one token per grant: no alternative encodings
        raise GrantInvalid("malformed grant token")
    if not hmac.compare_digest(mac, _mac(signing_key, payload_b64)):
        raise GrantInvalid("grant signature does not match")
    try:
        payload = json.loads(_unb64(payload_b64).decode("utf-8"))
        grant = _grant_from(payload)
    except (binascii.Error, ValueError, KeyError, TypeError, InvalidObjectKey):
        # Signed by us yet unreadable: a version we no longer understand.
        raise GrantInvalid("unreadable grant") from None
    if kind is not None and grant.kind != kind:
        raise GrantInvalid(f"grant is for {grant.kind}, not {kind}")
    if moment >= grant.expires_at:
        raise GrantExpired(f"grant expired at {grant.expires_at.isoformat()}")
    return grant


def _grant_from(payload: dict[str, Any]) -> LocalGrant:
    if payload["v"] != _VERSION or payload["kind"] not in _KINDS:
        raise ValueError("unknown grant version or kind")
    issued, expires = payload["iat"], payload["exp"]
    if not (isinstance(issued, int) and isinstance(expires, int)):
        raise TypeError("times must be integers")
    if not 0 < expires - issued <= MAX_PRESIGN_SECONDS:
        raise ValueError("grant lifetime out of range")
    grant = LocalGrant(
        kind=payload["kind"],
        key=check_key(payload["key"]),
        expires_at=datetime.fromtimestamp(expires, UTC),
        content_type=payload.get("ct"),
        size=payload.get("size"),
        sha256_hex=payload.get("sha256"),
        filename=payload.get("fn"),
        overwrite=payload.get("ow") is True,
    )
    if grant.kind == "put" and (
        not isinstance(grant.content_type, str)
        or not isinstance(grant.size, int)
        or not isinstance(grant.sha256_hex, str)
    ):
        raise TypeError("a put grant names content_type, size and sha256")
    return grant
