"""Timestamps as senders write them, read into UTC.

ISO 8601 in any of its common forms (with or without a zone; UTC when there is none),
and Go's `time.Time` string form, which Segment's own deletion requests carry:
`2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# date, time, fraction, offset, zone name, monotonic clock reading (ignored)
_GO_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))? ([+-])(\d{2})(\d{2})(?: [A-Za-z0-9_+-]+)?"
    r"(?: m=[+-]\d+(?:\.\d+)?)?"
)
_LONGEST = 64  # no timestamp form is longer; a longer string is not parsed at all


def parse_timestamp(text: str) -> datetime | None:
    """The moment `text` names, in UTC; None when it names none."""
    text = text.strip()
    if not text or len(text) > _LONGEST:
        return None
    try:
        moment: datetime | None = datetime.fromisoformat(text)
    except ValueError:
        moment = _go_time(text)
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
        return None


def call_time(
    original: datetime | None, sent_at: datetime | None, received: datetime, *, correct: bool
) -> datetime:
    """When the call happened: its original time, corrected for the device's clock when
    `correct` as Segment does (received - (sentAt - original)), else when we received it."""
    if original is None:
        return received
    if correct and sent_at is not None:
        try:
            return received - (sent_at - original)
        except OverflowError:  # a correction past the calendar: the clamp deals with it
            return original
    return original


def format_timestamp(moment: datetime) -> str:
    """The one form the receiver writes: UTC, microseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _go_time(text: str) -> datetime | None:
    match = _GO_TIME.fullmatch(text)
    if match is None:
        return None
    day, clock, fraction, sign, hours, minutes = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    try:
        zone = timezone(-offset if sign == "-" else offset)
        return datetime.fromisoformat(f"{day}T{clock}.{micros}").replace(tzinfo=zone)
    except ValueError:
        return None
