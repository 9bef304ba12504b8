"""Retry-After as Graph and LiteLLM send it: seconds.

Graph has been seen sending two values ("30,120"); the first counts. An HTTP date is not read:
the caller falls back to a delay of its own.
"""

from __future__ import annotations


def retry_after_seconds(value: str | None) -> float | None:
    """The delay a Retry-After header asks for, or None when it is missing or not a number."""
    if not value:
        return None
    try:
        return max(0.0, float(value.split(",")[0]))
    except ValueError:
        return None
