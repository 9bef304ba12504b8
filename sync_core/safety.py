"""The deletion circuit breaker: a run that would remove too much holds its removals back.

Removals are member removals plus team blocks and deletes. The percentage is taken of the
role-"user" memberships in managed teams before the run, and only once there are at least
MIN_BASE_FOR_PERCENT of them: on a tiny tenant one removal is already a large percentage.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync_core.actions import Plan

MIN_BASE_FOR_PERCENT = 20


@dataclass(frozen=True)
class Breaker:
    removals: int
    max_removals: int
    percent: float
    max_percent: float
    tripped: bool

    def explain(self) -> str:
        verdict = "TRIPPED: removals are held back" if self.tripped else "ok"
        return (f"circuit breaker {verdict} ({self.removals} removals, limit {self.max_removals}; "
                f"{self.percent:.1f}% of managed memberships, limit {self.max_percent:g}%)")

    def to_dict(self) -> dict[str, object]:
        return {"tripped": self.tripped, "removals": self.removals, "max_removals": self.max_removals,
                "percent": round(self.percent, 2), "max_percent": self.max_percent}


def check(plan: Plan, *, max_removals: int, max_percent: float) -> Breaker:
    removals = len(plan.removals)
    base = plan.managed_memberships
    percent = 100.0 * removals / base if base else 0.0
    over_percent = base >= MIN_BASE_FOR_PERCENT and percent > max_percent
    return Breaker(removals, max_removals, percent, max_percent, removals > max_removals or over_percent)
