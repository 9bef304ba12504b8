"""Applies a SetTeamAdmins action: the role changes, then the team's record of the admins the
sync made, for the changes that went through (also when a later one failed), so that the record
never names an admin the sync did not make nor forgets one it did."""

from __future__ import annotations

from sync_core.actions import SetTeamAdmins
from sync_core.litellm.client import LiteLLMClient
from sync_core.model import ADMINS_KEY, MANAGED_KEY


async def set_team_admins(client: LiteLLMClient, action: SetTeamAdmins) -> None:
    made: list[str] = []
    unmade: list[str] = list(action.forget)
    try:
        for user_id in action.promote:
            await client.set_member_role(action.team_id, user_id, "admin")
            made.append(user_id)
        for user_id in action.demote:
            await client.set_member_role(action.team_id, user_id, "user")
            unmade.append(user_id)
        for user_id in action.drop:
            await client.remove_member(action.team_id, user_id=user_id, user_email=None)
            unmade.append(user_id)
    finally:
        if made or unmade:
            await _record(client, action.team_id, made, unmade)


async def _record(client: LiteLLMClient, team_id: str, made: list[str], unmade: list[str]) -> None:
    # Read now, not at planning: the setup phase may have rewritten the metadata since.
    metadata = await client.team_metadata(team_id)
    marker = dict(metadata.get(MANAGED_KEY) or {})
    recorded = marker.get(ADMINS_KEY)
    admins = (set(recorded) if isinstance(recorded, list) else set()) | set(made)
    marker[ADMINS_KEY] = sorted(admins - set(unmade))
    await client.update_team(team_id, metadata={**metadata, MANAGED_KEY: marker})
