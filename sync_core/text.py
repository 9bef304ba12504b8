"""Outside text made inert for line-oriented output (the text plan, report lines, logs).

Names, e-mails, aliases and error bodies come from Entra and LiteLLM: a line break or a terminal
control sequence in one must not print a forged plan line or rewrite the screen.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators and bidi overrides.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
LIMIT = 300


def one_line(value: object, limit: int = LIMIT) -> str:
    """``value`` on one line, control characters escaped (a line break shows as ``\\n``), cut to
    ``limit`` characters."""
    text = _UNSAFE.sub(_escape, str(value))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return named.get(char) or f"\\u{ord(char):04x}"
