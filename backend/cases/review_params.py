"""Query parameters of the review API: the filters shared by list, export and case tiles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Query
from pydantic import Field

from backend.cases.models import CaseSource, CaseStatus
from backend.cases.review import CaseFilter
from backend.cases.review_errors import InvalidTimeRange
from backend.core.params import DateTimeText
from backend.grids.api_common import parse_bbox

SortName = Literal["-created_at", "created_at", "-updated_at", "step_deadline"]
FlagText = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


async def case_filter(
    status: Annotated[list[CaseStatus] | None, Query(description="Any of these")] = None,
    source: Annotated[list[CaseSource] | None, Query(description="Any of these")] = None,
    category: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{2,6}$", description="A category code; a major (05) matches all of it"
        ),
    ] = None,
    grid: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9A-Za-z._-]{1,40}$",
            description="Grid code or a prefix: district (6), street (9), community (12 digits)",
        ),
    ] = None,
    department_code: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    created_from: Annotated[
        DateTimeText | None, Query(description="RFC 3339, inclusive (created_at)")
    ] = None,
    created_to: Annotated[DateTimeText | None, Query(description="RFC 3339, exclusive")] = None,
    bbox: Annotated[
        str | None, Query(max_length=200, description="min_lon,min_lat,max_lon,max_lat (WGS-84)")
    ] = None,
    flag: Annotated[
        list[FlagText] | None,
        Query(max_length=20, description="Evidence flags; cases with any of them"),
    ] = None,
    overdue: Annotated[bool | None, Query(description="Running step past its deadline")] = None,
    q: Annotated[
        str | None,
        Query(max_length=100, description="Text in description or address (no wildcards)"),
    ] = None,
) -> CaseFilter:
    created_from, created_to = _utc(created_from), _utc(created_to)
    if created_from and created_to and created_from >= created_to:
        raise InvalidTimeRange("created_from must be before created_to")
    return CaseFilter(
        statuses=tuple(sorted({s.value for s in status or ()})),
        sources=tuple(sorted({s.value for s in source or ()})),
        category=category,
        grid=grid,
        department_code=department_code,
        created_from=created_from,
        created_to=created_to,
        bbox=parse_bbox(bbox),
        flags=tuple(sorted(set(flag or ()))),
        overdue=overdue,
        q=q or None,
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidTimeRange("created_from/created_to need a UTC offset (RFC 3339)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 lies past datetime's range in UTC
        raise InvalidTimeRange("created_from/created_to are out of range") from None


CaseFilterDep = Annotated[CaseFilter, Depends(case_filter)]
