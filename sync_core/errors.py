"""The one exception tree of sync_core.

    SyncError                      anything this package raises on purpose
    ├── ConfigError                settings are missing or malformed (exit code 2, HTTP 500);
    │                              names every such setting, never echoes a secret value
    ├── SourceError                Microsoft Graph could not be read (completely)
    ├── TargetError                the LiteLLM admin API refused or failed a call
    │   └── TargetAuthError        the master key was rejected (401/403): nothing can work
    ├── RequestError               a run request names something invalid (e.g. a group that is
    │                              not assigned to the app): HTTP 400, nothing applied
    ├── LockBusy                   another applying run holds the run lock
    ├── NeedsAttention             a timer run ended with exit code 1 or 3 (its report is saved)
    └── StateStoreError            the lock/status/state storage failed

Callers catch at the level they can act on: the CLI maps ConfigError to exit 2, the HTTP
trigger maps LockBusy to 409, and per-action TargetErrors become failed actions in the report.
"""

from __future__ import annotations

from datetime import datetime


class SyncError(Exception):
    """Base class: every error sync_core raises on purpose."""


class ConfigError(SyncError):
    """Settings are missing or malformed. The message names each setting and the expected form, one
    line per problem; ``setting`` and ``problem`` are the first of ``problems``."""

    def __init__(self, setting: str, problem: str, *more: tuple[str, str]) -> None:
        self.setting = setting
        self.problem = problem
        self.problems = [(setting, problem), *more]
        lines = [f"{name}: {what}" for name, what in self.problems]
        super().__init__(lines[0] if not more else
                         f"{len(lines)} problems:\n" + "\n".join(f"  {line}" for line in lines))


class SourceError(SyncError):
    """Microsoft Graph could not be read, or not completely."""


class TargetError(SyncError):
    """A LiteLLM admin API call failed. ``call`` is e.g. 'POST /team/member_add'."""

    def __init__(self, call: str, status: int | None, message: str) -> None:
        self.call = call
        self.status = status
        self.message = message
        where = f"{call} -> {status}" if status is not None else call
        super().__init__(f"{where}: {message}")


class TargetAuthError(TargetError):
    """LiteLLM rejected the master key; no call can succeed."""


class RequestError(SyncError):
    """A run request names something invalid; nothing was applied."""


class LockBusy(SyncError):
    """Another applying run holds the run lock."""

    def __init__(self, started_at: datetime | None, trigger: str | None) -> None:
        self.started_at = started_at
        self.trigger = trigger
        since = started_at.isoformat() if started_at else "an unknown time"
        super().__init__(f"another sync run ({trigger or 'unknown trigger'}) has been running since {since}")


class StateStoreError(SyncError):
    """The lock, status or state storage failed."""


class NeedsAttention(SyncError):
    """A run that someone has to look at: failed actions, unread groups, held removals. Raised by the
    timer after the report is saved, so the platform counts the invocation as failed."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("the sync run needs attention: " + "; ".join(reasons))
