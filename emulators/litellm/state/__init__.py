"""In-memory LiteLLM admin state: teams, users, team memberships and virtual keys.

The semantics follow the real proxy (1.108.7) as observed in shared/reference/litellm-observed.md
and by probing a live proxy. One module per resource, each a mixin over the shared tables of
``base.StateBase``; ``LiteLLMState`` puts them together:

- ``base``: the tables, the lock, transactions and row order, listing helpers
- ``teams``, ``members``, ``users``, ``keys``: each resource's operations and rows
- ``bulk``: the /management/v1 bulk writes (users with their teams, member removals)
- ``errors``: the conditions the state raises; the route handlers render them
- ``clock``: timestamps and budget reset times
"""

from __future__ import annotations

from emulators.litellm.state.bulk import BulkState
from emulators.litellm.state.keys import KeyState
from emulators.litellm.state.members import MemberState
from emulators.litellm.state.teams import TeamState
from emulators.litellm.state.users import UserState


class LiteLLMState(TeamState, MemberState, UserState, KeyState, BulkState):
    """Teams, users, memberships and keys, as LiteLLM's database would hold them."""
