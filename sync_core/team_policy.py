"""Team settings as code: which LiteLLM team fields each assigned group's team gets, and from which rule.

Pure: the file is parsed and checked in team_policy_file.py; the planner asks this module what a
team should have and how that differs from what it has. Rules apply in file order, later rules win
field by field (``metadata`` key by key). ``enforce`` rules hold on every run; ``create`` rules
only when the sync creates the team. A field no rule names is never touched.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Models that are LiteLLM's own keywords in a team's model list, never a served model's name.
SPECIAL_MODELS = frozenset({"all-proxy-models", "no-default-models"})
# The team's member budget (a budget row named by metadata.team_member_budget_id): field -> budget column.
MEMBER_BUDGET_FIELDS = {
    "team_member_budget": "max_budget",
    "team_member_budget_duration": "budget_duration",
    "team_member_rpm_limit": "rpm_limit",
    "team_member_tpm_limit": "tpm_limit",
}
# Fields LiteLLM keeps inside the team's metadata (all three need a licence on LiteLLM OSS).
METADATA_FIELDS = ("tags", "guardrails", "team_member_key_duration")
MEMBER_BUDGET_ID = "team_member_budget_id"


def _lowered(before: Any, after: Any) -> bool:
    """A limit narrows when it is set where there was none (None: unlimited) or made smaller."""
    return after is not None and (before is None or after < before)


def _models_removed(before: Any, after: Any) -> bool:
    """A model list narrows when a model goes; an empty list gives every model the proxy serves."""
    if not after:
        return False
    return not before or bool(set(before) - set(after))


@dataclass(frozen=True)
class FieldKind:
    same: Callable[[Any, Any], bool] = lambda a, b: a == b
    narrows: Callable[[Any, Any], bool] | None = None  # (before, after): the team's access shrinks


def _same_set(a: Any, b: Any) -> bool:
    return a is not None and b is not None and set(a) == set(b)


def _same_number(a: Any, b: Any) -> bool:
    return a is not None and b is not None and float(a) == float(b)


_SET = FieldKind(_same_set)
_LIMIT = FieldKind(_same_number, _lowered)
_PLAIN = FieldKind()
# Every field a rule may set, under LiteLLM's own name (the file's schema is team_policy_file.py).
FIELDS: dict[str, FieldKind] = {
    "models": FieldKind(_same_set, _models_removed),
    "max_budget": _LIMIT,
    "soft_budget": FieldKind(_same_number),  # an alert threshold: it grants nothing
    "budget_duration": _PLAIN,
    "tpm_limit": _LIMIT,
    "rpm_limit": _LIMIT,
    "team_member_budget": _LIMIT,
    "team_member_budget_duration": _PLAIN,
    "team_member_rpm_limit": _LIMIT,
    "team_member_tpm_limit": _LIMIT,
    "team_member_key_duration": _PLAIN,
    "tags": _SET,
    "guardrails": _SET,
    "model_aliases": _PLAIN,
    "metadata": _PLAIN,  # compared key by key: metadata.<key>
}


class Mode(StrEnum):
    ENFORCE = "enforce"
    CREATE = "create"


@dataclass(frozen=True)
class Rule:
    name: str
    groups: tuple[str, ...]  # display-name globs (case-insensitive) or group object ids
    fields: Mapping[str, Any]
    mode: Mode = Mode.ENFORCE
    line: int = 0  # where the rule starts in the file, for messages
    owners_as_admins: bool | None = None  # None: the rule does not say

    def matches(self, group_id: str, display_name: str) -> bool:
        name, gid = display_name.casefold(), group_id.lower()
        return any(p.lower() == gid or fnmatch.fnmatchcase(name, p.casefold()) for p in self.groups)


@dataclass(frozen=True)
class Setting:
    value: Any
    rule: str


@dataclass(frozen=True)
class FieldChange:
    field: str  # a FIELDS name, or metadata.<key>
    before: Any
    after: Any
    rule: str

    @property
    def narrows(self) -> bool:
        narrows = FIELDS.get(self.field, _PLAIN).narrows
        return narrows is not None and narrows(self.before, self.after)

    def describe(self) -> str:
        return f"{self.field} {self.before!r} -> {self.after!r} (rule {self.rule!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after, "rule": self.rule}


@dataclass(frozen=True)
class TeamPolicy:
    rules: tuple[Rule, ...] = ()
    source: str = ""  # the file it came from, for messages

    def wanted(self, group_id: str, display_name: str, *, creating: bool) -> dict[str, Setting]:
        """What the team of this group should have, field by field (metadata.<key> for metadata),
        and which rule says so: enforce rules always, create rules only when ``creating``. At creation
        an enforce rule's field wins over a create rule's: the next run would put it back anyway."""
        wanted: dict[str, Setting] = {}
        ordered = sorted(self.rules, key=lambda r: r.mode is Mode.ENFORCE)  # stable: file order within a mode
        for rule in ordered:
            if not rule.matches(group_id, display_name) or (rule.mode is Mode.CREATE and not creating):
                continue
            for name, value in rule.fields.items():
                if name == "metadata":
                    wanted |= {f"metadata.{k}": Setting(v, rule.name) for k, v in value.items()}
                else:
                    wanted[name] = Setting(value, rule.name)
        return wanted

    def unmatched(self, groups: Iterable[tuple[str, str]]) -> list[Rule]:
        """The rules that match none of ``groups`` ((id, display name) pairs)."""
        pairs = list(groups)
        return [r for r in self.rules if not any(r.matches(i, n) for i, n in pairs)]

    @property
    def models(self) -> list[tuple[str, str]]:
        """Every (rule, model) the rules name, LiteLLM's keywords left out."""
        return [(r.name, m) for r in self.rules for m in r.fields.get("models", ())
                if m not in SPECIAL_MODELS]

    def owners_as_admins(self, group_id: str, display_name: str) -> bool:
        """Whether the group's owners are its team's admins: the last matching rule that says so
        wins, whatever its mode (it is about who is in the team, kept every run)."""
        said = [r.owners_as_admins for r in self.rules
                if r.owners_as_admins is not None and r.matches(group_id, display_name)]
        return bool(said and said[-1])

    @property
    def reads_owners(self) -> bool:
        """Whether a rule turns owners_as_admins on: only then are owners and the licence read."""
        return any(r.owners_as_admins for r in self.rules)

    @property
    def reads_member_budgets(self) -> bool:
        """Whether an enforce rule needs the teams' member budgets read (a separate read)."""
        return any(r.mode is Mode.ENFORCE and MEMBER_BUDGET_FIELDS.keys() & r.fields.keys()
                   for r in self.rules)


def changes(wanted: Mapping[str, Setting], have: Mapping[str, Any],
            metadata: Mapping[str, Any]) -> tuple[list[FieldChange], set[str]]:
    """How a team that has ``have`` (the fields read) and ``metadata`` differs from ``wanted``,
    and the fields that could not be compared because the proxy does not report them."""
    found, unread = [], set()
    for name, setting in wanted.items():
        if name.startswith("metadata."):
            before = metadata.get(name.removeprefix("metadata."))
            same = before == setting.value
        elif name not in have:
            unread.add(name)
            continue
        else:
            before = have[name]
            same = FIELDS[name].same(before, setting.value)
        if not same:
            found.append(FieldChange(name, before, setting.value, setting.rule))
    return found, unread


def unserved_models(policy: TeamPolicy, served: Iterable[str]) -> list[tuple[str, str]]:
    """The (rule, model) pairs naming a model the proxy does not serve. A served wildcard route
    (openai/*) serves what it matches; a wildcard in the policy needs one served model it matches."""
    names = set(served)
    patterns = [s for s in names if "*" in s]

    def served_here(model: str) -> bool:
        return (model in names or any(fnmatch.fnmatchcase(model, p) for p in patterns)
                or ("*" in model and any(fnmatch.fnmatchcase(n, model) for n in names)))

    return [(rule, model) for rule, model in policy.models if not served_here(model)]


@dataclass(frozen=True)
class Resolved:
    """The fields a new team gets from the policy, ready for /team/new, and their rules."""

    params: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)


def creation_params(wanted: Mapping[str, Setting]) -> Resolved:
    params: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for name, setting in wanted.items():
        if name.startswith("metadata."):
            metadata[name.removeprefix("metadata.")] = setting.value
        else:
            params[name] = setting.value
    if metadata:
        params["metadata"] = metadata
    return Resolved(params, {name: s.rule for name, s in wanted.items()})
