"""Paged listings (/v2/team/list, /user/list): the page and page_size query and the page body."""

from __future__ import annotations

from typing import Any

from emulators.http_base import Request
from emulators.litellm.validation import invalid, query_int


def page_query(request: Request, default_size: int) -> tuple[int, int]:
    """``page`` (>= 1) and ``page_size`` (1..100); a bad value is a 422 naming both problems."""
    errors: list[dict[str, Any]] = []
    page = query_int(request, "page", 1, errors)
    page_size = query_int(request, "page_size", default_size, errors, le=100)
    if errors:
        raise invalid(errors)
    return page, page_size


def page_body(name: str, rows: list[dict[str, Any]], total: int, page: int, page_size: int) -> dict[str, Any]:
    return {
        name: rows,
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": -(-total // page_size),
    }
