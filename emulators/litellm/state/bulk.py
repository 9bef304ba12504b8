"""The bulk writes of LiteLLM's /management/v1 routes (1.108.7): many users created at once with
their team memberships, and many members removed from one team at once. Rows succeed or fail
independently; the whole request is one operation under the one lock, as the real proxy writes
each team's roster once under that team's advisory lock.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from emulators.litellm.state.base import StateBase, has_email
from emulators.litellm.state.members import _membership_row
from emulators.litellm.state.users import USER_FIELDS

# An injected row failure: user_id -> the error that row fails with, or None (see BulkRoutes).
RowFault = Callable[[str], str | None]


def _created(user_id: str, email: str | None, teams: list[str], key: str | None) -> dict[str, Any]:
    return {"user_id": user_id, "user_email": email, "success": True, "teams": teams, "key": key,
            "error": None}


def _failed(user_id: str | None, email: str | None, error: str) -> dict[str, Any]:
    return {"user_id": user_id, "user_email": email, "success": False, "teams": None, "key": None,
            "error": error}


def _requested_teams(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(team_id, role) pairs: ``team_id`` alone wins over ``teams`` (str or {team_id, user_role})."""
    if row.get("team_id"):
        return [(row["team_id"], "user")]
    return [(t, "user") if isinstance(t, str) else (t["team_id"], t.get("user_role", "user"))
            for t in row.get("teams") or []]


class BulkState(StateBase):
    """Bulk user creation and bulk member removal (mixed into LiteLLMState)."""

    def bulk_new_users(
        self, rows: Sequence[Mapping[str, Any]], row_fault: RowFault | None = None
    ) -> list[dict[str, Any]]:
        """/management/v1/users/bulk: one result per row, in order. A row fails for a user_id or
        e-mail an earlier row of the request holds, an id or e-mail (any case) that exists, or an
        unknown team; the others are created, then each team's roster is written once."""
        with self.lock, self._operation():
            ids = [row.get("user_id") or str(uuid.uuid4()) for row in rows]
            emails = [(row.get("user_email") or "").strip().lower() or None for row in rows]
            first_id = {uid: i for i, uid in reversed(list(enumerate(ids)))}
            first_email = {e: i for i, e in reversed(list(enumerate(emails))) if e}
            results: list[dict[str, Any] | None] = [None] * len(rows)
            joins: dict[str, list[tuple[str, str | None, str]]] = {}  # team -> (user, e-mail, role)
            for i, row in enumerate(rows):
                uid, email, sent = ids[i], emails[i], row.get("user_email")
                error = self._bulk_row_error(i, uid, email, sent, first_id, first_email,
                                             _requested_teams(row), row_fault)
                if error is not None:
                    results[i] = _failed(uid, sent, error)
                    continue
                teams = list(dict.fromkeys(team_id for team_id, _ in _requested_teams(row)))
                fields = {k: row[k] for k in USER_FIELDS if row.get(k) is not None}
                self._create_user(uid, **fields, teams=teams)
                key = self._new_key(uid, row.get("models") or []) if row.get("auto_create_key") else None
                results[i] = _created(uid, sent, teams, key)
                for team_id, role in _requested_teams(row):
                    joins.setdefault(team_id, []).append((uid, sent, role))
            for team_id, members in joins.items():
                self._join_team(team_id, members)
            return [r for r in results if r is not None]

    def _bulk_row_error(self, i: int, uid: str, email: str | None, sent: str | None,
                        first_id: Mapping[str, int], first_email: Mapping[str, int],
                        teams: list[tuple[str, str]], row_fault: RowFault | None) -> str | None:
        if first_id[uid] != i:
            return f"Duplicate user_id in request: {uid}"
        if email and first_email[email] != i:
            return f"Duplicate user_email in request: {sent}"
        if uid in self.users:
            return f"User id={uid} already exists"
        if email and self._by_email.get(email):
            return f"User email={sent} already exists"
        missing = [f"Team id={team_id} does not exist" for team_id, _ in teams if team_id not in self.teams]
        if missing:
            return "; ".join(missing)
        return row_fault(uid) if row_fault is not None else None

    def _join_team(self, team_id: str, members: list[tuple[str, str | None, str]]) -> None:
        """One roster write: members already on it (by id) are left as they are."""
        team = self.teams[team_id]
        present = {e["user_id"] for e in team["members_with_roles"] if e.get("user_id")}
        for user_id, email, role in members:
            if user_id not in present:
                present.add(user_id)
                team["members_with_roles"].append({"user_id": user_id, "user_email": email, "role": role})
            self.memberships.setdefault((team_id, user_id), _membership_row(user_id, team_id))
        self._touch("team", team)

    def team_writes(self, joins: Sequence[str]) -> list[tuple[str, int, int]]:
        """For a write that added one member per entry of ``joins`` (team ids, in write order):
        (team id, members it added, members it found) per team, for the cost model."""
        with self.lock:
            added: dict[str, int] = {}
            for team_id in joins:
                added[team_id] = added.get(team_id, 0) + 1
            return [(team_id, n, max(0, len(self.teams[team_id]["members_with_roles"]) - n))
                    for team_id, n in added.items() if team_id in self.teams]

    def _team_holders(self, team_id: str, user_id: str | None, email: str | None) -> set[str]:
        """Users (by id, or by exact e-mail) whose own teams list the team, roster entry or not."""
        if user_id:
            candidates = [user_id]
        else:
            candidates = [u for u in self._by_email.get((email or "").lower(), ())
                          if has_email(self.users[u], email or "", fold=False)]
        return {u for u in candidates if u in self.users and team_id in self.users[u]["teams"]}

    def bulk_delete_members(self, team_id: str,
                            members: Sequence[tuple[str | None, str | None]]) -> list[dict[str, Any]]:
        """/management/v1/teams/{team_id}/members/bulk_delete: one result per (user_id, user_email),
        in order; one roster write. Like member_delete it deletes the members' keys in that team.
        Raises TeamNotFound."""
        with self.lock, self._operation():
            team = self._team(team_id)
            roster = team["members_with_roles"]
            by_id: dict[str, list[int]] = defaultdict(list)
            by_email: dict[str, list[int]] = defaultdict(list)
            for i, entry in enumerate(roster):
                if entry.get("user_id"):
                    by_id[entry["user_id"]].append(i)
                if entry.get("user_email"):
                    by_email[entry["user_email"]].append(i)  # matched as stored, case and all
            seen: set[tuple[str, str]] = set()
            gone: set[int] = set()  # indexes of removed roster entries
            removed: set[str] = set()  # user ids
            results = []
            for user_id, email in members:
                ref = ("id", user_id) if user_id else ("email", email or "")
                hits = [i for i in (by_id[user_id] if user_id else by_email[email or ""]) if i not in gone]
                holders = self._team_holders(team_id, user_id, email)
                if ref in seen:
                    error: str | None = "Duplicate member in request"
                elif not hits and not holders:
                    error = "User not found in team"
                else:
                    error = None
                    gone.update(hits)
                    removed.update(roster[i]["user_id"] for i in hits if roster[i].get("user_id"))
                    removed.update(holders)
                seen.add(ref)
                results.append({"user_id": user_id, "user_email": email, "success": error is None,
                                "error": error})
            team["members_with_roles"] = [e for i, e in enumerate(roster) if i not in gone]
            self._touch("team", team)
            for user_id in removed:
                self.memberships.pop((team_id, user_id), None)
                row = self.users.get(user_id)
                if row is not None and team_id in row["teams"]:
                    row["teams"] = [t for t in row["teams"] if t != team_id]
                    self._touch("user", row)
            self._drop_keys(lambda k: k["team_id"] == team_id and k["user_id"] in removed)
            return results
