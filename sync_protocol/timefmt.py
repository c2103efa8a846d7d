"""RFC 3339 timestamps, parsed strictly.

``datetime.fromisoformat`` accepts far more than RFC 3339 (dates without a time, week dates,
basic format without separators, naive times), and a phone implementing the spec from the
document must not find that our server accepts things its own parser would not. A naive time is
refused outright: without an offset the instant is unknowable, and device clocks are already
wrong often enough.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# RFC 3339 section 5.6; 'T'/'Z' may be lower case (section 5.6, NOTE). No leap seconds:
# datetime cannot represent them and phones do not produce them.
_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]"
    r"(?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})(?:\.(?P<frac>[0-9]{1,9}))?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))",
    re.ASCII,
)

MAX_TIMESTAMP_LENGTH = 40


def parse_rfc3339(text: str) -> datetime:
    """Parse ``2026-11-23T08:15:00+08:00`` into an aware datetime, keeping its offset.

    Fractions beyond microseconds are truncated (phones send nanoseconds sometimes). Raises
    ValueError for anything else, including naive times.
    """
    if not isinstance(text, str) or len(text) > MAX_TIMESTAMP_LENGTH:
        raise ValueError("not an RFC 3339 timestamp")
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(
            "not an RFC 3339 timestamp with an offset (e.g. 2026-11-23T08:15:00+08:00)"
        )
    if match["z"]:
        tz: timezone = UTC
    else:
        hours, minutes = int(match["oh"]), int(match["om"])
        if hours > 23 or minutes > 59:
            raise ValueError("offset out of range")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if match["sign"] == "-" else delta)
    year, month, day = (int(part) for part in match["date"].split("-"))
    micro = int((match["frac"] or "0").ljust(6, "0")[:6])
    # datetime() itself refuses day 31 of April, hour 24 and the like.
    moment = datetime(
        year, month, day, int(match["h"]), int(match["m"]), int(match["s"]), micro, tzinfo=tz
    )
    try:
        moment.astimezone(UTC)  # 0001-01-01T00:00+08:00 has no UTC equivalent
    except OverflowError:
        raise ValueError("timestamp out of range") from None
    return moment


def format_rfc3339(value: datetime) -> str:
    """Render an aware datetime as RFC 3339, keeping its offset (UTC as ``Z``).

    Used for times the device reports (``captured_at``, ``client_time``) and for the server's
    ``server_time``; refuses naive datetimes rather than guessing a zone.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("naive datetime: an offset is required")
    if offset % timedelta(minutes=1):
        # RFC 3339 offsets have no seconds; such zones only exist in historical tz data.
        value, offset = value.astimezone(UTC), timedelta(0)
    spec = "microseconds" if value.microsecond else "seconds"
    text = value.isoformat(timespec=spec)
    return text[:-6] + "Z" if offset == timedelta(0) else text
