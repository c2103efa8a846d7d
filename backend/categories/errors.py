"""Errors of the categories domain (stable codes; see docs/api-errors.md)."""

from backend.core.errors import InvalidInput, NotFound


class CategoryNotFound(NotFound):
    code = "category_not_found"


class CategoryFileInvalid(InvalidInput):
    """The category file is refused as a whole; ``problems`` lists every problem found."""

    code = "category_file_invalid"
    title = "The category file is not valid; nothing was imported"
