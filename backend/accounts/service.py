"""Account use cases: create users, log in, resolve a token to a user."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from backend.accounts import repository, throttle
from backend.accounts.errors import BadCredentials, UserInactive, UsernameTaken, UserNotFound
from backend.accounts.models import Role, User
from backend.accounts.scope import UNIT_CODE
from backend.accounts.security import (
    InvalidToken,
    TokenClaims,
    hash_password,
    issue_token,
    read_token,
    verify_password,
)
from backend.audit import service as audit
from backend.core.db import transaction
from backend.core.errors import InvalidInput
from backend.core.schemas import contains_nul
from backend.core.settings import Settings

if TYPE_CHECKING:
    from backend.core.runtime import Runtime

log = logging.getLogger("xuncha.security")
MIN_PASSWORD_LENGTH = 8
RE_ENROLL = {"type": "re_enroll", "message": "enroll this device again"}
# Letters (any script), digits and . _ @ -: usable as a login on a phone keyboard, no spaces.
USERNAME = re.compile(r"[\w.@-]{1,64}")


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    user: User


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str | None = None,
    phone: str | None = None,
    unit_code: str | None = None,
    actor: str = "system",
) -> User:
    """Create an account; the password is stored only as an argon2 hash."""
    if not USERNAME.fullmatch(username):
        raise InvalidInput(
            "username must be 1-64 letters, digits or . _ @ - (no spaces or control characters)"
        )
    if display_name is not None and not 1 <= len(display_name.strip()) <= 100:
        raise InvalidInput("display name must have 1-100 characters")
    if phone is not None and len(phone) > 40:
        raise InvalidInput("phone must have at most 40 characters")
    if contains_nul([display_name, phone, password]):
        raise InvalidInput("NUL characters are not allowed")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    _check_unit(unit_code)
    if repository.by_username(session, username) is not None:
        raise UsernameTaken(f"username {username!r} is taken")
    user = repository.add(
        session,
        User(
            username=username,
            display_name=display_name or username,
            role=role.value,
            phone=phone,
            password_hash=hash_password(password),
            unit_code=unit_code,
        ),
    )
    audit.record(session, actor, "user.create", "user", user.id, username=username, role=role.value)
    return user


def login(runtime: Runtime, username: str, password: str, client: str) -> IssuedToken:
    """Exchange a username and password for a token, behind the failed-login limits.

    Unlike the other use cases this one runs its own short transactions (as photo uploads
    do, ADR 0008): the limits are checked and the password compared (argon2, ~50 ms) in a read
    transaction, so no write lock waits on the hash; a failure is then recorded — rate-limit
    buckets and, capped per minute, the audit log — in a write transaction of its own, since
    the request itself changes nothing to roll back with; a success empties the username's
    bucket and is audited. ``client`` is the client's address (throttle.client_address).
    """
    settings = runtime.settings
    limits = throttle.login_limits(settings, username, client)
    with transaction(runtime.read_sessions) as session:
        throttle.check(session, limits)
        user = repository.by_username(session, username)
        ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        reason = "unknown_user" if user is None else "wrong_password" if not ok else "inactive"
        with transaction(runtime.sessions) as session:
            locked = bool(throttle.record_failure(session, limits))
            _audit_failed_login(session, settings, user, reason, client, locked)
        raise BadCredentials("wrong username or password")
    ttl = settings.access_token_minutes * 60
    with transaction(runtime.sessions) as session:
        throttle.reset(session, limits[0])
        token = issue_token(
            settings.secret_key.get_secret_value(), user.id, user.token_version, ttl
        )
        audit.record(session, user.username, "auth.login", "user", user.id)
    return IssuedToken(token, ttl, user)


def _audit_failed_login(
    session: Session, settings: Settings, user: User | None, reason: str, client: str, locked: bool
) -> None:
    """One audit entry per failed login, up to ``failed_login_audit_per_minute`` (the chain
    serialises appends: a flood of guesses must not flood it). The typed username is not
    recorded unless it names an account: people type passwords into username fields."""
    if not throttle.take(session, throttle.audit_allowance(settings)):
        log.warning(
            "failed login not audited: more than %d this minute",
            settings.failed_login_audit_per_minute,
        )
        return
    audit.record(
        session, "anonymous", "auth.login_failed", "user", user.id if user else "unknown",
        username=user.username if user else None, reason=reason, client=client, locked=locked,
    )  # fmt: skip


def user_for_claims(session: Session, claims: TokenClaims) -> User:
    """The live account behind a token; deactivation and revocation take effect at once."""
    return live_user(repository.get(session, claims.user_id), claims)


def live_user(user: User | None, claims: TokenClaims) -> User:
    """``user`` as loaded for ``claims``, refused if gone, deactivated or its tokens revoked."""
    if user is None:
        raise InvalidToken("access token has been revoked")
    # Deactivation also bumps token_version; saying "inactive" first tells the phone why.
    if not user.is_active:
        raise UserInactive("this account is deactivated", directives=[RE_ENROLL])
    if user.token_version != claims.token_version:
        raise InvalidToken("access token has been revoked")
    return user


def claims_of(settings: Settings, token: str) -> TokenClaims:
    return read_token(settings.secret_key.get_secret_value(), token)


def get_user(session: Session, user_id: int) -> User:
    user = repository.get(session, user_id)
    if user is None:
        raise UserNotFound(f"user {user_id} does not exist")
    return user


def list_users(session: Session) -> list[User]:
    return list(repository.list_all(session))


def set_unit(session: Session, user_id: int, unit_code: str | None, actor: str) -> User:
    """Move a user to another org unit (None: city-wide); takes effect on the next request."""
    _check_unit(unit_code)
    user = get_user(session, user_id)
    before, user.unit_code = user.unit_code, unit_code
    session.flush()
    audit.record(session, actor, "user.unit", "user", user.id, before=before, after=unit_code)
    return user


def _check_unit(unit_code: str | None) -> None:
    if unit_code is not None and not UNIT_CODE.fullmatch(unit_code):
        raise InvalidInput("unit_code must be 6 (district), 9 (street) or 12 (community) digits")


def deactivate(session: Session, user_id: int, actor: str = "system") -> User:
    """Deactivate an account: every token and device of it stops working on its next request."""
    user = get_user(session, user_id)
    user.is_active = False
    user.token_version += 1
    session.flush()
    audit.record(session, actor, "user.deactivate", "user", user.id, username=user.username)
    return user
