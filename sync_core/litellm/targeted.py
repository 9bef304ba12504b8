"""LiteLLM's side of an incremental run: only what the plan for this directory depends on.

A full read lists every user: about 500 requests for 50,000 users, each a database query on the
proxy, every few minutes. After an incremental Graph read the planner needs much less: the teams,
and for each Entra user it resolves, whether LiteLLM knows them by id or else by e-mail. A user in
a team's roster exists (LiteLLM takes a deleted user out of every roster). The others that matter
are those to be added to a team and those assigned to the app directly who are in no team; they are
looked up by id, and the ones not found by their e-mail.

Leavers and roles need user rows (the sync's marker, the role). Rows are also read for team
members who are not in scope (a leaver is still in the roster of the team they are leaving) and for
those Entra gives an app role to, and every user holding an admin role (listed by role). Members in
scope are known from rosters only (``row_read`` False): their adoption and a revoked non-admin app role
wait for the next full read. Members of a team the sync blocked are read when its group is assigned
again: they may be coming back. The runner reads more rows on top, from the saved scope (scope.py):
those who left or came back since the last complete run, whatever the rosters say.

For the directory it is given, the state returned makes the planner decide exactly as a full read
would, apart from what waits as said above (tests/test_litellm_targeted.py compares the two plans on
random states). LiteLLM's full reconcile still comes with every full Graph read
(SYNC_FULL_RECONCILE_HOURS). When too many users are unknown (a large change, or LiteLLM emptied by
hand), it gives up and the caller reads everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sync_core.leavers import in_scope
from sync_core.litellm.client import LiteLLMClient
from sync_core.model import Directory, LiteLLMState, LiteLLMTeam, LiteLLMUser

# Beyond these a full listing is cheaper, or about as cheap and simpler to reason about.
MAX_ID_LOOKUPS = 5000  # 100 requests of 50 ids
MAX_EMAIL_LOOKUPS = 200  # one request each
# Users holding these roles are read on every run, so that a revoked admin role is seen within one
# run; there are few of them. Other revoked roles wait for the next full read.
PRIVILEGED = ("proxy_admin", "proxy_admin_viewer")


async def targeted_state(client: LiteLLMClient, directory: Directory,
                         teams: Sequence[LiteLLMTeam]) -> LiteLLMState | None:
    """The state the planner needs for ``directory``, or None when a full read is the better way."""
    rosters = {team.team_id: {m.user_id for m in team.members if m.user_id} for team in teams}
    in_a_team = set().union(*rosters.values())
    unknown = _users_to_look_up(directory, rosters, in_a_team)
    to_read = unknown | _rows_to_read(directory, teams, in_a_team)
    if len(to_read) > MAX_ID_LOOKUPS:
        return None
    found, *admins = await asyncio.gather(client.users_by_id(to_read),
                                          *(client.users_with_role(role) for role in PRIVILEGED))
    missing = unknown - {user.user_id for user in found}
    emails = sorted({directory.users[u].email for u in missing if directory.users[u].email})
    if len(emails) > MAX_EMAIL_LOOKUPS:
        return None
    holders = await asyncio.gather(*(client.users_with_email(email) for email in emails))
    # Roster entries carry an e-mail that may be stale: known only by id, they never answer an
    # e-mail lookup. Every e-mail the planner may ask about was looked up in full above.
    users = [LiteLLMUser(user_id, None, row_read=False) for user_id in in_a_team]
    users += found  # after the roster entries: build() keeps the last entry of a user_id
    users += [user for listed in admins for user in listed]
    users += [user for same_email in holders for user in same_email]
    return LiteLLMState.build(list(teams), users)


def _rows_to_read(directory: Directory, teams: Sequence[LiteLLMTeam], in_a_team: set[str]) -> set[str]:
    """Team members whose rows decide a leaver or a role: members of managed teams who are not in
    scope (leavers if the sync manages them; a team the sync blocked had its members handled then),
    those Entra gives an app role to, and the members of a team the sync blocked whose group is
    assigned again (leavers then, who may be back now)."""
    def members(team: LiteLLMTeam) -> set[str]:
        return {m.user_id for m in team.members if m.user_id}

    managed = set().union(*(members(t) for t in teams if t.managed and not t.blocked_by_sync))
    back = set().union(*(members(t) for t in teams if t.blocked_by_sync and t.team_id in directory.groups))
    return (managed - in_scope(directory)) | (in_a_team & directory.app_roles.keys()) | back


def _users_to_look_up(directory: Directory, rosters: dict[str, set[str]], in_a_team: set[str]) -> set[str]:
    """Enabled Entra users the planner resolves whose existence decides an action: members not yet
    in their group's team, and directly assigned users in no team."""
    enabled = {u for u, user in directory.users.items() if user.enabled}
    unknown: set[str] = set()
    for group in directory.groups.values():
        if group.member_ids is not None:
            unknown |= (group.member_ids & enabled) - rosters.get(group.id, set())
    unknown |= (directory.direct_user_ids & enabled) - in_a_team
    return unknown
