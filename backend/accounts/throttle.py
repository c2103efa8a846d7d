"""Limits on failed attempts at the doors that take secrets: login, enrollment, device tokens.

Each limit is a bucket — a username, a client address — that may hold at most N failures in
a sliding window (``auth_window_minutes``). A door checks its buckets *before* it looks at
the secret: a full bucket answers 429 ``too_many_attempts`` with ``Retry-After`` (the seconds
until the oldest counted failure leaves the window), and the secret is not even compared, so
a refused guess teaches nothing and costs no argon2 time. A failure is added to every bucket
of its door in a short transaction of its own (the attempt's transaction rolled back with
the error); refused attempts are not added, so a client that keeps trying gets exactly N
guesses per window. A successful login empties its username's bucket, never the address's
(or one valid account would reset the address between guesses at others).

The failures live in the database (``auth_failures``), not in process memory: production runs
several uvicorn workers (and hosts), and each would otherwise grant its own N guesses. Two
concurrent failures may both pass the check (one over the limit at most per concurrent
request); that is the price of not locking. Rows older than the window are deleted whenever
a failure is recorded, so the table holds at most one window of failures. Bucket names are
hashed: the table never holds what someone typed as a username (sometimes their password) or
an address in clear. See docs/security.md and ADR 0011.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from backend.accounts.errors import TooManyAttempts
from backend.accounts.models import AuthFailure
from backend.core.db import transaction
from backend.core.problems import PROBLEM_MEDIA_TYPE, Problem
from backend.core.settings import Settings
from backend.core.types import utcnow

if TYPE_CHECKING:
    from backend.core.runtime import Runtime

log = logging.getLogger("xuncha.security")
T = TypeVar("T")

#: OpenAPI documentation of the 429 the throttled doors answer.
TOO_MANY_ATTEMPTS_RESPONSE: Final[dict[int | str, dict[str, Any]]] = {
    429: {
        "model": Problem,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        "description": "Too many failed attempts (too_many_attempts): wait Retry-After seconds",
        "headers": {
            "Retry-After": {
                "description": "Seconds until another attempt is considered",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    }
}


@dataclass(frozen=True)
class Limit:
    """At most ``max_failures`` failures in ``bucket`` within ``window``."""

    name: str  # what is counted, for logs: never the username or the secret
    bucket: str  # hex SHA-256 of the bucket's name
    max_failures: int
    window: timedelta


def _bucket(kind: str, value: str) -> str:
    return hashlib.sha256(f"xuncha-throttle\x00{kind}\x00{value}".encode()).hexdigest()


def client_address(host: str | None) -> str:
    """The bucket name of a client: its IP address; for IPv6 its /64 (one subscriber's
    network: a client can pick any address in it)."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _window(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.auth_window_minutes)


def login_limits(settings: Settings, username: str, client: str) -> tuple[Limit, Limit]:
    """(per username, per client address). Usernames are compared case-insensitively here,
    so changing the case of a name does not buy more guesses."""
    window = _window(settings)
    return (
        Limit(
            "login per username",
            _bucket("login-user", username.strip().casefold()),
            settings.login_max_failures_per_user,
            window,
        ),
        Limit(
            f"login from {client}",
            _bucket("login-ip", client),
            settings.login_max_failures_per_ip,
            window,
        ),
    )


def enroll_limits(settings: Settings, client: str) -> tuple[Limit]:
    """Enrollment codes are short secrets typed from paper: brute force is the threat."""
    return (
        Limit(
            f"enrollment from {client}",
            _bucket("enroll-ip", client),
            settings.enroll_max_failures_per_ip,
            _window(settings),
        ),
    )


def device_token_limits(settings: Settings, client: str) -> tuple[Limit]:
    """Per address only: a per-device bucket would let anyone who learnt a device id lock
    that phone out, and the 256-bit device secret needs no help against guessing."""
    return (
        Limit(
            f"device token from {client}",
            _bucket("device-token-ip", client),
            settings.device_token_max_failures_per_ip,
            _window(settings),
        ),
    )


def audit_allowance(settings: Settings) -> Limit:
    """How many failed logins per minute go into the audit log (so it cannot be flooded)."""
    return Limit(
        "failed-login audit entries",
        _bucket("audit", "auth.login_failed"),
        settings.failed_login_audit_per_minute,
        timedelta(minutes=1),
    )


def _recent(session: Session, limit: Limit, now: datetime) -> list[datetime]:
    """The newest ``max_failures`` failures of the bucket within its window, newest first."""
    return list(
        session.scalars(
            select(AuthFailure.at)
            .where(AuthFailure.bucket == limit.bucket, AuthFailure.at > now - limit.window)
            .order_by(AuthFailure.at.desc())
            .limit(limit.max_failures)
        )
    )


def _count(session: Session, limit: Limit, now: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AuthFailure)
            .where(AuthFailure.bucket == limit.bucket, AuthFailure.at > now - limit.window)
        )
        or 0
    )


def retry_after(session: Session, limit: Limit, now: datetime) -> int | None:
    """Seconds until the bucket takes another attempt; None if it takes one now."""
    times = _recent(session, limit, now)
    if len(times) < limit.max_failures:
        return None
    # The oldest of the newest max_failures must leave the window first.
    frees = times[-1] + limit.window
    return max(1, math.ceil((frees - now).total_seconds()))


def check(session: Session, limits: Sequence[Limit], now: datetime | None = None) -> None:
    """429 ``too_many_attempts`` if any bucket is full (before the secret is looked at)."""
    now = now or utcnow()
    waits = [w for w in (retry_after(session, limit, now) for limit in limits) if w is not None]
    if waits:
        wait = max(waits)
        raise TooManyAttempts(
            f"too many failed attempts; try again in {wait} s",
            headers={"Retry-After": str(wait)},
            retry_after=wait,
        )


def record_failure(
    session: Session, limits: Sequence[Limit], now: datetime | None = None
) -> list[Limit]:
    """Count a failure in every bucket; the buckets that are full now (just locked)."""
    now = now or utcnow()
    session.add_all(AuthFailure(bucket=limit.bucket, at=now) for limit in limits)
    session.flush()
    oldest = max(limit.window for limit in limits)
    session.execute(delete(AuthFailure).where(AuthFailure.at <= now - oldest))
    full = [limit for limit in limits if _count(session, limit, now) >= limit.max_failures]
    for limit in full:
        log.warning(
            "%s: %d failed attempts within %d min; refusing further attempts for a while",
            limit.name,
            limit.max_failures,
            int(limit.window.total_seconds() // 60),
        )
    return full


def reset(session: Session, limit: Limit) -> None:
    """Forget a bucket's failures (a successful login, for its username's bucket)."""
    session.execute(delete(AuthFailure).where(AuthFailure.bucket == limit.bucket))


def take(session: Session, limit: Limit, now: datetime | None = None) -> bool:
    """Use one unit of an allowance (e.g. audit entries per minute); False when spent."""
    now = now or utcnow()
    if _count(session, limit, now) >= limit.max_failures:
        return False
    session.add(AuthFailure(bucket=limit.bucket, at=now))
    session.flush()
    return True


def guarded(
    runtime: Runtime,
    limits: Sequence[Limit],
    attempt: Callable[[Session], T],
    failures: tuple[type[BaseException], ...],
) -> T:
    """Run ``attempt`` in its own write transaction behind ``limits``.

    The buckets are checked first (429 when full); an exception of ``failures`` (a wrong
    secret) is counted, after the attempt's transaction rolled back, in a transaction of its
    own, and raised again. Other errors (e.g. a revoked device) are not counted.
    """
    with transaction(runtime.read_sessions) as session:
        check(session, limits)
    try:
        with transaction(runtime.sessions) as session:
            return attempt(session)
    except failures:
        with transaction(runtime.sessions) as session:
            record_failure(session, limits)
        raise
