"""Property tests of the planner's invariants over random tenants and LiteLLM states."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sync_core.actions import AddMember, CreateUser, RemoveMember
from sync_core.model import LiteLLMState, LiteLLMUser
from sync_core.planner import OrphanAction, Policy, plan
from tests.planning import apply_plan, directory, gid, group, litellm, team, uid, user

N_USERS, N_GROUPS = 8, 5
ids = st.integers(0, N_USERS - 1)


@st.composite
def worlds(draw: st.DrawFn, *, allow_unknown: bool = False) -> tuple:
    users = [user(n, enabled=draw(st.booleans()) or n % 3 != 0) for n in range(N_USERS)]
    assigned = draw(st.sets(st.integers(0, N_GROUPS - 1)))
    groups = []
    for n in sorted(assigned):
        unknown = allow_unknown and draw(st.booleans())
        groups.append(group(n, None if unknown else draw(st.sets(ids)),
                            name=draw(st.sampled_from(["A", "B", f"Group {n}"])), error="boom" if unknown else None))
    teams = []
    for n in sorted(draw(st.sets(st.integers(0, N_GROUPS + 1)))):
        members = draw(st.sets(ids))
        admins = draw(st.sets(ids, max_size=2)) - members  # LiteLLM lists a user once per team
        teams.append(team(gid(n), draw(st.sampled_from(["A", f"Group {n}", None])), members,
                          managed=draw(st.booleans()), admins=admins, blocked=draw(st.booleans())))
    existing = draw(st.sets(ids))
    legacy = draw(st.sets(ids))  # users known to LiteLLM only by e-mail, under another id
    rows = [LiteLLMUser(uid(n), f"user{n}@contoso.com") for n in existing]
    rows += [LiteLLMUser(f"legacy-{n}", f"user{n}@contoso.com") for n in legacy - existing]
    entra = directory(groups, users, direct=draw(st.sets(ids, max_size=2)), complete=draw(st.booleans()))
    policy = Policy(orphaned_team_action=draw(st.sampled_from(list(OrphanAction))))
    return entra, LiteLLMState.build(teams, rows), policy


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_applying_the_plan_converges(world: tuple) -> None:
    entra, state, policy = world
    after = apply_plan(plan(entra, state, policy), state)
    assert plan(entra, after, policy).actions == ()


@settings(max_examples=300, deadline=None)
@given(worlds(allow_unknown=True))
def test_nothing_unmanaged_is_touched(world: tuple) -> None:
    entra, state, policy = world
    result = plan(entra, state, policy)
    managed = {t for t, team_ in state.teams.items() if team_.managed}
    for action in result.actions:
        team_id = getattr(action, "team_id", None)
        if team_id is not None:
            assert team_id in entra.groups or team_id in managed, action
        if isinstance(action, RemoveMember):
            roster = {m.user_id: m.role for m in state.teams[action.team_id].members}
            assert roster.get(action.user_id) == "user", "only role-user members are ever removed"


@settings(max_examples=300, deadline=None)
@given(worlds(allow_unknown=True))
def test_unknown_groups_never_lose_members_and_users_are_created_once(world: tuple) -> None:
    entra, state, policy = world
    result = plan(entra, state, policy)
    unknown = {g.id for g in entra.groups.values() if not g.known}
    assert not [a for a in result.actions if isinstance(a, RemoveMember | AddMember) and a.team_id in unknown]
    created = [a for a in result.actions if isinstance(a, CreateUser)]
    assert len({a.user_id for a in created}) == len(created)
    assert len({a.email for a in created}) == len(created)
    for action in created:
        assert action.user_id not in state.users and action.email not in state.users_by_email
    if not entra.assignments_complete:
        assert not result.removals or all(isinstance(a, RemoveMember) for a in result.removals)


def test_the_property_model_detects_divergence() -> None:
    """The convergence check can fail: a plan that forgets a member is caught."""
    entra = directory([group(1, [1])], [user(1)])
    state = litellm([team(gid(1), "Group 1")], [1])
    assert plan(entra, apply_plan(plan(entra, state, Policy()).__class__(()), state), Policy()).actions
