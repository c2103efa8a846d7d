"""Password hashing (argon2) and signed, expiring access tokens.

Tokens are HMAC-SHA256 over a small JSON payload: ``sub`` (user id), ``tv`` (the user's
token_version, so bumping it revokes every earlier token), ``exp`` and, for tokens issued to
an enrolled phone, ``dev`` (the device id, checked against revocation on every request). They
carry no permissions; the role is read from the database on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

import argon2.profiles
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from backend.core.errors import Unauthenticated

# RFC 9106's low-memory profile (argon2-cffi's default: 3 passes over 64 MiB, ~0.1 s).
# Test suites create hundreds of users and would spend minutes hashing, so they may ask for
# the cheapest parameters with XUNCHA_INSECURE_FAST_PASSWORD_HASHES=1; the service warns
# at start when it runs so (backend.app). A hash records its own parameters, so hashes made
# either way verify either way.
FAST_HASHES_ENV = "XUNCHA_INSECURE_FAST_PASSWORD_HASHES"
FAST_HASHES = os.environ.get(FAST_HASHES_ENV) == "1"
_hasher = (
    PasswordHasher.from_parameters(argon2.profiles.CHEAPEST) if FAST_HASHES else PasswordHasher()
)
# Verifying against a dummy hash for unknown users keeps login time independent of whether
# the username exists.
_DUMMY_HASH = _hasher.hash("xuncha-dummy-password")


# User ids are 32-bit on PostgreSQL (backend.core.params.DB_ID_MAX).
_MAX_USER_ID = 2**31 - 1


class InvalidToken(Unauthenticated):
    code = "invalid_token"


class TokenExpired(Unauthenticated):
    code = "token_expired"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_secret(prefix: str) -> str:
    """A 256-bit random secret, URL-safe, with a prefix that says what it is."""
    return f"{prefix}.{secrets.token_urlsafe(32)}"


def secret_digest(secret: str) -> str:
    """Storage form of a high-entropy secret (random, so no salt or slow hash is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    token_version: int
    expires_at: int
    device_id: str | None = None


def issue_token(
    secret: str,
    user_id: int,
    token_version: int,
    ttl_seconds: int,
    device_id: str | None = None,
) -> str:
    payload: dict[str, object] = {
        "sub": user_id,
        "tv": token_version,
        "exp": int(time.time()) + ttl_seconds,
    }
    if device_id is not None:
        payload["dev"] = device_id
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    return f"xat1.{body}.{signature}"


def read_token(secret: str, token: str) -> TokenClaims:
    try:
        prefix, body, signature = token.split(".")
    except ValueError:
        raise InvalidToken("malformed access token") from None
    expected = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    # Bytes, not str: compare_digest refuses non-ASCII text, and a token is client input.
    if prefix != "xat1" or not hmac.compare_digest(signature.encode(), expected.encode()):
        raise InvalidToken("access token signature is invalid")
    try:
        payload = json.loads(_unb64(body))
        device = payload.get("dev")
        claims = TokenClaims(
            int(payload["sub"]),
            int(payload["tv"]),
            int(payload["exp"]),
            str(device) if device is not None else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
        raise InvalidToken("access token payload is invalid") from None
    if not 1 <= claims.user_id <= _MAX_USER_ID:  # no such row; PostgreSQL would refuse the query
        raise InvalidToken("access token payload is invalid")
    if claims.expires_at < time.time():
        raise TokenExpired("access token has expired; log in again")
    return claims
