"""Table-driven tests of leavers and roles: (Entra, LiteLLM, policy) -> action lines."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from sync_core.actions import BlockUser, CreateUser, UpdateUser
from sync_core.leavers import LeaverAction
from sync_core.model import Directory, LiteLLMState
from sync_core.planner import Policy, plan
from sync_core.scope import Via
from tests.planning import directory, gid, group, key, lite_user, litellm, team, uid, user

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
G1, G2 = gid(1), gid(2)
U1, U2, U3 = uid(1), uid(2), uid(3)
K1, K2, K3 = key(1), key(2), key(3)


def lines(p) -> list[str]:
    return [a.describe() for a in p.actions]


def looked_up(entra: Directory, **accounts) -> Directory:
    """``entra`` with the lookups of absent accounts: n=None (deleted) or n=EntraUser."""
    return replace(entra, lookups={uid(int(n[1:])): a for n, a in accounts.items()})


def left(n: int, days_ago: int = 1, blocked=(), **kwargs):
    return lite_user(n, left_at=(NOW - timedelta(days=days_ago)).isoformat(), left_reason="disabled",
                     blocked_keys=[k.token for k in blocked], **kwargs)


@dataclass
class Case:
    name: str
    entra: Directory
    state: LiteLLMState
    expected: list[str]
    policy: Policy = field(default_factory=lambda: Policy(now=NOW))
    notes: tuple[str, ...] = ()


IN_G1 = [group(1, [1])]
BLOCK_1_2 = "block 2 key(s) of user2@contoso.com"

LEAVERS = [
    Case("a disabled account leaves its team and its keys are blocked",
         directory([group(1, [1, 2])], [user(1), user(2, enabled=False)]),
         litellm([team(G1, "Group 1", [1, 2])], [1, 2], {U2: (K1, replace(K2, team_id=G1))}),
         ["remove user2@contoso.com from team 'Group 1'", f"{BLOCK_1_2} (disabled): sk-...0001, sk-...0002"]),
    Case("a deleted account: Graph says it does not exist",
         looked_up(directory(IN_G1, [user(1)]), u3=None),
         litellm([team(G1, "Group 1", [1])], [1, 3], {U3: (K3,)}),
         ["block 1 key(s) of user3@contoso.com (deleted): sk-...0003"]),
    Case("an enabled account no assigned group holds any more is out of scope",
         looked_up(directory(IN_G1, [user(1)]), u3=user(3)),
         litellm([team(G1, "Group 1", [1])], [1, 3], {U3: (K3,)}),
         ["block 1 key(s) of user3@contoso.com (out of scope): sk-...0003"]),
    Case("someone who moves between groups is not a leaver",
         directory([group(1, []), group(2, [2])], [user(2)]),
         litellm([team(G1, "Group 1", [2]), team(G2, "Group 2")], [2], {U2: (K1,)}),
         ["add user2@contoso.com to team 'Group 2'", "remove user2@contoso.com from team 'Group 1'"]),
    Case("a user assigned directly is in scope without a group",
         directory([], [user(2)], direct=[2]), litellm([], [2], {U2: (K1,)}), []),
    Case("a user the sync never matched is never touched",
         looked_up(directory(IN_G1, [user(1)]), u3=None),
         litellm([team(G1, "Group 1", [1])], [1, lite_user(3, managed=False)], {uid(3): (K3,)}), []),
    Case("a user another sync manages (another enterprise app, another tenant) is not ours",
         looked_up(directory(IN_G1, [user(1)]), u3=None),
         litellm([team(G1, "Group 1", [1])], [1, lite_user(3, app="other-app")], {U3: (K3,)}), []),
    Case("a leaver already blocked: nothing new",
         looked_up(directory(IN_G1, [user(1)]), u3=None),
         litellm([team(G1, "Group 1", [1])], [1, left(3, blocked=[K3])], {U3: (replace(K3, blocked=True),)}), []),
    Case("a key made after the first block is blocked too, and only that one",
         looked_up(directory(IN_G1, [user(1)]), u3=None),
         litellm([team(G1, "Group 1", [1])], [1, left(3, blocked=[K3])], {U3: (replace(K3, blocked=True), K1)}),
         ["block 1 key(s) of user3@contoso.com (deleted, seen out by the run of 2026-12-01 10:00 UTC): sk-...0001"]),
    Case("someone assigned directly at the last complete run and not now is unassigned",
         looked_up(directory(IN_G1, [user(1)]), u3=user(3)),
         litellm([team(G1, "Group 1", [1])], [1, 3], {U3: (K3,)}),
         ["block 1 key(s) of user3@contoso.com (unassigned): sk-...0003"],
         Policy(now=NOW, last_scope={uid(3): Via(direct=True), uid(1): Via(frozenset({G1}))})),
    Case("someone in a group at the last complete run and in none now is out of scope",
         looked_up(directory(IN_G1, [user(1)]), u3=user(3)),
         litellm([team(G1, "Group 1", [1])], [1, 3], {U3: (K3,)}),
         ["block 1 key(s) of user3@contoso.com (out of scope): sk-...0003"],
         Policy(now=NOW, last_scope={uid(3): Via(frozenset({G1}))})),
    Case("a leaver with no key is recorded as one",
         looked_up(directory(IN_G1, [user(1)]), u3=None), litellm([team(G1, "Group 1", [1])], [1, 3], {U3: ()}),
         ["block 0 key(s) of user3@contoso.com (deleted)"]),
    Case("someone who comes back gets exactly the keys the sync blocked back; an admin's block stays",
         directory(IN_G1, [user(1)]),
         litellm([team(G1, "Group 1", [1])], [left(1, blocked=[K1])], {U1: (replace(K1, blocked=True),
                                                                        replace(K2, blocked=True))}),
         ["update user user1@contoso.com: back in scope, unblock 1 key(s)"]),
    Case("a failed group read makes nobody a leaver",
         looked_up(directory([group(1, None, error="boom"), group(2, [1])], [user(1)]), u3=None),
         litellm([team(G1, "Group 1", [3]), team(G2, "Group 2", [1])], [1, 3], {U3: (K3,)}), [],
         notes=("nobody is made a leaver",)),
    Case("an incomplete assignment list makes nobody a leaver",
         looked_up(directory(IN_G1, [user(1)], complete=False), u3=None),
         litellm([team(G1, "Group 1", [1])], [1, 3], {U3: (K3,)}), [], notes=("nobody is made a leaver",)),
    Case("a failed lookup makes nobody a leaver",
         replace(directory(IN_G1, [user(1)]), lookups_error="GET /users: 503"),
         litellm([team(G1, "Group 1", [1])], [1, 3], {U3: (K3,)}), [], notes=("503",)),
    Case("an account not looked up is unknown, not gone",
         directory(IN_G1, [user(1)]), litellm([team(G1, "Group 1", [1])], [1, 3], {U3: (K3,)}), []),
    Case("keys not listed: nothing is planned for them",
         looked_up(directory(IN_G1, [user(1)]), u3=None), litellm([team(G1, "Group 1", [1])], [1, 3]), []),
    Case("SYNC_LEAVER_ACTION=keep does nothing",
         looked_up(directory(IN_G1, [user(1)]), u3=None), litellm([team(G1, "Group 1", [1])], [1, 3], {U3: (K3,)}),
         [], Policy(now=NOW, leaver_action=LeaverAction.KEEP)),
    Case("delete: a leaver past the delay is deleted with their keys",
         looked_up(directory(IN_G1, [user(1)]), u3=None),
         litellm([team(G1, "Group 1", [1])], [1, left(3, days_ago=30, blocked=[K3])], {U3: (K3, K1)}),
         ["delete user user3@contoso.com (deleted) and their 2 key(s)"],
         Policy(now=NOW, leaver_action=LeaverAction.DELETE)),
    Case("delete: before the delay a leaver is blocked",
         looked_up(directory(IN_G1, [user(1)]), u3=None),
         litellm([team(G1, "Group 1", [1])], [1, left(3, days_ago=29)], {U3: (K3,)}),
         ["block 1 key(s) of user3@contoso.com (deleted, seen out by the run of 2026-11-03 10:00 UTC): sk-...0003"],
         Policy(now=NOW, leaver_action=LeaverAction.DELETE)),
    Case("provision on demand makes nobody a leaver",
         looked_up(directory(IN_G1, [user(1)]), u3=None),
         litellm([team(G1, "Group 1", [1])], [1, 3], {U3: (K3,)}), [],
         Policy(now=NOW, only_group_ids=frozenset({G1}))),
]


def roles(entra: Directory, **held: set[str]) -> Directory:
    return replace(entra, app_roles={uid(int(n[1:])): frozenset(r) for n, r in held.items()})


ROLES = [
    Case("an app role is granted, and a proxy_admin grant stands out",
         roles(directory(IN_G1, [user(1)]), u1={"proxy_admin"}),
         litellm([team(G1, "Group 1", [1])], [lite_user(1, role="internal_user")]),
         ["update user user1@contoso.com: GRANT PROXY ADMIN: role internal_user -> proxy_admin"]),
    Case("two roles at once: the most privileged wins",
         roles(directory(IN_G1, [user(1)]), u1={"internal_user", "proxy_admin_viewer", "not-a-litellm-role"}),
         litellm([team(G1, "Group 1", [1])], [lite_user(1, role="internal_user")]),
         ["update user user1@contoso.com: role internal_user -> proxy_admin_viewer"]),
    Case("a role the sync set falls back to LiteLLM's default for new SSO users when revoked",
         directory(IN_G1, [user(1)]),
         litellm([team(G1, "Group 1", [1])], [lite_user(1, role="proxy_admin", sync_role="proxy_admin")]),
         ["update user user1@contoso.com: role proxy_admin -> internal_user_viewer"]),
    Case("... or to DEFAULT_INTERNAL_USER_PARAMS.user_role",
         directory(IN_G1, [user(1)]),
         litellm([team(G1, "Group 1", [1])], [lite_user(1, role="proxy_admin", sync_role="proxy_admin")]),
         ["update user user1@contoso.com: role proxy_admin -> internal_user"],
         Policy(now=NOW, default_user_params={"user_role": "internal_user"})),
    Case("org_admin cannot be set through the API: a user whose strongest role it is keeps theirs",
         roles(directory(IN_G1, [user(1)]), u1={"org_admin", "internal_user"}),
         litellm([team(G1, "Group 1", [1])], [lite_user(1, role="internal_user_viewer")]), []),
    Case("a role set by hand on a user with no app role is left alone",
         directory(IN_G1, [user(1)]), litellm([team(G1, "Group 1", [1])], [lite_user(1, role="proxy_admin")]), []),
    Case("a role the sync set and an admin changed since is left, and no longer the sync's",
         directory(IN_G1, [user(1)]),
         litellm([team(G1, "Group 1", [1])], [lite_user(1, role="internal_user", sync_role="proxy_admin")]),
         ["update user user1@contoso.com: update the sync's record of the role"]),
    Case("the right role already (SSO set it at a login) is recorded as the sync's",
         roles(directory(IN_G1, [user(1)]), u1={"internal_user"}),
         litellm([team(G1, "Group 1", [1])], [lite_user(1, role="internal_user")]),
         ["update user user1@contoso.com: update the sync's record of the role"]),
    Case("in step: nothing",
         roles(directory(IN_G1, [user(1)]), u1={"internal_user"}),
         litellm([team(G1, "Group 1", [1])], [lite_user(1, role="internal_user", sync_role="internal_user")]), []),
    Case("app roles not read completely: no role changes",
         replace(roles(directory(IN_G1, [user(1)]), u1={"internal_user"}), app_roles_complete=False,
                 app_roles_error="appRoleAssignedTo: 503"),
         litellm([team(G1, "Group 1", [1])], [lite_user(1, role="proxy_admin", sync_role="proxy_admin")]), [],
         notes=("no role is changed",)),
    Case("SYNC_APP_ROLES=false leaves roles alone",
         roles(directory(IN_G1, [user(1)]), u1={"proxy_admin"}),
         litellm([team(G1, "Group 1", [1])], [lite_user(1, role="internal_user")]), [],
         Policy(now=NOW, app_roles=False)),
    Case("a user matched by e-mail is adopted, role and all, in one update",
         roles(directory(IN_G1, [user(1)]), u1={"proxy_admin_viewer"}),
         litellm([team(G1, "Group 1", ["legacy"])],
                 [lite_user(1, managed=False, role="internal_user", user_id="legacy")]),
         ["update user user1@contoso.com: mark as managed; role internal_user -> proxy_admin_viewer"]),
    Case("someone who comes back with a role: one update",
         roles(directory(IN_G1, [user(1)]), u1={"internal_user"}),
         litellm([team(G1, "Group 1", [1])], [left(1, blocked=[K1], role="internal_user_viewer")],
                 {U1: (replace(K1, blocked=True),)}),
         ["update user user1@contoso.com: role internal_user_viewer -> internal_user; back in scope, "
          "unblock 1 key(s)"]),
]


@pytest.mark.parametrize("case", LEAVERS + ROLES, ids=[c.name for c in LEAVERS + ROLES])
def test_planner(case: Case) -> None:
    result = plan(case.entra, case.state, case.policy)
    assert lines(result) == case.expected
    for expected_note in case.notes:
        assert any(expected_note in n for n in result.notes + result.gaps), (result.notes, result.gaps)


def test_a_block_records_when_and_which_keys_first() -> None:
    entra = looked_up(directory(IN_G1, [user(1)]), u3=None)
    state = litellm([team(G1, "Group 1", [1])], [1, left(3, days_ago=2, blocked=[K3])],
                    {U3: (replace(K3, blocked=True), replace(K2, blocked=True), K1)})
    block = plan(entra, state, Policy(now=NOW)).actions[0]
    assert isinstance(block, BlockUser) and block.removal
    marker = block.metadata["entra_sync"]
    assert marker["blocked_keys"] == [K3.token, K1.token]  # K2 an admin blocked: not the sync's
    assert marker["left_at"] == (NOW - timedelta(days=2)).isoformat()  # the first day counts


def test_the_marker_names_the_app_and_another_apps_user_in_scope_is_adopted() -> None:
    entra = directory([group(1, [1, 2])], [user(1), user(2)])
    state = litellm([team(G1, "Group 1", [2])], [lite_user(2, app="other-app")])
    create, update, _ = plan(entra, state, Policy(now=NOW, app="our-app")).actions
    assert isinstance(create, CreateUser) and create.params["metadata"]["entra_sync"]["app"] == "our-app"
    assert isinstance(update, UpdateUser) and update.adopt and update.metadata["entra_sync"]["app"] == "our-app"


def test_a_new_user_gets_the_marker_and_the_role_at_creation() -> None:
    entra = roles(directory(IN_G1, [user(1)]), u1={"proxy_admin"})
    create = plan(entra, litellm([team(G1, "Group 1")]), Policy(now=NOW,
                  default_user_params={"max_budget": 5.0, "metadata": {"dept": "x"}})).actions[0]
    assert isinstance(create, CreateUser)
    assert create.params == {"max_budget": 5.0, "user_role": "proxy_admin", "metadata": {
        "dept": "x", "entra_sync": {"entra_id": U1, "managed_by": "entra-litellm-sync", "role": "proxy_admin"}}}


def test_a_comeback_clears_the_leaver_record_and_keeps_the_rest() -> None:
    state = litellm([team(G1, "Group 1", [1])], [left(1, blocked=[K1], role="internal_user", **{"x": 1})])
    update = plan(directory(IN_G1, [user(1)]), state, Policy(now=NOW)).actions[0]
    assert isinstance(update, UpdateUser) and not update.removal and update.unblock_keys == (K1.token,)
    assert update.metadata == {"entra_sync": {"entra_id": U1, "managed_by": "entra-litellm-sync", "x": 1}}
