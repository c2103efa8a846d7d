"""The working calendar: read and used by everyone signed in, replaced by admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from backend.accounts.deps import AdminUser, CurrentUser
from backend.core.deps import SessionDep
from backend.core.errors import InvalidInput, PayloadTooLarge
from backend.core.params import DateTimeText
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute
from backend.worktime import service
from backend.worktime.calendar import parse_duration
from backend.worktime.document import MAX_BYTES

router = APIRouter(
    route_class=OneThreadRoute,
    prefix="/api/v1/calendar",
    tags=["calendar"],
    responses=PROBLEM_RESPONSES,
)
MEDIA = {"yaml": "application/yaml", "json": "application/json"}


class DeadlineOut(BaseModel):
    start: datetime
    limit: str
    working_minutes: int
    deadline: datetime = Field(description="When that much working time has passed")


@router.get(
    "",
    operation_id="getCalendar",
    response_class=Response,
    responses={200: {"content": {m: {} for m in MEDIA.values()}, "description": "The file"}},
)
def get_calendar(
    session: SessionDep,
    _user: CurrentUser,
    fmt: Annotated[Literal["yaml", "json"], Query(alias="format")] = "json",
) -> Response:
    """The working calendar as an importable file (office hours, weekend, holidays, 调休)."""
    return Response(service.export(session, fmt), media_type=MEDIA[fmt])


@router.get("/deadline", operation_id="calendarDeadline")
def deadline(
    session: SessionDep,
    _user: CurrentUser,
    start: Annotated[DateTimeText, Query(description="RFC 3339 with offset")],
    limit: Annotated[str, Query(description="Working time: 30m, 4h, 7d", max_length=8)],
) -> DeadlineOut:
    """When a time limit that starts at ``start`` runs out on the working calendar."""
    if start.tzinfo is None:
        raise InvalidInput("start must carry a UTC offset, e.g. 2026-11-23T09:00:00+08:00")
    calendar = service.current(session)
    try:
        minutes = parse_duration(limit, calendar.day_minutes)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    try:
        end = calendar.deadline(start, minutes)
    except (ValueError, OverflowError):  # no end within ten years, or past the year 9999
        raise InvalidInput(f"{limit} from {start.isoformat()} ends beyond the calendar") from None
    return DeadlineOut(start=start, limit=limit, working_minutes=minutes, deadline=end)


@router.post("/import", operation_id="importCalendar")
def import_calendar(
    session: SessionDep,
    admin: AdminUser,
    file: Annotated[UploadFile, File(description="YAML or JSON calendar (docs/calendar.md)")],
) -> Response:
    """Replace the working calendar; refused whole on any problem (422, all listed)."""
    data = file.file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"calendar files are limited to {MAX_BYTES} bytes")
    service.replace(session, data, admin.username)
    return Response(service.export(session, "json"), media_type=MEDIA["json"])
