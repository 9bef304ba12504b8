"""The one redaction every error text leaving the process goes through: the CLI's output, log
records, the HTTP trigger's bodies, the timer's exception and doctor's lines.

It removes the secret values the settings hold (registered as settings are read, so a value that
the settings refuse is removed too) and, whatever they are, URL credentials, SAS signatures,
account keys and bearer tokens. A secret is also removed in the forms an error quotes it in (as a
Python literal, with escapes) and in the pieces a control character splits it into.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sync_core.text import one_line

MASK = "***"
# Settings whose whole value is secret, and settings whose value may carry credentials.
SECRET_SETTINGS = ("LITELLM_MASTER_KEY", "ENTRA_CLIENT_SECRET", "GRAPH_ACCESS_TOKEN", "AzureWebJobsStorage")
# Shorter values and pieces are not masked: they would mask ordinary words (and guard nothing).
MIN_LENGTH = 6
_PATTERNS = (
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@"), rf"\1{MASK}@"),  # https://user:pass@host
    (re.compile(r"(?i)\b(sig|AccountKey|SharedAccessSignature|SharedAccessKey)=[^&;\s'\"]*"), rf"\1={MASK}"),
    (re.compile(r"(?i)\b(Bearer)\s+[^\s'\",]+"), rf"\1 {MASK}"),
)
_secrets: set[str] = set()


def remember(values: Iterable[str]) -> None:
    """Register secret values, with the forms and pieces an error may quote them in."""
    for value in values:
        value = value.strip()
        if len(value) < MIN_LENGTH:
            continue
        literal = repr(value)[1:-1]
        forms = {value, literal, value.encode("unicode_escape").decode("ascii")}
        forms |= {p for p in re.split(r"[^\x20-\x7e]+|\\[nrtx]", literal) if len(p) >= MIN_LENGTH}
        forms |= {p for p in re.split(r"[^\x20-\x7e]+", value) if len(p) >= MIN_LENGTH}
        _secrets.update(f for f in forms if len(f) >= MIN_LENGTH)


def remember_settings(env: Mapping[str, str]) -> None:
    """Register the secret settings of ``env`` (before they are validated)."""
    remember(env.get(name) or "" for name in SECRET_SETTINGS)


def redact(text: object) -> str:
    """``text`` with every registered secret and every credential-looking part masked."""
    result = str(text)
    for secret in sorted(_secrets, key=len, reverse=True):  # a whole value before its pieces
        if secret in result:
            result = result.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        result = pattern.sub(replacement, result)
    return result


def error_line(exc: BaseException) -> str:
    """An exception as one redacted line: what a caller shows for an error it did not expect."""
    return one_line(redact(str(exc) or type(exc).__name__), limit=2000)  # hints come last: keep them


class _Redacted(logging.LogRecord):
    """A log record whose message comes out redacted and on one line, and its traceback redacted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.exc_info:  # formatters use exc_text when it is set
            self.exc_text = redact(logging.Formatter().formatException(self.exc_info))

    def getMessage(self) -> str:
        return one_line(redact(super().getMessage()), limit=2000)


def install_log_redaction() -> None:
    """Make every log record of the process a redacted one."""
    logging.setLogRecordFactory(_Redacted)
