"""What a team policy needs from LiteLLM beyond the team list, read once per run, never per team:
the teams' member budgets (when an enforce rule sets a team_member_* field) and the models the proxy
serves (when a rule names models; a model it does not serve is refused before any write), and
whether it accepts team admins (when a rule makes group owners admins)."""

from __future__ import annotations

from dataclasses import replace

from sync_core.errors import ConfigError
from sync_core.litellm.capabilities import team_admins_allowed
from sync_core.litellm.client import LiteLLMClient
from sync_core.litellm.wire import BudgetWire
from sync_core.model import Directory, LiteLLMState, LiteLLMTeam
from sync_core.team_policy import MEMBER_BUDGET_FIELDS, MEMBER_BUDGET_ID, TeamPolicy, unserved_models
from sync_core.team_policy_file import SETTING


async def read_for_policy(client: LiteLLMClient, directory: Directory, state: LiteLLMState,
                          policy: TeamPolicy) -> LiteLLMState:
    if policy.reads_member_budgets:
        teams = [t for t in state.teams.values() if t.team_id in directory.groups]
        rows = await client.budgets({i for t in teams if (i := _budget_id(t)) is not None})
        read = {t.team_id: _with_member_budget(t, rows) for t in teams}
        state = replace(state, teams={**state.teams, **read})
    if policy.models:
        served = await client.served_models()
        refused = unserved_models(policy, served) if served else []
        if refused:
            names = ", ".join(f"rule {rule!r}: model {model!r}" for rule, model in refused)
            raise ConfigError(SETTING, f"{names}: the proxy does not serve it (it serves "
                                       f"{', '.join(sorted(served))}); nothing was changed")
        state = replace(state, models=served)
    if policy.reads_owners:
        state = replace(state, team_admins=await team_admins_allowed(client))
    return state


def _budget_id(team: LiteLLMTeam) -> str | None:
    budget_id = team.metadata.get(MEMBER_BUDGET_ID)
    return budget_id if isinstance(budget_id, str) and budget_id else None


def _with_member_budget(team: LiteLLMTeam, rows: dict[str, BudgetWire]) -> LiteLLMTeam:
    """The team with its team_member_* fields; all None when it has no member budget."""
    row = rows.get(_budget_id(team) or "")
    read = {name: getattr(row, column) if row else None for name, column in MEMBER_BUDGET_FIELDS.items()}
    return replace(team, fields={**team.fields, **read})
