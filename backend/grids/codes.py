"""Grid codes in the GB/T 30428.1 shape, with the pattern as configuration.

A code is a 6-digit county-level division code (GB/T 2260) + 3-digit street + 3-digit
community + a grid sequence. Parent codes are the code's prefixes up to the end of each named
group, so ``310101 001 002 07`` has district ``310101``, street ``310101001`` and community
``310101001002``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backend.core.errors import InvalidInput

REQUIRED_GROUPS = ("district", "street", "community")


class InvalidGridCode(InvalidInput):
    code = "invalid_grid_code"
    title = "Grid code does not follow the configured pattern"


class InvalidGridCodePattern(InvalidInput):
    code = "invalid_grid_code_pattern"
    title = "The configured grid code pattern is unusable"


@dataclass(frozen=True, slots=True)
class GridCodeParts:
    code: str
    district_code: str
    street_code: str
    community_code: str


class GridCodeScheme:
    """Parses grid codes with a regular expression holding the named parent groups."""

    def __init__(self, pattern: str) -> None:
        try:
            self._regex = re.compile(pattern)
        except re.error as exc:
            raise InvalidGridCodePattern(f"grid code pattern {pattern!r}: {exc}") from exc
        missing = [g for g in REQUIRED_GROUPS if g not in self._regex.groupindex]
        if missing:
            raise InvalidGridCodePattern(
                f"grid code pattern {pattern!r} lacks the named groups {', '.join(missing)}"
            )
        self.pattern = pattern

    def parse(self, code: str) -> GridCodeParts:
        match = self._regex.fullmatch(code)
        if match is None:
            raise InvalidGridCode(
                f"grid code {code!r} does not match the pattern {self.pattern}", grid_code=code
            )
        return GridCodeParts(
            code=code,
            district_code=code[: match.end("district")],
            street_code=code[: match.end("street")],
            community_code=code[: match.end("community")],
        )

    def is_valid(self, code: str) -> bool:
        return self._regex.fullmatch(code) is not None
