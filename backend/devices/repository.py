"""Queries of the devices domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from backend.accounts.models import User
from backend.devices.models import Device, EnrollmentCode


def add(session: Session, obj: Device | EnrollmentCode) -> None:
    session.add(obj)
    session.flush()


def get(session: Session, device_id: str) -> Device | None:
    return session.get(Device, device_id)


# Built once: every device request runs it, and building a statement costs about as much
# CPU as running this one.
_USER_AND_DEVICE = (
    select(User, Device)
    .outerjoin(Device, (Device.id == bindparam("device_id")) & (Device.user_id == User.id))
    .where(User.id == bindparam("user_id"))
)


def user_and_device(
    session: Session, user_id: int, device_id: str | None
) -> tuple[User | None, Device | None]:
    """The user and, if it is theirs, the device: one round trip for every device request."""
    row = session.execute(_USER_AND_DEVICE, {"user_id": user_id, "device_id": device_id}).first()
    return (None, None) if row is None else (row[0], row[1])


def get_for_update(session: Session, device_id: str) -> Device | None:
    """The device row, locked: concurrent pushes of one device run one after the other."""
    # populate_existing: the auth check loaded this row earlier in the request; without it the
    # lock would be taken but the stale last_mutation_id kept.
    return session.scalar(
        select(Device)
        .where(Device.id == device_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def list_devices(session: Session, user_id: int | None) -> Sequence[Device]:
    query = select(Device).order_by(Device.created_at)
    if user_id is not None:
        query = query.where(Device.user_id == user_id)
    return session.scalars(query).all()


def claim_code(session: Session, code_hash: str, device_id: str, now: datetime) -> int | None:
    """Mark an unused, unexpired code as used by ``device_id``; its user id, or None.

    One conditional UPDATE, so two phones racing with the same code cannot both win.
    """
    row = session.execute(
        update(EnrollmentCode)
        .where(
            EnrollmentCode.code_hash == code_hash,
            EnrollmentCode.used_at.is_(None),
            EnrollmentCode.expires_at > now,
        )
        .values(used_at=now, device_id=device_id)
        .returning(EnrollmentCode.user_id)
    ).first()
    return None if row is None else int(row[0])


def code_owner(session: Session, code_hash: str) -> int | None:
    return session.scalar(
        select(EnrollmentCode.user_id).where(EnrollmentCode.code_hash == code_hash)
    )


def last_mutation_id(session: Session, device_id: str) -> int:
    """Read fresh in this session's snapshot (not from an object loaded elsewhere)."""
    value = session.scalar(select(Device.last_mutation_id).where(Device.id == device_id))
    return int(value or 0)
