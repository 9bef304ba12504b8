"""Creating many users through LiteLLM's bulk route (/management/v1/users/bulk) at scale.

The proxy writes the roster of every team a request names under that team's advisory lock, one
team after another, at some 15-20 ms a team (1.108.7 on a 2-core machine; bench/README.md): a
request costs about as much as the number of distinct teams its users join, and requests that
share a team wait for each other at its lock. So, for a large initial sync:

- users go out ordered by team (``by_shared_teams``): each team's new members together, the
  smallest teams first, so a request touches few teams (20,000 people in 1,000 groups: 9,010 team
  writes instead of 16,885 in plan order);
- one bulk request is in flight (SYNC_LITELLM_BULK_IN_FLIGHT): the proxy's one worker does them
  one after another anyway, and a second one in flight waits for the first at their shared teams
  inside its own transaction, which LiteLLM ends after 5 s;
- a bulk request has a timeout of its own (SYNC_LITELLM_BULK_TIMEOUT_SECONDS), doubled for the rest
  of the run each time an answer is lost.

A request whose answer is lost (timed out, connection reset) may still be running on the proxy.
It is never sent again as it was (``BulkCreator.create``): its users are read back by id; those
present count as created, with their memberships unknown (the executor leaves those to member_add,
which skips members already there and waits at the same team lock); only the absent ones go out
again, in a new request. So a retry never names a user the lost request may have created.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from sync_core.errors import TargetError
from sync_core.litellm.client import LiteLLMClient, NewUser, RowResult

log = logging.getLogger(__name__)

T = TypeVar("T")
ROUNDS = 4  # requests for one chunk: the first and up to three for users a lost answer left absent
MAX_TIMEOUT = 1800.0


def by_shared_teams(items: Sequence[T], teams: Callable[[T], Collection[str]]) -> list[T]:
    """``items`` reordered so that the ones joining a team stand together: each goes with its
    smallest team (fewest of ``items`` joining it; ties by team id), smallest teams first, the
    ones joining no team last; plan order within a team."""
    joiners: dict[str, int] = defaultdict(int)
    for item in items:
        for team in teams(item):
            joiners[team] += 1
    groups: dict[tuple[int, str] | None, list[T]] = defaultdict(list)
    for item in items:
        groups[min(((joiners[t], t) for t in teams(item)), default=None)].append(item)
    order = sorted(key for key in groups if key is not None)
    return [item for key in [*order, None] for item in groups.get(key, [])]


class BulkCreator:
    """Bulk user creations of one run, sharing the timeout that lost answers raise."""

    def __init__(self, client: LiteLLMClient, timeout: float) -> None:
        self._client = client
        self.timeout = timeout

    async def create(self, users: Sequence[NewUser]) -> list[RowResult]:
        """One result per user, in order, also when answers are lost on the way (see the module)."""
        results: dict[str, RowResult] = {}
        pending = list(users)
        for round_ in range(1, ROUNDS + 1):
            try:
                answered = await self._client.create_users(pending, timeout=self.timeout)
            except TargetError as exc:
                if exc.status is not None:  # an answer, not a lost one: the proxy refused the request
                    if not results:
                        raise
                    results.update({u.user_id: RowResult(str(exc)) for u in pending})
                    break
                pending = await self._resolve(pending, results, exc, last=round_ == ROUNDS)
                if not pending:
                    break
                continue
            results.update(zip((u.user_id for u in pending), answered, strict=True))
            break
        return [results[u.user_id] for u in users]

    async def _resolve(self, pending: list[NewUser], results: dict[str, RowResult], exc: TargetError,
                       *, last: bool) -> list[NewUser]:
        """After a lost answer: the users that exist now are done (memberships unknown); the
        others are still to create, or failed with ``exc`` when this was the last round."""
        self.timeout = min(self.timeout * 2, MAX_TIMEOUT)
        present = {u.user_id for u in await self._client.users_by_id([u.user_id for u in pending])}
        absent = [u for u in pending if u.user_id not in present]
        log.warning("bulk user creation lost its answer (%s): %d of %d users are in, %s; "
                    "bulk timeout now %.1f s",
                    exc, len(pending) - len(absent), len(pending),
                    "none absent" if not absent else "the rest fail" if last else "sending the rest again",
                    self.timeout)
        results.update({u.user_id: RowResult() for u in pending if u.user_id in present})
        if last:
            results.update({u.user_id: RowResult(str(exc)) for u in absent})
            return []
        return absent
