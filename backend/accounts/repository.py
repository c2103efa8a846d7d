"""Queries of the accounts domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.accounts.models import User


def get(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def add(session: Session, user: User) -> User:
    session.add(user)
    session.flush()
    return user


def list_all(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.username)).all()
