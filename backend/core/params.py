"""Shared path and query parameter types, bounded so odd values are 422s, not database errors."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Integer primary keys are 32-bit on PostgreSQL; a larger id cannot exist, so it is refused
# before it reaches the database (where it would be an out-of-range error).
DB_ID_MAX = 2**31 - 1

IdPath = Annotated[int, Path(ge=1, le=DB_ID_MAX)]
