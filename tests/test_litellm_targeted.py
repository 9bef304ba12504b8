"""The targeted LiteLLM read of incremental runs plans exactly what a full read would.

Random LiteLLM states are seeded into the LiteLLM emulator and read back with the real client,
once in full and once targeted at a random directory; the planner must decide the same from both.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emulators.litellm import LiteLLMEmulator
from sync_core import leavers
from sync_core.actions import BlockUser, DeleteUser, UpdateUser
from sync_core.leavers import LeaverAction
from sync_core.litellm.client import LiteLLMClient
from sync_core.litellm.targeted import MAX_EMAIL_LOOKUPS, PRIVILEGED, targeted_state
from sync_core.model import Directory, EntraUser, LiteLLMState, managed_marker, user_marker
from sync_core.planner import Policy, plan
from tests.conftest import MASTER_KEY
from tests.planning import directory, gid, group, uid, user

N_USERS, N_GROUPS = 12, 5
WORLDS = 60


def seed_world(rng: random.Random, lite: LiteLLMEmulator) -> Directory:
    """A random LiteLLM state in ``lite``, and a random directory against it."""
    emails = {n: rng.choice([f"user{n}@contoso.com"] * 4 + ["", "shared@contoso.com"]) for n in range(N_USERS)}
    entra = [user(n, enabled=rng.random() < 0.75, email=emails[n]) for n in range(N_USERS)]
    state = lite.state
    existing: list[str] = []
    for n in range(N_USERS):
        address = emails[n] or f"user{n}@contoso.com"
        cased = rng.choice([address, address.upper(), address.title()])
        if rng.random() < 0.4:  # known by its Entra id, the e-mail in any case, or none
            state.seed_user(uid(n), rng.choice([cased, cased, None]), **access_fields(rng, n))
            existing.append(uid(n))
        if rng.random() < 0.25:  # known only by e-mail, under another id (sometimes two of them)
            for legacy in rng.sample([f"legacy-{n}", f"legacy-{n}-b", f"A-legacy-{n}"], rng.randint(1, 2)):
                state.seed_user(legacy, cased, **access_fields(rng, n))
                existing.append(legacy)
    for n in range(N_GROUPS + 1):
        if rng.random() < 0.6:
            roster = rng.sample(existing, rng.randint(0, len(existing)))
            admins = roster[:1] if rng.random() < 0.3 else []
            members = [{"user_id": u, "role": "admin" if u in admins else "user"} for u in roster]
            state.seed_team(gid(n), f"Group {n}", members,
                            metadata=managed_marker(gid(n)) if rng.random() < 0.8 else {})
    groups = [group(n, None if rng.random() < 0.15 else rng.sample(range(N_USERS), rng.randint(0, N_USERS)))
              for n in range(N_GROUPS) if rng.random() < 0.8]
    entra_dir = directory(groups, entra, direct=rng.sample(range(N_USERS), rng.randint(0, 3)))
    held = {uid(n): frozenset(rng.sample(ROLES, rng.randint(1, 2))) for n in range(N_USERS) if rng.random() < 0.2}
    return replace(entra_dir, app_roles=held)


ROLES = ["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def access_fields(rng: random.Random, n: int) -> dict:
    """A user's role and the sync's marker: none, managed, with a role it set, or a leaver."""
    fields: dict = {"user_role": rng.choice([None, *ROLES])}
    kind = rng.choice(["unmanaged", "managed", "role", "leaver"])
    if kind != "unmanaged":
        marker = {"role": rng.choice(ROLES)} if kind == "role" else {}
        if kind == "leaver":
            marker |= {"left_at": (NOW - timedelta(days=rng.choice([1, 40]))).isoformat(), "blocked_keys": []}
        fields["metadata"] = user_marker(uid(n), **marker)
    return fields


def with_leaver_facts(rng: random.Random, entra: Directory, state: LiteLLMState,
                      recheck: set[str] | None = None) -> tuple[Directory, LiteLLMState]:
    """What the runner adds: Graph's word on absent accounts, and the keys of the leavers (of
    recorded leavers, only those in ``recheck``; all with None)."""
    accounts = {e: rng.choice([None, EntraUser(e, "x@contoso.com", "X", rng.random() < 0.5)])
                for e in sorted({u.marker["entra_id"] for u in state.users.values() if u.managed})}
    absent = leavers.to_look_up(entra, state, app=None, recheck=recheck)
    entra = replace(entra, lookups={e: a for e, a in accounts.items() if e in absent})
    out = leavers.needs_keys(entra, state, kept=(), app=None, recheck=recheck)
    return entra, replace(state, keys=dict.fromkeys(out, ()))


async def read_both(lite: LiteLLMEmulator, entra: Directory) -> tuple[LiteLLMState, LiteLLMState | None, int]:
    async with LiteLLMClient(lite.base_url, MASTER_KEY) as client:
        full = await client.read_state()
    async with LiteLLMClient(lite.base_url, MASTER_KEY) as client:
        targeted = await targeted_state(client, entra, list(full.teams.values()))
        return full, targeted, client.calls["GET /user/list"]


@pytest.mark.parametrize("seed", range(WORLDS))
def test_targeted_read_plans_what_a_full_read_plans(seed: int) -> None:
    rng = random.Random(seed)
    with LiteLLMEmulator(master_key=MASTER_KEY) as lite:
        entra = seed_world(rng, lite)
        full, targeted, _ = asyncio.run(read_both(lite, entra))
    assert targeted is not None
    policy = Policy(now=NOW, leaver_action=rng.choice(list(LeaverAction)))
    full_entra, full = with_leaver_facts(random.Random(seed), entra, full)
    targeted_entra, targeted = with_leaver_facts(random.Random(seed), entra, targeted, recheck=set())
    from_full, from_targeted = plan(full_entra, full, policy), plan(targeted_entra, targeted, policy)
    # What waits for the next full read: adopting and revoking a role of team members in scope
    # (their rows are not read), leavers who are in no managed team, and leavers already recorded.
    read = {u for u, row in targeted.users.items() if row.row_read}
    waits = [a for a in from_full.actions if (isinstance(a, UpdateUser) and a.user_id not in read)
             or (isinstance(a, BlockUser | DeleteUser)
                 and (a.user_id not in read or "left_at" in full.users[a.user_id].marker))]
    assert from_targeted.actions == tuple(a for a in from_full.actions if a not in waits)
    assert from_targeted.notes == from_full.notes
    for action in waits:
        if isinstance(action, UpdateUser):
            assert action.user_id not in entra.app_roles or action.role is None


def test_nothing_to_do_lists_no_user() -> None:
    # Everyone is already in their team: the targeted read needs the teams and the admins.
    with LiteLLMEmulator(master_key=MASTER_KEY) as lite:
        for n in range(N_USERS):
            lite.state.seed_user(uid(n), f"user{n}@contoso.com")
        lite.state.seed_team(gid(0), "Group 0", [uid(n) for n in range(N_USERS)], metadata=managed_marker(gid(0)))
        entra = directory([group(0, range(N_USERS))], [user(n) for n in range(N_USERS)], direct=[3])
        _, targeted, user_lists = asyncio.run(read_both(lite, entra))
    assert targeted is not None and user_lists == len(PRIVILEGED)
    assert plan(entra, targeted, Policy()).actions == ()


def test_too_many_unknown_users_asks_for_a_full_read() -> None:
    newcomers = MAX_EMAIL_LOOKUPS + 1
    with LiteLLMEmulator(master_key=MASTER_KEY) as lite:
        entra = directory([group(0, range(newcomers))], [user(n) for n in range(newcomers)])
        _, targeted, user_lists = asyncio.run(read_both(lite, entra))
    assert targeted is None
    assert user_lists == 5 + len(PRIVILEGED)  # the id lookups, 50 to a request, and the admins; no e-mail lookup


class DeletesDuringTheListing(httpx.AsyncBaseTransport):
    """The real transport; just before the new-key listing's page 2 is read, someone deletes a user
    whose key is on page 1, as another admin could at any moment (keys go with their user)."""

    def __init__(self, lite: LiteLLMEmulator, victim: str) -> None:
        self._real, self._lite, self._victim = httpx.AsyncHTTPTransport(), lite, victim

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/key/list" and request.url.params.get("page") == "2" and self._victim:
            self._lite.state.delete_users([self._victim])
            self._victim = ""
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


def test_a_key_deleted_during_the_new_key_listing_hides_no_other_key(lite: LiteLLMEmulator) -> None:
    # 101 keys, newest first: the leaver's is the oldest, the first of page 2. Deleting a key of
    # page 1 before page 2 is read moves it onto page 1, which was read already.
    since = datetime.now(UTC) - timedelta(minutes=1)
    people = ["leaver", *(f"filler{n:03d}" for n in range(100))]
    for person in people:
        lite.state.seed_user(person)
        lite.state.generate_key(person, None)

    async def owners() -> set[str]:
        transport = DeletesDuringTheListing(lite, "filler050")
        async with LiteLLMClient(lite.base_url, MASTER_KEY, transport=transport) as client:
            return await client.key_owners_since(since)

    assert asyncio.run(owners()) == set(people) - {"filler050"}
