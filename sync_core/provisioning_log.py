"""The provisioning log: what every applying run did, to whom, why, and how it went.

One JSON entry a line per action of an applying run (applied, failed, held or skipped), appended to
the log of the day in the sync's own state storage (an append blob in Azure, ``.sync-state/log/``
for the CLI). An entry is the report's action row (type, ids, reason, outcome, error) plus the
run's ``time``, ``run_id`` and ``trigger``, and the user's e-mail and the team's alias where the
action knows them. Days older than SYNC_LOG_RETENTION_DAYS are deleted by the next applying run.

Writing the log never undoes or stops a run's writes to LiteLLM: they are done by the time it is
written, and a failure to write it becomes one of the report's attention reasons.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sync_core.actions import Action
from sync_core.errors import StateStoreError
from sync_core.report import Report, action_row
from sync_core.state.base import StateBackend

log = logging.getLogger("sync_core.provisioning_log")
_SINCE = re.compile(r"(\d{1,5})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d`` or ``2w``; ValueError naming the expected form otherwise."""
    match = _SINCE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"since: expected a number and a unit (m, h, d or w) such as 7d, got {text!r}")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def entries(report: Report) -> list[dict[str, Any]]:
    """The log entries of an applying run: one per action, in the order they were planned."""
    run = {"time": (report.finished_at or report.started_at).isoformat(), "run_id": report.run_id,
           "trigger": report.trigger}
    return [{**run, **_names(action), **action_row(action, outcome)}
            for action, outcome in zip(report.plan.actions, report.outcomes, strict=True)]


async def record(state: StateBackend, report: Report, retention_days: int) -> list[str]:
    """Append the run's entries and prune days past retention; what went wrong, as attention reasons."""
    if report.dry_run:
        return []
    now = report.finished_at or datetime.now(UTC)
    problems = []
    lines = [json.dumps(entry, ensure_ascii=False, default=str).encode() + b"\n" for entry in entries(report)]
    try:
        if lines:
            await state.append_log(now.date(), lines)
    except StateStoreError as exc:
        log.error("provisioning log not written: %s", exc)
        problems.append(f"the provisioning log could not be written ({exc}); this run's "
                        f"{len(lines)} action(s) are in its report only")
    try:
        await state.prune_log(now.date() - timedelta(days=retention_days))
    except StateStoreError as exc:
        log.error("provisioning log not pruned: %s", exc)
        problems.append(f"provisioning logs older than {retention_days} days could not be deleted ({exc})")
    return problems


@dataclass(frozen=True)
class Query:
    user: str | None = None  # a user id or e-mail
    team: str | None = None  # a team id or alias
    since: timedelta | None = None  # None: everything kept

    def matches(self, entry: dict[str, Any]) -> bool:
        return (_one_of(self.user, entry.get("user_id"), entry.get("user_email"))
                and _one_of(self.team, entry.get("team_id"), entry.get("team_alias")))


async def read(state: StateBackend, query: Query, now: datetime | None = None) -> list[dict[str, Any]]:
    """The entries matching ``query``, oldest first."""
    now = now or datetime.now(UTC)
    cutoff = now - query.since if query.since is not None else datetime.min.replace(tzinfo=UTC)
    return [entry for time, entry in _parse(await state.read_log(cutoff.date()))
            if time >= cutoff and query.matches(entry)]


def render_text(found: list[dict[str, Any]]) -> str:
    """One line an entry: time, run, trigger, outcome, type, who, team, reason, error."""
    lines = []
    for e in found:
        who = e.get("user_email") or e.get("user_id") or ""
        team = e.get("team_alias") or e.get("team_id")
        what = " ".join(part for part in (e.get("type"), who, f"team {team!r}" if team else "") if part)
        error = f" [error: {e['error']}]" if e.get("error") else ""
        lines.append(f"{e.get('time')} {str(e.get('run_id'))[:8]} {e.get('trigger')} "
                     f"{e.get('outcome')}: {what} ({e.get('reason')}){error}")
    return "\n".join(lines) if lines else "no entries"


def _names(action: Action) -> dict[str, str]:
    """The user's e-mail and the team's alias, where the action knows them (for people reading)."""
    names = {"user_email": getattr(action, "email", None),
             "team_alias": getattr(action, "team_alias", None) or getattr(action, "alias", None)}
    return {key: value for key, value in names.items() if isinstance(value, str) and value}


def _one_of(wanted: str | None, *values: Any) -> bool:
    if wanted is None:
        return True
    return any(isinstance(v, str) and v.casefold() == wanted.casefold() for v in values)


def _parse(days: Iterable[bytes]) -> list[tuple[datetime, dict[str, Any]]]:
    """Each entry with its time. A line that is not one is skipped with a warning, not fatal: the
    rest of the log stays readable."""
    parsed = []
    for day in days:
        for number, line in enumerate(day.splitlines(), 1):
            try:
                entry = json.loads(line)
                time = datetime.fromisoformat(entry["time"])
            except (ValueError, TypeError, KeyError):
                log.warning("provisioning log: line %d of a day's log is not an entry; skipped", number)
                continue
            parsed.append((time if time.tzinfo else time.replace(tzinfo=UTC), entry))
    return parsed
