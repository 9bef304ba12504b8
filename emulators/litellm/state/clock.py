"""Timestamps as LiteLLM's Postgres shows them, and the budget reset times derived from them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta


def db_now() -> datetime:
    # Postgres keeps milliseconds (timestamp(3)), so the API never shows more
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def fmt_time(moment: datetime) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"


def parse_time(text: str) -> datetime:
    # the API omits a zero fraction ("...:02Z"), so these strings do not sort as text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def budget_reset_at(duration: str | None, now: datetime | None = None) -> str | None:
    """An approximation of LiteLLM's standardized reset times (midnight, Monday, month start)."""
    if not duration:
        return None
    now = now or db_now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    match = re.fullmatch(r"(\d+)(mo|[smhdw])", duration.strip())
    if match is None:
        return fmt_time(midnight + timedelta(days=1))
    value, unit = int(match.group(1)), match.group(2)
    if unit == "mo" or (unit == "d" and value == 30):
        months = value if unit == "mo" else 1
        total = now.year * 12 + now.month - 1 + months
        return fmt_time(midnight.replace(year=total // 12, month=total % 12 + 1, day=1))
    if (unit == "d" and value == 7) or (unit == "w" and value == 1):
        return fmt_time(midnight + timedelta(days=7 - now.weekday()))
    if unit in ("d", "w"):
        return fmt_time(midnight + timedelta(days=value * (7 if unit == "w" else 1)))
    step = timedelta(**{{"h": "hours", "m": "minutes", "s": "seconds"}[unit]: value})
    boundary = midnight
    while boundary <= now:
        boundary += step
    return fmt_time(boundary)
