"""Access follows Entra across many runs: a randomized sequence of directory changes, each synced as
the timer syncs (incremental Graph reads, targeted LiteLLM reads), some by runs whose group reads
fail, that the circuit breaker holds, or that are killed half-way. Judged by using the keys.

After every healthy run: each personal key works exactly when its owner is in scope (GET
/v1/models with it), a key an admin blocked stays refused, and each assigned group's team holds
exactly its enabled members. After every other run: no key of anyone in scope that worked before
is refused. Shared by the emulator and the real-proxy tests; a failure names its seed and step.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from emulators.graph import GraphEmulator, Tenant
from emulators.http_base import EmulatorServer, Fault, NoFaults, ScriptedFaults
from sync_core.errors import SyncError
from sync_core.settings import Settings
from sync_core.state import LocalStateBackend
from tests.conftest import GRAPH_TOKEN
from tests.expectations import expected_state
from tests.kills import KillAfterWrites, faulty_run
from tests.proxy_http import proxy_client

PEOPLE = 20
GROUPS = 4  # G3 is nested in G0, and assigned too
DIRECT = 2  # the last two people are assigned directly
MIN_PEOPLE = 12  # deletions stop here
MODES = {"healthy": 5, "failing reads": 2, "held": 1, "killed": 2}
CHANGES = ["join", "leave", "disable", "enable", "delete", "unassign person", "assign person",
           "unassign group", "assign group", "rename", "new key"]


@dataclass
class Target:
    """Where the sync writes: ``sync_url`` (faults are injected on ``faults``), and the test's own
    admin client (``http``) and base URL for using keys, straight to the proxy."""

    sync_url: str
    faults: EmulatorServer
    http: httpx.Client
    key_url: str
    master_key: str
    orphans: str = "block"  # SYNC_ORPHANED_TEAM_ACTION


@dataclass
class Key:
    secret: str
    owner: str
    admin_blocked: bool = False


@dataclass
class AccessRuns:
    seed: int
    target: Target
    state_dir: Path
    steps: int
    rng: random.Random = field(init=False)
    salt: str = field(init=False)
    keys: list[Key] = field(default_factory=list)
    works: dict[str, bool] = field(default_factory=dict)  # secret -> as last seen
    provisioned: set[str] = field(default_factory=set)  # people with a LiteLLM user
    history: list[str] = field(default_factory=list)
    covered: Counter[str] = field(default_factory=Counter)  # how the runs went, which changes were made

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.salt = uuid.uuid4().hex[:8]
        self.tenant = Tenant.from_dict(self._document())
        names = [f"p{n:02d}" for n in range(PEOPLE)] + [f"G{n}" for n in range(GROUPS)]
        self.names = {self.id(name): name for name in names}

    def id(self, name: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{self.salt}.runs.test"))

    def people(self) -> list[str]:
        return self.by_name(u.id for u in self.tenant.of_kind("user"))

    def by_name(self, ids: Iterable[str]) -> list[str]:
        """In the order of their names: the ids change with the salt, the seed's choices must not."""
        return sorted(ids, key=self._name)

    def groups(self) -> list[str]:
        return [self.id(f"G{n}") for n in range(GROUPS)]

    def assigned(self, kind: str) -> set[str]:
        return {a.principal_id for a in self.tenant.assignments if a.principal_type == kind}

    def _document(self) -> dict[str, Any]:
        names = [f"p{n:02d}" for n in range(PEOPLE)]
        users = [{"id": self.id(n), "displayName": n, "userPrincipalName": f"{n}.{self.salt}@contoso.com",
                  "mail": f"{n}.{self.salt}@contoso.com", "accountEnabled": True, "userType": "Member"}
                 for n in names]
        grouped = names[:-DIRECT]
        groups = [{"id": self.id(f"G{n}"), "displayName": f"G{n} {self.salt}",
                   "members": [self.id(m) for m in self.rng.sample(grouped, self.rng.randint(3, 7))]}
                  for n in range(GROUPS)]
        groups[0]["members"].append(self.id("G3"))
        assignments = [{"principalId": g["id"], "principalType": "Group"} for g in groups]
        assignments += [{"principalId": self.id(n), "principalType": "User"} for n in names[-DIRECT:]]
        return {"tenant_id": self.id("tenant"),
                "service_principal": {"id": self.id("sp"), "appId": self.id("app"), "displayName": "LiteLLM"},
                "users": users, "groups": groups, "assignments": assignments}

    # ------------------------------------------------------------------ the sequence

    def play(self) -> None:
        with GraphEmulator(self.tenant, token=GRAPH_TOKEN) as graph:
            self.graph = graph
            try:
                self._check(self._healthy_run())
                for person in self.by_name(self.provisioned):
                    self.keys.append(Key(self._new_key(person), person))
                person = self.rng.choice(self.by_name(self.provisioned))
                self._admin_block(self._new_key(person), person)
                self._check_keys_follow_scope()
                for step in range(1, self.steps + 1):
                    for _ in range(self.rng.randint(1, 3)):
                        self._change()
                    mode = self.rng.choices(list(MODES), weights=list(MODES.values()))[0]
                    self.history.append(f"step {step}: {mode} run")
                    self._check(self._run(mode))
                self.history.append("the last run: healthy")
                self._check(self._healthy_run())
            except AssertionError as exc:
                raise AssertionError(f"seed {self.seed}: {exc}\n" + "\n".join(self.history[-40:])) from None

    def _change(self) -> None:
        kind = self.rng.choice(CHANGES)
        people, tenant, rng = self.people(), self.tenant, self.rng
        enabled = [p for p in people if tenant.get(p).props["accountEnabled"]]
        disabled = [p for p in people if p not in enabled]
        direct, assigned_groups = self.assigned("User"), self.assigned("Group")
        match kind:
            case "join":
                group, person = rng.choice(self.groups()), rng.choice(people)
                tenant.add_member(group, person)
            case "leave":
                group = rng.choice(self.groups())
                members = [m.id for m in tenant.direct_members(group) if m.kind == "user"]
                if not members:
                    return
                person = rng.choice(members)
                tenant.remove_member(group, person)
            case "disable" | "enable" if (pool := enabled if kind == "disable" else disabled):
                person = rng.choice(pool)
                tenant.update_user(person, accountEnabled=kind == "enable")
            case "delete" if len(people) > MIN_PEOPLE:
                person = rng.choice(people)
                tenant.remove_user(person)
            case "unassign person" if direct:
                person = rng.choice(self.by_name(direct))
                tenant.unassign(person)
            case "assign person":
                person = rng.choice(people)
                tenant.assign(person)
            case "unassign group" if len(assigned_groups) > 1:
                person = rng.choice(self.by_name(assigned_groups))
                tenant.unassign(person)
            case "assign group" if set(self.groups()) - assigned_groups:
                person = rng.choice(self.by_name(set(self.groups()) - assigned_groups))
                tenant.assign(person)
            case "rename":
                person = rng.choice(self.groups())
                tenant.rename_group(person, f"{tenant.get(person).display_name}'")
            case "new key" if self.provisioned:  # for anyone the proxy knows: in scope or a leaver
                person = rng.choice(self.by_name(self.provisioned))
                secret = self._new_key(person)
                if rng.random() < 0.2:
                    self._admin_block(secret, person)
                else:
                    self.keys.append(Key(secret, person))
            case _:
                return
        self.history.append(f"  {kind} {self._name(person)}")
        self.covered[f"change: {kind}"] += 1

    def _name(self, object_id: str) -> str:
        return self.names[object_id]

    # ------------------------------------------------------------------ runs

    def _settings(self, **extra: str) -> Settings:
        env = {"LITELLM_BASE_URL": self.target.sync_url, "LITELLM_MASTER_KEY": self.target.master_key,
               "ENTRA_APP_ID": self.id("app"), "GRAPH_BASE_URL": self.graph.base_url,
               "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN, "SYNC_ORPHANED_TEAM_ACTION": self.target.orphans,
               "SYNC_MAX_REMOVALS": "1000", "SYNC_MAX_REMOVAL_PERCENT": "100",
               # a real proxy under load: a page of /user/list took 28 s here while other suites ran
               "SYNC_RETRY_BUDGET_SECONDS": "120", "SYNC_HTTP_TIMEOUT_SECONDS": "300", **extra}
        return Settings.from_env(env)

    def _healthy_run(self) -> str:
        """A run without faults, again while one of its writes failed (a real proxy under load)."""
        for _ in range(3):
            if (how := self._run("healthy")) == "healthy":
                return how
            self._check(how)
        return how

    def _run(self, mode: str) -> str:
        """Runs the sync in ``mode``; returns how the run went: "healthy" when it ran to its end
        without anything in its way (a kill that never came, a hold with nothing to hold)."""
        state = LocalStateBackend(self.state_dir)
        settings = self._settings(SYNC_MAX_REMOVALS="0") if mode == "held" else self._settings()
        kill = KillAfterWrites(self.rng.randint(1, 4)) if mode == "killed" else None
        if mode == "failing reads":
            group = self.rng.choice(self.by_name(self.assigned("Group")))
            self.history.append(f"  the reads of {self._name(group)} and /groups/delta fail")
            self.graph.server.faults = ScriptedFaults().add("GET", rf"/groups/(delta|{group}/)",
                                                            Fault("status", 500), 10_000)
        if kill is not None:
            self.target.faults.faults = kill
        try:
            report = asyncio.run(faulty_run(settings, state, kill, trigger="timer"))
        except SyncError as exc:  # a read kept failing (a real proxy under load): the run stopped
            self.history.append(f"    stopped: {exc}")
            return "stopped by a failed read"
        finally:
            self.graph.server.faults, self.target.faults.faults = NoFaults(), NoFaults()
        if report is None:
            return "killed"
        self.history.extend(f"    {o.status}: {a.describe()}{f' ({o.error})' if o.error else ''}"
                            for a, o in zip(report.plan.actions, report.outcomes, strict=True))
        if report.summary()["failed"]:  # a real proxy under load: the next run retries them
            return "failed writes"
        if mode == "failing reads":
            assert report.plan.gaps, "the failing reads left no gap"
            return mode
        if mode == "held" and report.breaker.tripped:
            return mode
        return "healthy"

    # ------------------------------------------------------------------ judging

    def _check(self, how: str) -> None:
        self.history.append(f"  ran: {how}")
        self.covered[f"runs: {how}"] += 1
        if how == "healthy":
            self.provisioned |= self._in_scope()
            self._check_keys_follow_scope()
            self._check_rosters()
        else:
            self._check_nobody_in_scope_lost_a_key()

    def _in_scope(self) -> set[str]:
        return set(expected_state(self.tenant.to_dict()).emails)

    def _check_keys_follow_scope(self) -> None:
        in_scope = self._in_scope()
        works = self._use_keys()
        for key in self.keys:
            wanted = not key.admin_blocked and key.owner in in_scope
            assert works[key.secret] == wanted, (
                f"{self._name(key.owner)}'s key {'works' if works[key.secret] else 'is refused'}: "
                f"{'in' if key.owner in in_scope else 'out of'} scope"
                f"{', blocked by an admin' if key.admin_blocked else ''}")

    def _check_nobody_in_scope_lost_a_key(self) -> None:
        in_scope = self._in_scope()
        before, works = dict(self.works), self._use_keys()
        for key in self.keys:
            if key.owner in in_scope and before.get(key.secret):
                assert works[key.secret], f"{self._name(key.owner)} is in scope and lost a key"

    def _check_rosters(self) -> None:
        expected = expected_state(self.tenant.to_dict())
        for team_id, members in expected.members.items():
            info = self.target.http.get("/team/info", params={"team_id": team_id}).raise_for_status().json()
            roster = {m["user_id"] for m in info["team_info"]["members_with_roles"] if m["role"] == "user"}
            assert roster == members, f"team {self._name(team_id)}: {len(roster)} members, Entra has {len(members)}"

    def _use_keys(self) -> dict[str, bool]:
        """secret -> whether the proxy serves a request made with it."""
        def use(key: Key) -> bool:
            response = client.get("/v1/models", headers={"Authorization": f"Bearer {key.secret}"})
            assert response.status_code in (200, 401), f"GET /v1/models: {response.status_code} {response.text}"
            return response.status_code == 200

        with ThreadPoolExecutor(8) as pool, proxy_client(self.target.key_url) as client:
            self.works = dict(zip((k.secret for k in self.keys), pool.map(use, self.keys), strict=True))
        return self.works

    # ------------------------------------------------------------------ keys

    def _new_key(self, person: str) -> str:
        answer = self.target.http.post("/key/generate", json={"user_id": person}).raise_for_status()
        return str(answer.json()["key"])

    def _admin_block(self, secret: str, person: str) -> None:
        self.target.http.post("/key/block", json={"key": secret}).raise_for_status()
        self.keys.append(Key(secret, person, admin_blocked=True))

    def cleanup(self) -> None:
        """What it made in a shared proxy: its teams and users."""
        with contextlib.suppress(httpx.HTTPError):
            for team_id in self.groups():
                self.target.http.post("/team/delete", json={"team_ids": [team_id]})
            users = [self.id(f"p{n:02d}") for n in range(PEOPLE)]
            self.target.http.post("/user/delete", json={"user_ids": users})


def play(seed: int, target: Target, state_dir: Path, steps: int) -> Counter[str]:
    """Plays one seed; returns how its runs went and which changes it made."""
    runs = AccessRuns(seed, target, state_dir, steps)
    try:
        runs.play()
    finally:
        runs.cleanup()
    return runs.covered
