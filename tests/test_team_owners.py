"""Group owners as team admins (team policy owners_as_admins): planner tables and runs in sequence."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from sync_core.actions import AddMember, SetTeamAdmins
from sync_core.model import ADMINS_KEY, MANAGED_KEY, Directory, LiteLLMState, LiteLLMTeam
from sync_core.owners import LICENCE_UNKNOWN, NO_LICENCE
from sync_core.planner import Policy, plan
from sync_core.safety import check
from sync_core.team_policy import Rule, TeamPolicy
from tests.planning import apply_plan, directory, gid, group, litellm, team, uid, user

G1 = gid(1)
OWNERS = Policy(team_policy=TeamPolicy((Rule("eng", ("Eng*",), {}, owners_as_admins=True),)))


def entra(members: tuple[int, ...], owners: tuple[int, ...] | None, name: str = "Eng") -> Directory:
    g = replace(group(1, members, name=name),
                owner_ids=None if owners is None else frozenset(uid(o) for o in owners),
                owners_error=None if owners is not None else "403 Authorization_RequestDenied")
    return directory([g], [user(n) for n in range(1, 6)])


def eng_team(members: tuple[int, ...], admins: tuple[int, ...] = (), recorded: tuple[int, ...] = ()) -> LiteLLMTeam:
    t = team(G1, "Eng", members, admins=admins)
    marker = {**t.metadata[MANAGED_KEY], ADMINS_KEY: [uid(r) for r in recorded]}
    return replace(t, metadata={**t.metadata, MANAGED_KEY: marker})


def proxy(t: LiteLLMTeam | None, licensed: bool | None = True) -> LiteLLMState:
    return replace(litellm([t] if t else [], range(1, 6)), team_admins=licensed)


def summary(p) -> list[tuple]:
    """Each admin or member action as (kind, user or the admin lists), to compare whole plans."""
    out: list[tuple] = []
    for a in p.actions:
        if isinstance(a, SetTeamAdmins):
            out.append(("admins", a.promote, a.demote, a.drop, a.forget))
        elif isinstance(a, AddMember):
            out.append(("add", a.user_id))
        else:
            out.append((a.kind,))
    return out


def ids(*ns: int) -> tuple[str, ...]:
    return tuple(sorted(uid(n) for n in ns))


@dataclass
class Case:
    name: str
    entra: Directory
    state: LiteLLMState
    expected: list[tuple]
    policy: Policy = OWNERS
    notes: tuple[str, ...] = ()
    gaps: int = 0


CASES = [
    Case("an owner outside the team is added and made admin",
         entra((1,), (3,)), proxy(eng_team((1,))), [("add", uid(3)), ("admins", ids(3), (), (), ())]),
    Case("an owner who is also a plain member is promoted, nothing else",
         entra((1, 2), (2,)), proxy(eng_team((1, 2))), [("admins", ids(2), (), (), ())]),
    Case("a sync-made admin who no longer owns the group but is a member becomes a plain member",
         entra((1, 2), ()), proxy(eng_team((1,), admins=(2,), recorded=(2,))), [("admins", (), ids(2), (), ())]),
    Case("a sync-made admin who neither owns nor belongs to the group leaves the team",
         entra((1,), ()), proxy(eng_team((1,), admins=(3,), recorded=(3,))), [("admins", (), (), ids(3), ())]),
    Case("an admin a person made is never touched, owner or not",
         entra((1,), (4,)), proxy(eng_team((1,), admins=(4, 5))), []),
    Case("a recorded admin a person demoted is forgotten, not promoted back",
         entra((1, 2), ()), proxy(eng_team((1, 2), recorded=(2,))), [("admins", (), (), (), ids(2))]),
    Case("owners unread: no admin change, and a gap",
         entra((1,), None), proxy(eng_team((1,), admins=(3,), recorded=(3,))), [], gaps=1),
    Case("members unread: no admin change either (an owner may have to join)",
         directory([replace(group(1, None, name="Eng", error="boom"), owner_ids=frozenset({uid(3)}))],
                   [user(3)]), proxy(eng_team((1,))), [], gaps=1),
    Case("no licence: nothing planned, one note",
         entra((1,), (3,)), proxy(eng_team((1,), admins=(2,), recorded=(2,)), licensed=False), [],
         notes=(NO_LICENCE,)),
    Case("the proxy does not say: nothing planned, one note",
         entra((1,), (3,)), proxy(eng_team((1,)), licensed=None), [], notes=(LICENCE_UNKNOWN,)),
    Case("no rule matches the group: its admins are left alone",
         entra((1,), (3,), name="Sales"), proxy(team(G1, "Sales", (1,), admins=(2,))), []),
    Case("a new team gets its owners as admins after they join",
         entra((1,), (1, 3)), proxy(None),
         [("create_team",), ("add", uid(1)), ("add", uid(3)), ("admins", ids(1, 3), (), (), ())]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_owners_as_admins(case: Case) -> None:
    p = plan(case.entra, case.state, case.policy)
    assert summary(p) == case.expected
    assert [n for n in p.notes if "owners_as_admins" in n] == list(case.notes)
    assert len(p.gaps) == case.gaps


def test_the_licence_note_is_given_once_for_many_groups() -> None:
    groups = [replace(group(n, (1,), name=f"Eng {n}"), owner_ids=frozenset({uid(2)})) for n in range(1, 4)]
    p = plan(directory(groups, [user(1), user(2)]), proxy(None, licensed=False), OWNERS)
    assert p.notes.count(NO_LICENCE) == 1
    assert not [a for a in p.actions if isinstance(a, SetTeamAdmins)]


def test_runs_in_sequence_promote_hold_steady_then_demote_through_the_breaker() -> None:
    state = proxy(eng_team((1, 2), admins=(5,)))  # user 5: an admin a person made
    first = plan(entra((1, 2), (2, 3)), state, OWNERS)
    state = apply_plan(first, state)
    assert {m.user_id: m.role for m in state.teams[G1].members} == {
        uid(1): "user", uid(2): "admin", uid(3): "admin", uid(5): "admin"}
    assert state.teams[G1].admins_by_sync == frozenset(ids(2, 3))
    assert plan(entra((1, 2), (2, 3)), state, OWNERS).actions == ()  # converged: no writes

    # Both owners are gone: 2 (still a member) is demoted, 3 (never a member) leaves; 5 stays.
    last = plan(entra((1, 2), ()), state, OWNERS)
    assert summary(last) == [("admins", (), ids(2), ids(3), ())]
    assert len(last.removals) == 1 and check(last, max_removals=0, max_percent=100).tripped
    state = apply_plan(last, state)
    assert {m.user_id: m.role for m in state.teams[G1].members} == {
        uid(1): "user", uid(2): "user", uid(5): "admin"}
    assert plan(entra((1, 2), ()), state, OWNERS).actions == ()
