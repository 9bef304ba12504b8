"""Property tests of the planner's invariants over random tenants and LiteLLM states."""

from __future__ import annotations

import functools
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
ROLES = ["proxy_admin", "internal_user", "internal_user_viewer", "proxy_admin_viewer"]
NOW = datetime(2026, 12, 2, tzinfo=UTC)

# Every strategy is built once, here: one built inside a draw is validated anew for each example,
# which cost more CPU than the planner under test. The examples drawn are the same either way.
flags = st.booleans()
ids = st.integers(0, N_USERS - 1)
id_sets, few_ids = st.sets(ids), st.sets(ids, max_size=2)
assigned_groups, team_groups = st.sets(st.integers(0, N_GROUPS - 1)), st.sets(st.integers(0, N_GROUPS + 1))
group_names = [st.sampled_from(["A", "B", f"Group {n}"]) for n in range(N_GROUPS)]
team_aliases = [st.sampled_from(["A", f"Group {n}", None]) for n in range(N_GROUPS + 2)]
key_sets = st.lists(st.builds(lambda n, blocked: replace(key(n), blocked=blocked), st.integers(0, 5), st.booleans()),
                    max_size=3, unique_by=lambda k: k.token).map(tuple)
lookup_asked = st.integers(0, 5)  # 0: Graph was not asked about the absent user
role_sets = st.sets(st.sampled_from(ROLES), max_size=2)
orphan_actions, leaver_actions = st.sampled_from(list(OrphanAction)), st.sampled_from(list(LeaverAction))
user_params = st.sampled_from([{}, {"user_role": "internal_user"}])
lite_roles, marker_roles = st.sampled_from([None, *ROLES]), st.sampled_from(ROLES)
days_gone, blocked_key_sets = st.sampled_from([1, 40]), st.sets(st.integers(0, 5), max_size=2)


@st.composite
def worlds(draw: st.DrawFn, *, allow_unknown: bool = False) -> tuple:
    users = [user(n, enabled=draw(flags) or n % 3 != 0) for n in range(N_USERS)]
    assigned = draw(assigned_groups)
    groups = []
    for n in sorted(assigned):
        unknown = allow_unknown and draw(flags)
        groups.append(group(n, None if unknown else draw(id_sets),
                            name=draw(group_names[n]), error="boom" if unknown else None))
    teams = []
    for n in sorted(draw(team_groups)):
        members = draw(id_sets)
        admins = draw(few_ids) - members  # LiteLLM lists a user once per team
        teams.append(team(gid(n), draw(team_aliases[n]), members,
                          managed=draw(flags), admins=admins, blocked=draw(flags)))
    existing = draw(id_sets)
    legacy = draw(id_sets)  # users known to LiteLLM only by e-mail, under another id
    rows = [draw(lite_users(n, uid(n))) for n in existing]
    rows += [draw(lite_users(n, f"legacy-{n}")) for n in legacy - existing]
    keys = {row.user_id: draw(key_sets) for row in rows if draw(flags) or row.managed}
    entra = directory(groups, users, direct=draw(few_ids), complete=draw(flags))
    absent = sorted({r.marker["entra_id"] for r in rows if r.managed} - entra.users.keys())
    entra = replace(entra, lookups={e: draw(accounts(e)) for e in absent if draw(lookup_asked)},
                    app_roles={uid(n): frozenset(draw(role_sets)) for n in draw(id_sets)})
    policy = Policy(orphaned_team_action=draw(orphan_actions), leaver_action=draw(leaver_actions),
                    app_roles=draw(flags), default_user_params=draw(user_params), now=NOW)
    return entra, LiteLLMState.build(teams, rows, keys), policy


@functools.cache
def accounts(entra_id: str) -> st.SearchStrategy[EntraUser | None]:
    """What Graph answers for an absent user: gone (None), or an enabled or disabled account."""
    return st.sampled_from([None, *(EntraUser(entra_id, "x@contoso.com", "X", enabled) for enabled in (True, False))])


@functools.cache
def lite_users(n: int, user_id: str) -> st.SearchStrategy[LiteLLMUser]:
    return _lite_users(n, user_id)


@st.composite
def _lite_users(draw: st.DrawFn, n: int, user_id: str) -> LiteLLMUser:
    """A LiteLLM user for Entra user ``n``: unmanaged, managed, a leaver, with roles set by anyone."""
    role = draw(lite_roles)
    if not draw(flags):
        return LiteLLMUser(user_id, f"user{n}@contoso.com", role=role)
    marker = {}
    if draw(flags):
        marker["role"] = draw(marker_roles)
    if draw(flags):
        marker["left_at"] = (NOW - timedelta(days=draw(days_gone))).isoformat()
        marker["blocked_keys"] = [key(k).token for k in draw(blocked_key_sets)]
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
