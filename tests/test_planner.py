"""Table-driven tests of the pure planner: each case is (Entra, LiteLLM, policy) -> action lines."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sync_core.model import LiteLLMUser, user_marker
from sync_core.planner import OrphanAction, Policy, plan
from tests.planning import directory, gid, group, litellm, team, uid, user


def lines(p) -> list[str]:
    return [a.describe() for a in p.actions]


@dataclass
class Case:
    name: str
    entra: object
    state: object
    expected: list[str]
    policy: Policy = field(default_factory=Policy)
    notes: tuple[str, ...] = ()  # substrings that must appear in the plan's notes or gaps


G1, G2, G3 = gid(1), gid(2), gid(3)
U1, U2, U3 = uid(1), uid(2), uid(3)

CASES = [
    Case("new group: team, users and members are created",
         directory([group(1, [1, 2])], [user(1), user(2)]), litellm(),
         [f"create team 'Group 1' ({G1})", f"create user user1@contoso.com ({U1})",
          f"create user user2@contoso.com ({U2})", "add user1@contoso.com to team 'Group 1'",
          "add user2@contoso.com to team 'Group 1'"]),
    Case("in sync: nothing to do",
         directory([group(1, [1])], [user(1)]), litellm([team(G1, "Group 1", [1])], [1]), []),
    Case("a team made by SSO is adopted, not duplicated, and renamed to the group's name",
         directory([group(1, [1], name="Eng")], [user(1)]),
         litellm([team(G1, "eng-old", [1], managed=False, metadata={"cost_center": "42"})], [1]),
         [f"adopt team 'eng-old' ({G1})", f"rename team {G1}: 'eng-old' -> 'Eng'"]),
    Case("someone who left the group is removed",
         directory([group(1, [1])], [user(1), user(2)]), litellm([team(G1, "Group 1", [1, 2])], [1, 2]),
         ["remove user2@contoso.com from team 'Group 1'"]),
    Case("a disabled account is removed and never created",
         directory([group(1, [1, 2, 3])], [user(1), user(2, enabled=False), user(3, enabled=False)]),
         litellm([team(G1, "Group 1", [1, 2])], [1, 2]),
         ["remove user2@contoso.com from team 'Group 1'"]),
    Case("team admins are left alone, even when not in the group",
         directory([group(1, [1])], [user(1)]), litellm([team(G1, "Group 1", [1], admins=[2])], [1, 2]), []),
    Case("a group member who is a team admin is not added again",
         directory([group(1, [1])], [user(1)]), litellm([team(G1, "Group 1", admins=[1])], [1]), []),
    Case("a group whose read failed gets no membership changes (unknown is not empty)",
         directory([group(1, None, error="503 serviceNotAvailable")], []),
         litellm([team(G1, "Group 1", [1, 2])], [1, 2]), [], notes=("503 serviceNotAvailable",)),
    Case("a failed group is still renamed: the name comes from the assignment",
         directory([group(1, None, name="New", error="timeout")], []), litellm([team(G1, "Old", [1])], [1]),
         [f"rename team {G1}: 'Old' -> 'New'"]),
    Case("an unassigned managed team is blocked by default",
         directory([], []), litellm([team(G1, "Group 1", [1])], [1]), [f"block team 'Group 1' ({G1})"]),
    Case("an already blocked orphan is left as it is",
         directory([], []), litellm([team(G1, "Group 1", [1], blocked=True)], [1]), []),
    Case("a team another app's sync manages is not ours: its group's team is adopted, its orphan left alone",
         directory([group(1, [1])], [user(1)]),
         litellm([team(G1, "Group 1", [1], app="other-app"), team(G2, "Group 2", [1], app="other-app")], [1]),
         [f"adopt team 'Group 1' ({G1})", "update user user1@contoso.com: mark as managed"],
         Policy(app="our-app")),
    Case("a marker written before the app was recorded is ours: its orphan is blocked",
         directory([], []), litellm([team(G1, "Group 1", [1])], [1]), [f"block team 'Group 1' ({G1})"],
         Policy(app="our-app")),
    Case("orphan policy delete",
         directory([], []), litellm([team(G1, "Group 1", [1])], [1]), [f"delete team 'Group 1' ({G1})"],
         Policy(orphaned_team_action=OrphanAction.DELETE)),
    Case("orphan policy keep",
         directory([], []), litellm([team(G1, "Group 1", [1])], [1]), [],
         Policy(orphaned_team_action=OrphanAction.KEEP)),
    Case("no orphan handling when the assignment list is incomplete",
         directory([], [], complete=False), litellm([team(G1, "Group 1", [1])], [1]), [],
         notes=("no team is blocked or deleted",)),
    Case("a team the sync blocked is unblocked when its group is assigned again",
         directory([group(1, [1])], [user(1)]),
         litellm([team(G1, "Group 1", [1], blocked=True, blocked_by_sync=True)], [1]),
         [f"unblock team 'Group 1' ({G1})"]),
    Case("a team an admin blocked stays blocked",
         directory([group(1, [1])], [user(1)]), litellm([team(G1, "Group 1", [1], blocked=True)], [1]), []),
    Case("unmanaged teams that are not an assigned group's team are never touched",
         directory([group(1, [1])], [user(1)]),
         litellm([team(G1, "Group 1", [1]), team("hand-made", "Group 1", [2, 3], managed=False)], [1, 2, 3]),
         []),
    Case("a LiteLLM user holding the e-mail under another id is reused",
         directory([group(1, [1])], [user(1)]),
         litellm([team(G1, "Group 1")], [LiteLLMUser("legacy-id", "user1@contoso.com")]),
         ["update user user1@contoso.com: mark as managed", "add user1@contoso.com to team 'Group 1'"],
         notes=("reuses the LiteLLM user 'legacy-id'",)),
    Case("two Entra users with one e-mail: only the first is provisioned",
         directory([group(1, [1, 2])], [user(1, email="same@contoso.com"), user(2, email="same@contoso.com")]),
         litellm([team(G1, "Group 1")]),
         [f"create user same@contoso.com ({U1})", "add same@contoso.com to team 'Group 1'"],
         notes=("share the e-mail same@contoso.com",)),
    Case("two Entra users whose e-mails differ only by case get one LiteLLM user: the first, with a note",
         directory([group(1, [1]), group(2, [2])], [user(1, email="same@contoso.com"), user(2, email="same@contoso.com")]),
         litellm([team(G1, "Group 1"), team(G2, "Group 2")], [LiteLLMUser("legacy-id", "Same@Contoso.COM")]),
         ["update user Same@Contoso.COM: mark as managed", "add same@contoso.com to team 'Group 1'"],
         notes=(f"users {U1} and {U2} would share the LiteLLM user 'legacy-id'",)),
    Case("a LiteLLM user found by e-mail stays with the Entra user whose id it has",
         directory([group(1, [1, 2])], [user(1, email="same@contoso.com"), user(2, email="same@contoso.com")]),
         litellm([team(G1, "Group 1")], [LiteLLMUser(U2, "same@contoso.com", metadata=user_marker(U2))]),
         ["add same@contoso.com to team 'Group 1'"],
         notes=(f"users {U2} and {U1} would share the LiteLLM user '{U2}'",)),
    Case("... and with the Entra user its marker names, whatever the order",
         directory([group(1, [1, 2])], [user(1, email="same@contoso.com"), user(2, email="same@contoso.com")]),
         litellm([team(G1, "Group 1")], [LiteLLMUser("legacy-id", "same@contoso.com", metadata=user_marker(U2))]),
         ["add same@contoso.com to team 'Group 1'"],
         notes=(f"users {U2} and {U1} would share the LiteLLM user 'legacy-id'",)),
    Case("a user without any e-mail is not provisioned",
         directory([group(1, [1])], [user(1, email="")]), litellm([team(G1, "Group 1")]), [],
         notes=("has no e-mail",)),
    Case("users assigned to the app directly get a user, no team",
         directory([], [user(3)], direct=[3]), litellm(), [f"create user user3@contoso.com ({U3})"]),
    Case("provision on demand plans only the named group and no orphans",
         directory([group(1, [1]), group(2, [2])], [user(1), user(2)]),
         litellm([team(G3, "Gone", [3])], [1, 2, 3]),
         [f"create team 'Group 2' ({G2})", "add user2@contoso.com to team 'Group 2'"],
         Policy(only_group_ids=frozenset({G2}))),
    Case("two groups with the same display name are two teams",
         directory([group(1, [1], name="Dup"), group(2, [1], name="Dup")], [user(1)]), litellm(users=[1]),
         [f"create team 'Dup' ({G1})", f"create team 'Dup' ({G2})", "add user1@contoso.com to team 'Dup'",
          "add user1@contoso.com to team 'Dup'"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_planner(case: Case) -> None:
    result = plan(case.entra, case.state, case.policy)
    assert lines(result) == case.expected
    for expected_note in case.notes:
        assert any(expected_note in n for n in (*result.notes, *result.gaps)), (result.notes, result.gaps)


def test_defaults_go_into_what_the_sync_creates() -> None:
    policy = Policy(default_team_params={"max_budget": 10.0}, default_user_params={"user_role": "internal_user"})
    result = plan(directory([group(1, [1])], [user(1)]), litellm(), policy)
    create_team, create_user = result.actions[0], result.actions[1]
    assert create_team.params == {"max_budget": 10.0}  # type: ignore[attr-defined]
    assert create_user.params == {"user_role": "internal_user",  # type: ignore[attr-defined]
                                  "metadata": user_marker(U1)}


def test_adoption_keeps_the_admins_metadata() -> None:
    state = litellm([team(G1, "Group 1", managed=False, metadata={"owner": "alice"})])
    adopt = plan(directory([group(1, [])], []), state, Policy()).actions[0]
    assert adopt.metadata["owner"] == "alice"  # type: ignore[attr-defined]
    assert adopt.metadata["entra_sync"]["group_id"] == G1  # type: ignore[attr-defined]


def test_managed_memberships_counts_user_roles_in_managed_teams_only() -> None:
    state = litellm([team(G1, "a", [1, 2], admins=[3]), team("x", "x", [1, 2, 3], managed=False)])
    assert plan(directory([group(1, [1, 2])], [user(1), user(2)]), state, Policy()).managed_memberships == 2
