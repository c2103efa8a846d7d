"""Shared path and query parameter types, bounded so odd values are 422s, not database errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated

from fastapi import Path
from pydantic import BeforeValidator

# Integer primary keys are 32-bit on PostgreSQL; a larger id cannot exist, so it is refused
# before it reaches the database (where it would be an out-of-range error).
DB_ID_MAX = 2**31 - 1

IdPath = Annotated[int, Path(ge=1, le=DB_ID_MAX)]

_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = r"[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"


def _text_only(pattern: str, example: str) -> Callable[[object], object]:
    """Pydantic's lax mode also reads numbers (0, "0.5", "1700000000") as Unix timestamps; the
    API documents RFC 3339 text, so anything else is a validation error."""
    shape = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, str) and not shape.fullmatch(value):
            raise ValueError(f"expected RFC 3339 text such as {example}")
        if isinstance(value, int | float):
            raise ValueError(f"expected RFC 3339 text such as {example}, not a number")
        return value

    return check


# format: date-time. A missing offset passes here: endpoints answer that with their own code.
DateTimeText = Annotated[
    datetime, BeforeValidator(_text_only(_DATE + _TIME, "2026-11-23T09:00:00+08:00"))
]
# format: date.
DateText = Annotated[date, BeforeValidator(_text_only(_DATE, "2026-11-23"))]
