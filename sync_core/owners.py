"""Group owners as team admins (team policy ``owners_as_admins``): pure, for the planner.

The sync records the admins it makes in the team's marker and only ever demotes those, when they
stop owning the group: an admin a person made is never touched. Nothing changes for a team when
the group's owners are unknown (not read, or the read failed) or the proxy refuses team admins
(LiteLLM needs a licence for them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from sync_core.actions import SetTeamAdmins
from sync_core.model import EntraGroup, LiteLLMTeam

NO_LICENCE = "team admins need a LiteLLM licence; owners_as_admins has no effect"
LICENCE_UNKNOWN = ("the proxy does not say whether it accepts team admins (a LiteLLM licence); "
                   "owners_as_admins has no effect this run")


def admin_actions(group: EntraGroup, team: LiteLLMTeam | None, owners: Collection[str],
                  members: Collection[str] | None) -> Iterator[SetTeamAdmins]:
    """``owners``: the LiteLLM user_ids of the group's enabled owners (the planner adds those not
    in the team); ``members``: those of its enabled members, None when unknown. Promotions and
    demotions come as separate actions, so that the breaker holds only the demotions."""
    roles = {m.user_id: m.role for m in team.members if m.user_id} if team else {}
    recorded = team.admins_by_sync if team else frozenset()
    name = group.display_name
    promote = tuple(sorted(u for u in owners if roles.get(u) != "admin"))
    gone = sorted(u for u in recorded if u not in owners and roles.get(u) == "admin")
    # An ex-owner leaves the team only when the group's members are known not to include them.
    drop = tuple(u for u in gone if members is not None and u not in members)
    demote = tuple(u for u in gone if u not in drop)
    forget = tuple(sorted(u for u in recorded if roles.get(u) != "admin" and u not in owners))
    if promote or forget:
        yield SetTeamAdmins(team_id=group.id, alias=name, promote=promote, forget=forget,
                            reason=f"owners of group {name!r} are its team's admins (team policy)")
    if demote or drop:
        yield SetTeamAdmins(team_id=group.id, alias=name, demote=demote, drop=drop,
                            reason=f"no longer owners of group {name!r} (team policy owners_as_admins)")
