"""Names and JSON encoding of the stored documents, shared by the blob and the local backend."""

from __future__ import annotations

import json
import re

from sync_core.errors import StateStoreError

REPORT_NAME = "last-report.json"
STATE_PREFIX = "state/"

# State names become blob names and file names: keep them to one safe path segment.
_STATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def state_path(name: str) -> str:
    """``state/{name}.json``; raises ValueError for a name that is not one plain path segment."""
    if not _STATE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"state document name must match {_STATE_NAME.pattern} without '..', got {name!r}")
    return f"{STATE_PREFIX}{name}.json"


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
