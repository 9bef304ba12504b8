"""The run report: what was planned, what happened, as text for people and JSON for machines."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sync_core.actions import Action, Plan, UpdateUser
from sync_core.executor import Outcome
from sync_core.safety import Breaker
from sync_core.text import one_line

# summary key -> the action kind it counts
_SUMMARY_KINDS = {
    "teams_created": "create_team",
    "teams_adopted": "adopt_team",
    "teams_renamed": "rename_team",
    "teams_updated": "update_team",
    "teams_blocked": "block_team",
    "teams_unblocked": "unblock_team",
    "teams_deleted": "delete_team",
    "users_created": "create_user",
    "members_added": "add_member",
    "members_removed": "remove_member",
    "users_blocked": "block_user",
    "users_deleted": "delete_user",
}
# summary key -> the parts of a user update it counts (one update may do several things)
_SUMMARY_UPDATES = {
    "users_adopted": lambda a: a.adopt,
    "users_unblocked": lambda a: a.returned,
    "roles_changed": lambda a: a.role is not None,
}

_MARKS = {"planned": "*", "applied": "+", "failed": "!", "skipped": "-", "held": "="}

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_HELD = 0, 1, 2, 3


@dataclass
class Report:
    dry_run: bool
    trigger: str
    plan: Plan
    outcomes: list[Outcome]
    breaker: Breaker
    force: bool = False
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # What else went wrong around the run's actions (the provisioning log could not be written)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        counted = "planned" if self.dry_run else "applied"
        done = Counter(a.kind for a in self._counted(counted))
        summary = {key: done[kind] for key, kind in _SUMMARY_KINDS.items()}
        updates = [a for a in self._counted(counted) if isinstance(a, UpdateUser)]
        summary |= {key: sum(1 for a in updates if part(a)) for key, part in _SUMMARY_UPDATES.items()}
        statuses = Counter(o.status for o in self.outcomes)
        summary["failed"] = statuses["failed"]
        summary["held"] = statuses["held"]
        summary["skipped"] = statuses["skipped"]
        return summary

    def _counted(self, status: str) -> list[Action]:
        return [a for a, o in zip(self.plan.actions, self.outcomes, strict=True) if o.status == status]

    def attention(self) -> list[str]:
        """Why this run needs someone, or [] when it did everything it set out to do."""
        statuses = Counter(o.status for o in self.outcomes)
        reasons = list(self.plan.gaps)
        if statuses["failed"]:
            reasons.append(f"{statuses['failed']} action(s) failed; the next run retries them")
        if statuses["skipped"]:
            reasons.append(f"{statuses['skipped']} action(s) were skipped (the run stopped early)")
        if statuses["planned"] and not self.dry_run:
            reasons.append(f"{statuses['planned']} action(s) were never attempted; "
                           "the next run plans them again")
        if statuses["held"]:
            reasons.append(f"the circuit breaker held {statuses['held']} removal(s) back; "
                           "apply --force (or {\"force\": true}) lets them through once")
        return reasons + self.problems

    @property
    def complete(self) -> bool:
        return not self.attention()

    @property
    def exit_code(self) -> int:
        statuses = {o.status for o in self.outcomes}
        unfinished = "planned" in statuses and not self.dry_run
        if "failed" in statuses or "skipped" in statuses or unfinished or self.plan.gaps or self.problems:
            return EXIT_FAILED
        if "held" in statuses:
            return EXIT_HELD
        return EXIT_OK

    def to_dict(self, max_actions: int | None = None) -> dict[str, Any]:
        """The JSON report. ``max_actions`` keeps the stored status small on a large run: the
        actions that did not go as planned are always kept, then the first others up to the cap."""
        pairs = list(zip(self.plan.actions, self.outcomes, strict=True))
        if max_actions is not None and len(pairs) > max_actions:
            unusual = [p for p in pairs if p[1].status not in ("applied", "planned")]
            usual = [p for p in pairs if p[1].status in ("applied", "planned")]
            pairs = unusual + usual[:max(0, max_actions - len(unusual))]
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "trigger": self.trigger,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "complete": self.complete,
            "attention": self.attention(),
            "summary": self.summary(),
            "breaker": self.breaker.to_dict(),
            "notes": list(self.plan.notes),
            "stats": self.stats,
            "actions": [action_row(a, o) for a, o in pairs],
            "actions_omitted": len(self.plan.actions) - len(pairs),
        }

    def render_text(self, limit: int | None = None) -> str:
        """One line per action (the first ``limit`` of them), the notes, the breaker, the summary.
        Names, e-mails and error texts come from outside: each is escaped and cut to one line."""
        verb = "would" if self.dry_run else "did"
        lines = [f"{'Plan' if self.dry_run else 'Apply'}: {len(self.plan)} action(s)"]
        shown = list(zip(self.plan.actions, self.outcomes, strict=True))[:limit]
        for action, outcome in shown:
            mark = _MARKS[outcome.status]
            tail = f"  [{outcome.status}: {one_line(outcome.error)}]" if outcome.error else ""
            what, why = one_line(action.describe(), 600), one_line(action.reason, 600)
            lines.append(f"  {mark} {what}  ({why}){tail}")
        if len(shown) < len(self.plan):
            lines.append(f"  ... {len(self.plan) - len(shown)} more (--json or no --limit shows all)")
        lines.extend(f"  note: {one_line(note, 600)}" for note in self.plan.notes)
        lines.append(f"  {self.breaker.explain()}")
        counts = ", ".join(f"{k}={v}" for k, v in self.summary().items() if v)
        lines.append(f"Summary ({verb}): {counts or 'nothing to do'}")
        lines.extend(f"Needs attention: {one_line(reason, 600)}" for reason in self.attention())
        return "\n".join(lines)


def action_row(action: Action, outcome: Outcome) -> dict[str, Any]:
    """One action of the JSON report: what it was, why, and how it went."""
    error = {"error": outcome.error} if outcome.error else {}
    return {**action.to_dict(), "outcome": outcome.status, **error}
