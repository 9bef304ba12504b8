"""Names and JSON encoding of the stored documents, shared by the blob and the local backend."""

from __future__ import annotations

import json
import re
from datetime import date

from sync_core.errors import StateStoreError

REPORT_NAME = "last-report.json"
STATE_PREFIX = "state/"
LOG_PREFIX = "log/"
# An append is one block (blob) or one write (file), never more than this: a block's limit is 4 MiB.
LOG_APPEND_BYTES = 4 * 1024 * 1024

# State names become blob names and file names: keep them to one safe path segment.
_STATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def state_path(name: str) -> str:
    """``state/{name}.json``; raises ValueError for a name that is not one plain path segment."""
    if not _STATE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"state document name must match {_STATE_NAME.pattern} without '..', got {name!r}")
    return f"{STATE_PREFIX}{name}.json"


def log_path(day: date) -> str:
    """``log/{YYYY-MM-DD}.jsonl``: the provisioning log of one UTC day, one JSON entry a line."""
    return f"{LOG_PREFIX}{day.isoformat()}.jsonl"


def log_day(name: str) -> date | None:
    """The day of a log document's name (as log_path makes it), or None for any other name."""
    stem = name.removeprefix(LOG_PREFIX).removesuffix(".jsonl")
    if not name.startswith(LOG_PREFIX) or not name.endswith(".jsonl"):
        return None
    try:
        return date.fromisoformat(stem)
    except ValueError:
        return None


def log_chunks(lines: list[bytes]) -> list[bytes]:
    """Whole lines packed into appends of at most LOG_APPEND_BYTES each (a longer line alone)."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) > LOG_APPEND_BYTES:
            chunks.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    return [*chunks, b"".join(current)] if current else chunks


def encode_report(report: dict) -> bytes:
    # default=str: the report is saved on the failure path too, where refusing a stray datetime or
    # exception object would lose the one record of what went wrong.
    return json.dumps(report, ensure_ascii=False, indent=1, default=str).encode("utf-8")


def encode_state(doc: dict) -> bytes:
    # Strict: state is read back and acted on, so a value that does not round-trip is a bug to surface.
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_object(data: bytes, where: str) -> dict:
    """A stored JSON object; StateStoreError if ``where`` holds anything else."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateStoreError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise StateStoreError(f"{where} holds a JSON {type(value).__name__}, expected an object")
    return value
