"""Base class for request bodies: text that PostgreSQL cannot store is refused up front."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, field_validator


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (list, tuple)):
        return any(contains_nul(v) for v in value)
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    return False


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank (only white space)")
    return value


# Text that must say something: refused when it is only white space (ideographic spaces
# included), which would otherwise be stored as an empty name or description.
NonBlankText = Annotated[str, AfterValidator(_not_blank)]


class InputModel(BaseModel):
    """Request bodies inherit this: a NUL character is a 422, on every profile alike.

    PostgreSQL text cannot hold NUL and SQLite can, so without this the same request would
    be stored on one profile and fail on the other.
    """

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError("NUL characters are not allowed")
        return value
