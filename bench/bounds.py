"""Lower bounds on the requests a scenario needs, for the "x LB" columns.

They are computed from the benchmark's own model of the tenant (``tenantgen.Model``), never from
what the sync did, and they assume the sync's design: a full read of Entra every run (run_sync
without state; see --recorded below for the incremental reader) and of LiteLLM, and LiteLLM's admin
API as it is (one user per /user/new, one member per /team/member_delete, at most ``chunk``
members per /team/member_add).

Graph, requests (each page is one GET, at most P = 999 objects):
    ceil(A / P)                                   appRoleAssignedTo, A = assignment rows (at least 1)
  + sum over assigned groups g of max(1, ceil(o_g / P))
                                                  transitiveMembers, o_g = users (disabled too) and
                                                  nested groups below g: Graph returns both
  + ceil(D / 15)                                  /users?$filter=id in (...), D = direct users
Graph, resource units: the same pages at their graph.md section 1.9 cost: assignments 1 (1 with
$select), transitiveMembers 4 (5, -1 for $select), a user 1.

LiteLLM, reads (pages of 100, the proxy's maximum; one page even when empty):
    max(1, ceil(teams / 100)) + max(1, ceil(users / 100))   teams and users the proxy holds before the run

LiteLLM, writes (e = the expected state after the run, s = the state before it):
    teams created                                 /team/new, one per new assigned group
  + users created                                 /user/new, one per enabled user needed and not present
  + sum over teams t of ceil(adds_t / chunk)      /team/member_add, chunk = SYNC_MEMBER_ADD_CHUNK (200)
  + removals                                      /team/member_delete, one per member
  + renames                                       /team/update
Through LiteLLM's bulk routes (the run's stats say whether it used them):
    teams created
  + ceil(users created / 500)                     /management/v1/users/bulk, new users with their teams
  + sum over teams t of ceil(adds_t' / chunk)     /team/member_add, adds_t' = users already present
  + sum over teams t of ceil(removals_t / 500)    /management/v1/teams/{t}/members/bulk_delete
  + renames

With --recorded (run_recorded: the reader keeps a snapshot and reads Graph incrementally), the
Graph bound of ``initial`` is ``graph_bound_snapshot`` (direct /members pages of every assigned or
nested group, 2 RU each, plus two delta baselines) and that of ``noop`` and ``churn`` is
``graph_bound_delta``: the assignment pages plus one page each of groups/delta and users/delta, at
1 RU each (pages of changes come on top).

The line under each row also says "with Graph delta about N requests": 3, plus one re-read per
group whose members or name changed (``delta_graph_estimate``). It is a rough figure for an
incremental read, never used for a ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.tenantgen import Model, ceil_div
from sync_core.graph.reader import USERS_PER_QUERY
from sync_core.litellm.client import IDS_PER_LOOKUP

PAGE = 999
LITELLM_PAGE = 100
RU_ASSIGNMENTS = 1
RU_TRANSITIVE = 4
RU_MEMBERS = 2
RU_USER = 1


@dataclass(frozen=True)
class Bound:
    graph_requests: int
    graph_ru: int
    litellm_reads: int
    litellm_writes: int
    detail: dict[str, int]

    @property
    def litellm_total(self) -> int:
        return self.litellm_reads + self.litellm_writes


def _assignment_pages(model: Model) -> int:
    return max(1, ceil_div(len(model.assigned) + len(model.direct_users), PAGE))


def graph_bound(model: Model) -> tuple[int, int]:
    """A full read with transitiveMembers (run_sync without state)."""
    assignment_pages = _assignment_pages(model)
    member_pages = sum(max(1, ceil_div(model.page_objects(g), PAGE)) for g in model.assigned)
    user_reads = ceil_div(len(model.direct_users), USERS_PER_QUERY)
    requests = assignment_pages + member_pages + user_reads
    ru = assignment_pages * RU_ASSIGNMENTS + member_pages * RU_TRANSITIVE + user_reads * RU_USER
    return requests, ru


def graph_bound_snapshot(model: Model) -> tuple[int, int]:
    """A full read that keeps a snapshot for delta (--recorded, first run): direct members of every
    group that is assigned or nested below one (/members, 3 RU - 1 for $select), transitive
    membership computed locally, plus one groups/delta and one users/delta baseline (1 RU each)."""
    assignment_pages = _assignment_pages(model)
    wanted = set(model.assigned)
    for gid in model.assigned:
        wanted |= model.transitive(gid)[1]
    member_pages = sum(max(1, ceil_div(len(model.members[g]), PAGE)) for g in wanted)
    user_reads = ceil_div(len(model.direct_users), USERS_PER_QUERY)
    requests = assignment_pages + member_pages + user_reads + 2
    ru = assignment_pages * RU_ASSIGNMENTS + member_pages * RU_MEMBERS + user_reads * RU_USER + 2
    return requests, ru


def graph_bound_delta(model: Model) -> tuple[int, int]:
    """An incremental read with nothing changed (--recorded, later runs): the assignments (they have
    no delta) and one page each of groups/delta and users/delta, 1 RU a page (graph.md section 6b)."""
    requests = _assignment_pages(model) + 2
    return requests, requests


@dataclass(frozen=True)
class Chunks:
    member_add: int  # SYNC_MEMBER_ADD_CHUNK
    user_create: int  # SYNC_USER_CREATE_CHUNK (bulk)
    member_delete: int  # SYNC_MEMBER_DELETE_CHUNK (bulk)
    user_update: int | None = None  # SYNC_USER_UPDATE_CHUNK; None: one /user/update each (bulk off)


def scenario_bound(
    model: Model,
    before: dict[str, frozenset[str]] | None,
    *,
    teams_present: int,
    users_present: int,
    chunks: Chunks,
    renames: int = 0,
    bulk: bool = False,
    signed_in: frozenset[str] = frozenset(),
) -> Bound:
    """``before``: the team memberships LiteLLM holds (None: no team exists yet). ``bulk``: the
    writes of a run through LiteLLM's bulk routes (SYNC_LITELLM_BULK). ``signed_in``: users
    LiteLLM holds in no team and without the sync's marker: adopted (a user update each), not created."""
    graph_requests, graph_ru = graph_bound(model)
    after = model.desired()
    old = before or {}
    users_before = set().union(*old.values()) if old else set()
    users_after = set().union(*after.values()) if after else set()
    adopted = (users_after - users_before) & signed_in
    new_users = users_after - users_before - adopted
    update_calls = len(adopted) if chunks.user_update is None else ceil_div(len(adopted), chunks.user_update)
    teams_created = sum(1 for g in after if g not in old)
    adds = {g: after[g] - old.get(g, frozenset()) for g in after}
    gone = {g: old[g] - after.get(g, frozenset()) for g in old}
    if bulk:  # new users join with their creation; the others by member_add; removals per team
        user_calls = ceil_div(len(new_users), chunks.user_create)
        add_calls = sum(ceil_div(len(a - new_users), chunks.member_add) for a in adds.values())
        removal_calls = sum(ceil_div(len(r), chunks.member_delete) for r in gone.values())
    else:
        user_calls = len(new_users)
        add_calls = sum(ceil_div(len(a), chunks.member_add) for a in adds.values())
        removal_calls = sum(len(r) for r in gone.values())
    writes = teams_created + user_calls + update_calls + add_calls + removal_calls + renames
    reads = max(1, ceil_div(teams_present, LITELLM_PAGE)) + max(1, ceil_div(users_present, LITELLM_PAGE))
    reads += int(bulk and bool(user_calls or removal_calls))  # SYNC_LITELLM_BULK=auto asks the proxy once
    detail = {"teams_created": teams_created, "users_created": len(new_users), "user_calls": user_calls,
              "member_add_calls": add_calls, "adds": sum(len(a) for a in adds.values()),
              "removals": sum(len(r) for r in gone.values()), "removal_calls": removal_calls,
              "renames": renames, "bulk": int(bulk), "users_adopted": len(adopted),
              "update_calls": update_calls}
    return Bound(graph_requests, graph_ru, reads, writes, detail)


def targeted_litellm_reads(model: Model, before: dict[str, frozenset[str]], teams_present: int) -> int:
    """LiteLLM reads of an incremental run (--recorded, later runs): the team pages, the users who
    join a team looked up by id (IDS_PER_LOOKUP to a request), and one e-mail lookup per user that
    LiteLLM does not know yet (directly assigned users in no team come on top; the bench has none)."""
    after = model.desired()
    joiners = {u for g, want in after.items() for u in want - before.get(g, frozenset())}
    known = set().union(*before.values()) if before else set()
    return (max(1, ceil_div(teams_present, LITELLM_PAGE)) + ceil_div(len(joiners), IDS_PER_LOOKUP)
            + len(joiners - known))


def delta_graph_estimate(changed_groups: int) -> int:
    """Graph requests for an incremental (delta) run: groups delta, users delta, assignments,
    plus one transitiveMembers read per changed group (graph.md section 6b)."""
    return 3 + changed_groups
