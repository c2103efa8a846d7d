"""Account use cases: create users, log in, resolve a token to a user."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from backend.accounts import repository
from backend.accounts.errors import BadCredentials, UsernameTaken
from backend.accounts.models import Role, User
from backend.accounts.security import (
    InvalidToken,
    hash_password,
    issue_token,
    read_token,
    verify_password,
)
from backend.core.errors import InvalidInput
from backend.core.settings import Settings

MIN_PASSWORD_LENGTH = 8


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
) -> User:
    """Create an account; the password is stored only as an argon2 hash."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if repository.by_username(session, username) is not None:
        raise UsernameTaken(f"username {username!r} is taken")
    return repository.add(
        session,
        User(
            username=username,
            display_name=display_name or username,
            role=role.value,
            phone=phone,
            password_hash=hash_password(password),
        ),
    )


def login(session: Session, settings: Settings, username: str, password: str) -> IssuedToken:
    user = repository.by_username(session, username)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise BadCredentials("wrong username or password")
    ttl = settings.access_token_minutes * 60
    token = issue_token(settings.secret_key.get_secret_value(), user.id, user.token_version, ttl)
    return IssuedToken(token, ttl, user)


def user_for_token(session: Session, settings: Settings, token: str) -> User:
    claims = read_token(settings.secret_key.get_secret_value(), token)
    user = repository.get(session, claims.user_id)
    if user is None or not user.is_active or user.token_version != claims.token_version:
        raise InvalidToken("access token has been revoked")
    return user
