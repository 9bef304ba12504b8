"""Property tests of the planner's invariants over random tenants and LiteLLM states."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sync_core.actions import AddMember, BlockUser, CreateUser, DeleteUser, RemoveMember
from sync_core.leavers import LeaverAction, in_scope
from sync_core.model import EntraUser, LiteLLMState, LiteLLMUser, user_marker
from sync_core.planner import OrphanAction, Policy, plan
from tests.planning import apply_plan, directory, gid, group, key, litellm, team, uid, user

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
    rows = [draw(lite_users(n, uid(n))) for n in existing]
    rows += [draw(lite_users(n, f"legacy-{n}")) for n in legacy - existing]
    keys = {row.user_id: draw(key_sets) for row in rows if draw(st.booleans()) or row.managed}
    entra = directory(groups, users, direct=draw(st.sets(ids, max_size=2)), complete=draw(st.booleans()))
    absent = sorted({r.marker["entra_id"] for r in rows if r.managed} - entra.users.keys())
    entra = replace(entra, lookups={e: draw(st.sampled_from([None, *accounts(e)])) for e in absent
                                    if draw(st.integers(0, 5))},
                    app_roles={uid(n): frozenset(draw(st.sets(st.sampled_from(ROLES), max_size=2)))
                               for n in draw(st.sets(ids))})
    policy = Policy(orphaned_team_action=draw(st.sampled_from(list(OrphanAction))),
                    leaver_action=draw(st.sampled_from(list(LeaverAction))), app_roles=draw(st.booleans()),
                    default_user_params=draw(st.sampled_from([{}, {"user_role": "internal_user"}])), now=NOW)
    return entra, LiteLLMState.build(teams, rows, keys), policy


ROLES = ["proxy_admin", "internal_user", "internal_user_viewer", "proxy_admin_viewer"]
NOW = datetime(2026, 12, 2, tzinfo=UTC)
key_sets = st.lists(st.builds(lambda n, blocked: replace(key(n), blocked=blocked), st.integers(0, 5), st.booleans()),
                    max_size=3, unique_by=lambda k: k.token).map(tuple)


def accounts(entra_id: str) -> list[EntraUser]:
    return [EntraUser(entra_id, "x@contoso.com", "X", enabled) for enabled in (True, False)]


@st.composite
def lite_users(draw: st.DrawFn, n: int, user_id: str) -> LiteLLMUser:
    """A LiteLLM user for Entra user ``n``: unmanaged, managed, a leaver, with roles set by anyone."""
    role = draw(st.sampled_from([None, *ROLES]))
    if not draw(st.booleans()):
        return LiteLLMUser(user_id, f"user{n}@contoso.com", role=role)
    marker = {}
    if draw(st.booleans()):
        marker["role"] = draw(st.sampled_from(ROLES))
    if draw(st.booleans()):
        marker["left_at"] = (NOW - timedelta(days=draw(st.sampled_from([1, 40])))).isoformat()
        marker["blocked_keys"] = [key(k).token for k in draw(st.sets(st.integers(0, 5), max_size=2))]
    return LiteLLMUser(user_id, f"user{n}@contoso.com", role=role, metadata=user_marker(uid(n), **marker))


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


@settings(max_examples=300, deadline=None)
@given(worlds(allow_unknown=True))
def test_in_scope_and_unmanaged_users_are_never_blocked_or_deleted(world: tuple) -> None:
    entra, state, policy = world
    scope = in_scope(entra)
    emails = {entra.users[e].email for e in scope}
    for action in plan(entra, state, policy).actions:
        if isinstance(action, BlockUser | DeleteUser):
            lite = state.users[action.user_id]
            assert lite.managed and lite.marker["entra_id"] not in scope, action
            assert action.user_id not in scope, action
            assert lite.email not in emails or state.users_by_email[lite.email] is not lite, action
            assert entra.complete and policy.leaver_action is not LeaverAction.KEEP


def test_the_property_model_detects_divergence() -> None:
    """The convergence check can fail: a plan that forgets a member is caught."""
    entra = directory([group(1, [1])], [user(1)])
    state = litellm([team(gid(1), "Group 1")], [1])
    assert plan(entra, apply_plan(plan(entra, state, Policy()).__class__(()), state), Policy()).actions
