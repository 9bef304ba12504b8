"""`make demo`: the sync on the built-in demo tenant, with both emulators on 127.0.0.1.

Checks every prerequisite (doctor), shows the plan, applies it, shows that a second run changes
nothing, then changes the tenant (someone leaves a group, a group is renamed, a group is
unassigned) and shows and applies the next plan. Nothing outside this machine is contacted.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from emulators.graph import GraphEmulator, Tenant, load_tenant
from emulators.graph.grants import unsigned_token
from emulators.litellm import LiteLLMEmulator
from sync_core import cli
from sync_core.grant import REQUIRED_PERMISSIONS

DEMO_TENANT = Path(__file__).parent / "tenants" / "demo.json"
MASTER_KEY = "sk-demo-master"
# An app-only token as Entra would issue it to the sync's identity, with its three permissions.
GRAPH_TOKEN = unsigned_token(roles=REQUIRED_PERMISSIONS, app_name="entra-litellm-sync (demo)")
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if os.isatty(1) else ("", "", "")


def step(title: str) -> None:
    print(f"\n{BOLD}== {title}{RESET}", flush=True)


def run(env: dict[str, str], *args: str) -> int:
    print(f"{DIM}$ python -m sync_core {' '.join(args)}{RESET}", flush=True)
    code = cli.main(list(args), env)
    print(f"{DIM}(exit code {code}){RESET}", flush=True)
    return code


def group_id(tenant: Tenant, name: str) -> str:
    return next(g.id for g in tenant.of_kind("group") if g.display_name == name)


def main() -> None:
    tenant = load_tenant(DEMO_TENANT)
    with GraphEmulator(tenant, token=GRAPH_TOKEN) as graph, LiteLLMEmulator(master_key=MASTER_KEY) as lite, \
            tempfile.TemporaryDirectory() as state_dir:
        os.chdir(state_dir)  # the CLI keeps its lock file and last report in ./.sync-state
        lite.state.seed_team("hand-made-team", "Hand-made team (not from Entra)",
                             members=[{"user_id": "someone@contoso.com", "role": "user"}])
        env = {
            "LITELLM_BASE_URL": lite.base_url, "LITELLM_MASTER_KEY": MASTER_KEY,
            "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN,
            "ENTRA_APP_ID": tenant.app.get("appId"),
            "DEFAULT_TEAM_PARAMS": '{"max_budget": 100, "budget_duration": "30d"}',
            "DEFAULT_INTERNAL_USER_PARAMS": '{"user_role": "internal_user", "max_budget": 10}',
        }
        print(f"Graph emulator  {graph.base_url}  (demo tenant: {DEMO_TENANT.name})")
        print(f"LiteLLM emulator {lite.base_url}  (one hand-made team that must stay untouched)")

        step("0. Check every prerequisite (doctor: reads only)")
        run(env, "doctor")
        step("1. What would change (plan: nothing is written)")
        run(env, "plan", "--limit", "12")
        step("2. Apply it")
        run(env, "apply", "--limit", "12")
        step("3. Run again: nothing to do, no write calls")
        writes = len(lite.server.requests(["POST"]))
        run(env, "apply")
        print(f"write calls during the second run: {len(lite.server.requests(['POST'])) - writes}")

        step("4. The tenant changes: someone leaves, a group is renamed, a group is unassigned")
        engineering = group_id(tenant, "Platform Engineering")
        leaver = next(m.id for m in tenant.direct_members(engineering) if m.kind == "user")
        tenant.remove_member(engineering, leaver)
        tenant.rename_group(group_id(tenant, "Sales"), "Sales & Partnerships")
        tenant.unassign(group_id(tenant, "Finance"))
        print(f"- user {leaver} left 'Platform Engineering'\n- 'Sales' is now 'Sales & Partnerships'\n"
              "- 'Finance' is no longer assigned to the app")
        run(env, "plan")
        step("5. Apply the change")
        run(env, "apply")
        hand_made = lite.state.team("hand-made-team")
        print(f"\nhand-made team untouched: alias {hand_made['team_alias']!r}, "
              f"members {[m['user_id'] for m in hand_made['members_with_roles']]}")


if __name__ == "__main__":
    main()
