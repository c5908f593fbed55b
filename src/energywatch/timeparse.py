"""Parse user-facing time expressions: relative ('7d', '12h') or absolute (ISO 8601 dates)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from energywatch.errors import ConfigError

_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.I)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """'7d' → seven days ago; '2026-01-31' or a full ISO timestamp → that instant (UTC if no offset)."""
    if value is None or not value.strip():
        return None
    now = now or datetime.now(timezone.utc)
    match = _RELATIVE.match(value)
    if match:
        try:
            return now - timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
        except (OverflowError, ValueError) as exc:
            raise ConfigError(f"time {value!r} reaches before the year 1: use a smaller number or a date") from exc
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ConfigError(f"cannot read time {value!r}: use 30m, 12h, 7d, 2w or an ISO date like 2026-01-31") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def parse_until(value: str | None, now: datetime | None = None) -> datetime | None:
    """As parse_since, but a bare date means the end of that day: until=2026-11-30 keeps the 30th."""
    moment = parse_since(value, now)
    if moment is not None and value is not None and _DATE_ONLY.match(value):
        return moment + timedelta(days=1) - timedelta(microseconds=1)
    return moment


_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
