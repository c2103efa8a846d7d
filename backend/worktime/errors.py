"""Errors of the working-calendar domain (stable codes; see docs/api-errors.md)."""

from backend.core.errors import InvalidInput


class CalendarFileInvalid(InvalidInput):
    """The calendar file is refused as a whole; ``problems`` lists every problem found."""

    code = "calendar_file_invalid"
    title = "The calendar file is not valid; nothing was changed"
