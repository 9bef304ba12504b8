"""The team policy file (SYNC_TEAM_POLICY_FILE): YAML read and checked offline, every problem with its line.

    rules:
      - name: engineering            # unique; shown in the plan
        groups: ["Eng *", "<group object id>"]
        mode: enforce                # enforce (default) | create
        set: {models: [gpt-4o], max_budget: 500}

A path is taken relative to the app's folder (where function_app.py is), so the file deploys with the app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, NonNegativeFloat, NonNegativeInt, ValidationError

from sync_core.errors import ConfigError
from sync_core.model import MANAGED_KEY
from sync_core.settings import GUID_RE, Duration
from sync_core.team_policy import FIELDS, MEMBER_BUDGET_ID, METADATA_FIELDS, Mode, Rule, TeamPolicy

SETTING = "SYNC_TEAM_POLICY_FILE"
APP_DIR = Path(__file__).resolve().parents[1]
RULE_KEYS = ("name", "groups", "mode", "set", "owners_as_admins")
MAX_DISPLAY_NAME = 256  # Entra's longest group displayName
# Team fields LiteLLM has that a rule cannot keep in force, and why.
NOT_SETTABLE = {
    "max_parallel_requests": "LiteLLM's /team/update ignores it (1.108.7 and 1.80.0); set it at creation "
                             "through DEFAULT_TEAM_PARAMS",
    "team_alias": "the sync names each team after its group",
    "team_id": "the sync gives each team its group's object id",
    "members_with_roles": "the sync keeps the members in step with the group",
    "blocked": "the sync blocks and unblocks teams itself",
}


# Metadata keys a rule may not write, and why.
RESERVED_METADATA = {MANAGED_KEY: "the sync's own marker", MEMBER_BUDGET_ID: "LiteLLM's own",
                     **{name: f"set it as set.{name}" for name in METADATA_FIELDS}}


class TeamFields(BaseModel):
    """What ``set`` takes: LiteLLM's team fields, under LiteLLM's names and types (None: not in ``set``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    models: list[str] | None = None
    max_budget: NonNegativeFloat | None = None
    soft_budget: NonNegativeFloat | None = None
    budget_duration: Duration | None = None
    tpm_limit: NonNegativeInt | None = None
    rpm_limit: NonNegativeInt | None = None
    team_member_budget: NonNegativeFloat | None = None
    team_member_budget_duration: Duration | None = None
    team_member_rpm_limit: NonNegativeInt | None = None
    team_member_tpm_limit: NonNegativeInt | None = None
    team_member_key_duration: Duration | None = None
    tags: list[str] | None = None
    guardrails: list[str] | None = None
    model_aliases: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def resolve_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else APP_DIR / path


def load(value: str) -> TeamPolicy:
    """The policy SYNC_TEAM_POLICY_FILE names, or a ConfigError listing every problem with its line."""
    path = resolve_path(value)
    policy, problems = check_file(path)
    if policy is None:
        raise ConfigError(SETTING, f"{path}: " + "; ".join(map(str, problems)))
    return policy


def check_file(path: Path) -> tuple[TeamPolicy | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(0, f"cannot read the file: {exc}")]
    return check_text(text, str(path))


def check_text(text: str, source: str = "") -> tuple[TeamPolicy | None, list[Problem]]:
    """The parsed policy (None when there is any problem) and every problem found."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or exc
        return None, [Problem(mark.line + 1 if mark else 0, f"not valid YAML: {problem}")]
    finally:
        loader.dispose()
    checker = _Checker(loader)
    rules = checker.document(root)
    problems = sorted(checker.problems)
    return (None if problems else TeamPolicy(tuple(rules), source)), problems


class _Checker:
    def __init__(self, loader: yaml.SafeLoader) -> None:
        self._loader = loader
        self.problems: list[Problem] = []
        self._names: dict[str, int] = {}  # rule name -> its line

    def fail(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(node.start_mark.line + 1, message))

    def value(self, node: yaml.Node) -> Any:
        return self._loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """A mapping node's entries by key (key node, value node); duplicates are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
            return None
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = str(self.value(key))
            if name in entries:
                first = entries[name][0].start_mark.line + 1
                self.fail(key, f"{what}: {name!r} appears twice (first at line {first})")
            entries[name] = (key, value)
        return entries

    def document(self, root: yaml.Node | None) -> list[Rule]:
        if root is None:
            self.problems.append(Problem(1, "the file is empty; expected a mapping with 'rules'"))
            return []
        top = self.mapping(root, "the file")
        if top is None:
            return []
        for name, (key, _) in top.items():
            if name != "rules":
                self.fail(key, f"unknown key {name!r}; the file has one key, 'rules'")
        if "rules" not in top:
            self.fail(root, "'rules' is missing")
            return []
        rules_node = top["rules"][1]
        if not isinstance(rules_node, yaml.SequenceNode):
            self.fail(rules_node, "'rules' must be a list of rules")
            return []
        return [rule for node in rules_node.value if (rule := self.rule(node)) is not None]

    def rule(self, node: yaml.Node) -> Rule | None:
        entries = self.mapping(node, "a rule")
        if entries is None:
            return None
        before = len(self.problems)
        for name, (key, _) in entries.items():
            if name not in RULE_KEYS:
                self.fail(key, f"unknown rule key {name!r}; a rule has {', '.join(RULE_KEYS)}")
        for required in ("name", "groups", "set"):
            if required not in entries and not (required == "set" and "owners_as_admins" in entries):
                self.fail(node, f"a rule needs {required!r}")
        name = self.name(entries.get("name"))
        groups = self.groups(entries.get("groups"))
        mode = self.mode(entries.get("mode"))
        only_owners = "set" not in entries and "owners_as_admins" in entries  # a rule with no fields
        fields = {} if only_owners else self.fields(entries.get("set"))
        owners = self.owners_as_admins(entries.get("owners_as_admins"))
        if len(self.problems) > before or name is None or groups is None or fields is None:
            return None
        return Rule(name, groups, fields, mode, node.start_mark.line + 1, owners)

    def owners_as_admins(self, entry: tuple[yaml.Node, yaml.Node] | None) -> bool | None:
        if entry is None:
            return None
        value = self.value(entry[1])
        if not isinstance(value, bool):
            self.fail(entry[1], f"owners_as_admins must be true or false, got {value!r}")
            return None
        return value

    def name(self, entry: tuple[yaml.Node, yaml.Node] | None) -> str | None:
        if entry is None:
            return None
        value = self.value(entry[1])
        if not isinstance(value, str) or not value.strip():
            self.fail(entry[1], "name must be a non-empty string")
            return None
        if value in self._names:
            self.fail(entry[1], f"rule name {value!r} is used twice (first at line {self._names[value]})")
        self._names.setdefault(value, entry[1].start_mark.line + 1)
        return value

    def mode(self, entry: tuple[yaml.Node, yaml.Node] | None) -> Mode:
        if entry is None:
            return Mode.ENFORCE
        value = self.value(entry[1])
        if value not in tuple(Mode):
            self.fail(entry[1], f"mode must be enforce or create, got {value!r}")
            return Mode.ENFORCE
        return Mode(value)

    def groups(self, entry: tuple[yaml.Node, yaml.Node] | None) -> tuple[str, ...] | None:
        if entry is None:
            return None
        node = entry[1]
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        if not items:
            self.fail(node, "groups is empty: the rule would match no group")
            return None
        patterns = []
        for item in items:
            value = self.value(item)
            if not isinstance(value, str):
                self.fail(item, f"groups: expected a display-name glob or a group object id (a string), "
                                f"got {value!r}")
            elif (why := _cannot_match(value)) is not None:
                self.fail(item, f"groups: {value!r} can never match a group: {why}")
            else:
                patterns.append(value)
        return tuple(patterns) if len(patterns) == len(items) else None

    def fields(self, entry: tuple[yaml.Node, yaml.Node] | None) -> dict[str, Any] | None:
        if entry is None:
            return None
        entries = self.mapping(entry[1], "set")
        if entries is None:
            return None
        if not entries:
            self.fail(entry[1], "set is empty: name at least one team field")
            return None
        raw = {name: self.value(value) for name, (_, value) in entries.items()}
        for name in NOT_SETTABLE.keys() & raw.keys():
            self.fail(entries[name][0], f"set.{name}: a rule cannot set it: {NOT_SETTABLE[name]}")
        for name in sorted(k for k, v in raw.items() if v is None):
            self.fail(entries[name][0], f"set.{name}: null is not a value (/team/update skips it); "
                                        f"leave the field out to leave it alone")
        raw = {k: v for k, v in raw.items() if k not in NOT_SETTABLE and v is not None}
        metadata = raw.get("metadata")
        for key in sorted(metadata.keys() & RESERVED_METADATA if isinstance(metadata, dict) else ()):
            self.fail(entries["metadata"][1], f"set.metadata.{key}: not a key a rule can set "
                                              f"({RESERVED_METADATA[key]})")
        try:
            fields = TeamFields.model_validate(raw).model_dump(exclude_unset=True)
        except ValidationError as exc:
            for error in exc.errors():
                self.fail(_node_at(entries, error["loc"]), _message(error))
            return None
        return fields


def _cannot_match(pattern: str) -> str | None:
    if not pattern.strip():
        return "it is empty"
    if pattern != pattern.strip():
        return "it starts or ends with a space"
    if len(pattern) > MAX_DISPLAY_NAME and not GUID_RE.fullmatch(pattern):
        return f"a group's display name has at most {MAX_DISPLAY_NAME} characters"
    for low, high in re.findall(r"\[!?(.)-(.)\]", pattern):
        if low > high:
            return f"the range {low}-{high} is empty"
    return None


def _node_at(entries: dict[str, tuple[yaml.Node, yaml.Node]], loc: tuple[Any, ...]) -> yaml.Node:
    """The node a pydantic error's location points at: the field's key, or the item inside it."""
    key, node = entries.get(str(loc[0]), (None, None))
    if node is None:
        return next(iter(entries.values()))[0]
    for part in loc[1:]:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        elif isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), node)
    return node if len(loc) > 1 else key or node


def _message(error: Any) -> str:
    where = "set." + ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{where}: not a team field a rule can set; the fields are {', '.join(FIELDS)}"
    shown = f" (got {error['input']!r})" if not isinstance(error["input"], dict | list) else ""
    message = error["msg"]
    if error["type"] == "string_pattern_mismatch":
        message = "expected a duration such as 30s, 15m, 12h, 30d, 2w or 1mo"
    return f"{where}: {message}{shown}"
