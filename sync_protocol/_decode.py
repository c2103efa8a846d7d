"""Strict decoding of JSON values, shared by the message and mutation parsers.

Both parsers must refuse wrong types and out-of-range values with a message that names the
exact field path (``mutations[3].args.location.lat``). Unknown keys are refused in what a
phone sends (requests, mutations, their args) and ignored in what a server sends (responses),
see :class:`Fields`. The two parsers report through
different errors: a malformed envelope fails the whole request (``invalid_message``), a bad
mutation argument fails only that mutation (``invalid_args``). So every helper takes ``fail``,
a factory that turns a message into the right exception.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Literal, NoReturn

from sync_protocol.timefmt import parse_rfc3339

Fail = Callable[[str], Exception]
# What Fields.finish does with keys nobody read: see Fields.
Unknown = Literal["refuse", "ignore"]

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
# JSON numbers are doubles on phones: ids beyond 2**53 would silently lose precision there.
MAX_SAFE_INT = 2**53 - 1

_ABSENT = object()


def _raise(fail: Fail, message: str) -> NoReturn:
    raise fail(message)


class Fields:
    """A JSON object being decoded; remembers the keys read so leftovers can be refused.

    ``unknown`` says what :meth:`finish` does with keys that were never read (docs/sync-protocol.md
    section 1):

    * ``"refuse"`` (the default), for everything a phone sends: a typo in a field name is an
      error instead of a silently ignored value (section 4.1). The server must refuse it.
    * ``"ignore"``, for everything a server sends: servers may add members to responses, and
      phones, which cannot be upgraded in lockstep with the server, must skip those they do not
      know. Only unknown *names* are tolerated; known members keep all their checks, and an
      unknown *value* of a known member (a future status or directive type) is still an error.
    """

    def __init__(
        self, value: object, path: str, fail: Fail, *, unknown: Unknown = "refuse"
    ) -> None:
        if not isinstance(value, dict):
            _raise(fail, f"{path or 'body'}: expected an object")
        if unknown not in ("refuse", "ignore"):
            raise ValueError(f"unknown must be 'refuse' or 'ignore', not {unknown!r}")
        self._value: dict[str, object] = value
        self._path = path
        self._fail = fail
        self._unknown = unknown
        self._seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def has(self, key: str) -> bool:
        return key in self._value

    def raw(self, key: str, *, required: bool = True) -> object:
        """The value under ``key``; None when absent and not required."""
        self._seen.add(key)
        value = self._value.get(key, _ABSENT)
        if value is _ABSENT:
            if required:
                _raise(self._fail, f"{self.path(key)}: required")
            return None
        return value

    def text(self, key: str, *, min_len: int = 0, max_len: int, strip: bool = False) -> str:
        return check_str(self.raw(key), self.path(key), self._fail, min_len, max_len, strip)

    def opt_text(self, key: str, *, max_len: int, min_len: int = 0) -> str | None:
        value = self.raw(key, required=False)
        if value is None:
            return None
        return check_str(value, self.path(key), self._fail, min_len, max_len, False)

    def integer(self, key: str, *, lo: int, hi: int = MAX_SAFE_INT) -> int:
        return check_int(self.raw(key), self.path(key), self._fail, lo, hi)

    def opt_integer(self, key: str, *, lo: int, hi: int = MAX_SAFE_INT) -> int | None:
        value = self.raw(key, required=False)
        return None if value is None else check_int(value, self.path(key), self._fail, lo, hi)

    def number(self, key: str, *, lo: float, hi: float) -> float:
        return check_float(self.raw(key), self.path(key), self._fail, lo, hi)

    def flag(self, key: str, *, default: bool | None = None) -> bool:
        value = self.raw(key, required=default is None)
        if value is None and default is not None:
            return default
        if not isinstance(value, bool):
            _raise(self._fail, f"{self.path(key)}: expected true or false")
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        return check_choice(self.raw(key), self.path(key), self._fail, allowed)

    def uuid(self, key: str) -> str:
        return check_uuid(self.raw(key), self.path(key), self._fail)

    def time(self, key: str) -> str:
        """An RFC 3339 timestamp with offset, kept as the text that was sent."""
        value = self.text(key, min_len=1, max_len=40)
        try:
            parse_rfc3339(value)
        except ValueError as exc:
            _raise(self._fail, f"{self.path(key)}: {exc}")
        return value

    def obj(self, key: str) -> dict[str, object]:
        value = self.raw(key)
        if not isinstance(value, dict):
            _raise(self._fail, f"{self.path(key)}: expected an object")
        return value

    def opt_obj(self, key: str) -> dict[str, object] | None:
        value = self.raw(key, required=False)
        if value is None:
            return None
        if not isinstance(value, dict):
            _raise(self._fail, f"{self.path(key)}: expected an object or null")
        return value

    def array(self, key: str, *, max_items: int) -> list[object]:
        return check_list(self.raw(key), self.path(key), self._fail, max_items)

    def opt_array(self, key: str, *, max_items: int) -> list[object] | None:
        value = self.raw(key, required=False)
        return None if value is None else check_list(value, self.path(key), self._fail, max_items)

    def text_list(self, key: str, *, max_items: int, max_len: int) -> tuple[str, ...] | None:
        items = self.opt_array(key, max_items=max_items)
        if items is None:
            return None
        return tuple(
            check_str(item, f"{self.path(key)}[{i}]", self._fail, 1, max_len, False)
            for i, item in enumerate(items)
        )

    def finish(self) -> None:
        """Refuse keys that were never read, unless this object ignores unknown members."""
        if self._unknown == "ignore":
            return
        unknown = sorted((k for k in self._value if k not in self._seen), key=repr)
        if unknown:
            names = ", ".join(self.path(name) for name in unknown[:5])
            _raise(self._fail, f"unknown field(s): {names}")


def check_str(value: object, path: str, fail: Fail, min_len: int, max_len: int, strip: bool) -> str:
    """A string without NUL characters (PostgreSQL text cannot store them), length-checked.

    Lengths count Unicode code points, after stripping surrounding whitespace when ``strip``;
    the stripped text is what is returned, so whitespace-only edits are not changes.
    """
    if not isinstance(value, str):
        _raise(fail, f"{path}: expected a string")
    if "\x00" in value:
        _raise(fail, f"{path}: NUL characters are not allowed")
    if not is_utf8_encodable(value):
        # JSON "\ud800" decodes to a lone surrogate, which no database or UTF-8 stream holds.
        _raise(fail, f"{path}: lone surrogate characters are not allowed")
    if strip:
        value = value.strip()
    if not min_len <= len(value) <= max_len:
        _raise(fail, f"{path}: length must be {min_len}..{max_len} characters")
    return value


def is_utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_list(value: object, path: str, fail: Fail, max_items: int) -> list[object]:
    if not isinstance(value, list):
        _raise(fail, f"{path}: expected an array")
    if len(value) > max_items:
        _raise(fail, f"{path}: more than {max_items} items")
    return value


def check_int(value: object, path: str, fail: Fail, lo: int, hi: int) -> int:
    # bool is an int subclass in Python; JSON true is not a number.
    if not isinstance(value, int) or isinstance(value, bool):
        _raise(fail, f"{path}: expected an integer")
    if not lo <= value <= hi:
        _raise(fail, f"{path}: must be between {lo} and {hi}")
    return value


def check_float(value: object, path: str, fail: Fail, lo: float, hi: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        _raise(fail, f"{path}: expected a number")
    try:
        number = float(value)
    except OverflowError:  # a JSON integer with hundreds of digits
        _raise(fail, f"{path}: must be between {lo:g} and {hi:g}")
    # Python's json module accepts NaN and Infinity literals; the spec's JSON does not.
    if not math.isfinite(number):
        _raise(fail, f"{path}: must be a finite number")
    if not lo <= number <= hi:
        _raise(fail, f"{path}: must be between {lo:g} and {hi:g}")
    return number


def check_choice(value: object, path: str, fail: Fail, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        _raise(fail, f"{path}: must be one of {', '.join(allowed)}")
    return value


def check_uuid(value: object, path: str, fail: Fail) -> str:
    """A UUID in canonical form: lower-case, hyphenated (docs/sync-protocol.md 1).

    Only one spelling is accepted so the same record can never arrive under two ids.
    """
    if not isinstance(value, str) or UUID_RE.fullmatch(value) is None:
        _raise(fail, f"{path}: expected a lower-case hyphenated UUID")
    return value
