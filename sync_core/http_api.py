"""The HTTP trigger's contract, kept free of azure.functions so it is easy to test and reuse.

POST /api/sync takes an optional JSON object: {"dry_run": bool, "force": bool, "group_ids": [guid]}.
Anything else is refused with a message naming the problem, and nothing is applied; so is a body
nested deeper than such an object can be (MAX_DEPTH), before it is parsed.
GET /api/sync/log takes ?user=EMAIL|ID&team=ALIAS|ID&since=7d, each optional.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from sync_core.errors import RequestError
from sync_core.provisioning_log import Query, parse_since
from sync_core.runner import RunRequest
from sync_core.settings import GUID_RE
from sync_core.text import one_line

MAX_DEPTH = 4  # {"group_ids": [...]} is 2 deep


def _guid(value: str) -> str:
    if not GUID_RE.fullmatch(value):
        raise ValueError(f"{one_line(repr(value), 80)} is not a group object id (a GUID)")
    return value.lower()


class SyncBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: bool = False
    force: bool = False
    group_ids: list[Annotated[str, AfterValidator(_guid)]] | None = None


def parse_sync_body(body: bytes, *, trigger: str = "http") -> RunRequest:
    """A RunRequest from the request body, or RequestError naming the problem."""
    if not body.strip():
        return RunRequest(dry_run=False, trigger=trigger)
    if nesting_depth(body) > MAX_DEPTH:
        raise RequestError(f"the body is nested more than {MAX_DEPTH} levels deep; "
                           "expected a JSON object such as {\"dry_run\": true}")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RequestError("the body must be a JSON object such as {\"dry_run\": true}")
    try:
        parsed = SyncBody.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        problem = "is not a known field (dry_run, force, group_ids)" if error["type"] == "extra_forbidden" \
            else error["msg"].removeprefix("Value error, ")
        raise RequestError(f"{where}: {problem}") from None
    if parsed.group_ids is not None and not parsed.group_ids:
        raise RequestError("group_ids: must name at least one group (omit it to sync all groups)")
    groups = frozenset(parsed.group_ids) if parsed.group_ids is not None else None
    return RunRequest(dry_run=parsed.dry_run, force=parsed.force, group_ids=groups, trigger=trigger)


def nesting_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text, counted without parsing it (a parser
    recurses, and a body nested 100,000 deep exhausts the stack). Brackets in strings do not count."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if escaped:
            escaped = False
        elif in_string:
            escaped = byte == 0x5C  # backslash
            in_string = byte != 0x22  # a quote ends the string
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def parse_log_query(params: Mapping[str, str]) -> Query:
    """The provisioning log query of GET /api/sync/log, or RequestError naming the problem."""
    unknown = sorted(set(params) - {"user", "team", "since"})
    if unknown:
        raise RequestError(f"{', '.join(unknown)}: not a known parameter (user, team, since)")
    try:
        since = parse_since(params["since"]) if params.get("since") else None
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    return Query(user=params.get("user") or None, team=params.get("team") or None, since=since)
