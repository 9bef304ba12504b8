"""A real LiteLLM proxy in place of the LiteLLM emulator host (``python -m bench --litellm-url``).

It answers the same commands as ``hosts.Host`` for what the bench needs: ``members`` (the
tenant's teams only: the proxy holds other teams too), ``sign_in`` and ``stats`` (how many teams and users the
proxy holds, for the read bound). A real proxy has no request log and runs in a process the bench
does not own, so the LiteLLM request counts come from the sync's own stats, and its CPU and
memory are not measured. Nothing is ever deleted: every bench run uses fresh ids and e-mails.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx

from bench.hosts import SSO_METADATA

PAGE = 100


class RealProxy:
    def __init__(self, url: str, key: str, team_ids: Collection[str]) -> None:
        self.url = url.rstrip("/")
        self._team_ids = frozenset(team_ids)
        self._http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=120)

    def call(self, *command: Any) -> Any:
        name = command[0]
        if name == "members":
            return self._members()
        if name == "stats":
            return {"by_method": {}, "errors": {}, "cpu_s": None, "max_rss_mb": None,
                    "teams": self._total("/v2/team/list"), "users": self._total("/user/list")}
        if name == "sign_in":
            return sign_in(self._http, command[1])
        if name in ("reset", "stop"):
            return None
        raise ValueError(f"unknown command {name!r}")

    def stop(self) -> None:
        self._http.close()

    def __enter__(self) -> RealProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _total(self, path: str) -> int:
        answer = self._http.get(path, params={"page": 1, "page_size": 1}).raise_for_status()
        return int(answer.json()["total"])

    def _members(self) -> dict[str, Any]:
        members: dict[str, list[str]] = {}
        aliases: dict[str, str | None] = {}
        page = 1
        while True:
            params = {"page": page, "page_size": PAGE, "sort_by": "team_id", "sort_order": "asc"}
            body = self._http.get("/v2/team/list", params=params).raise_for_status().json()
            for team in body["teams"]:
                if team["team_id"] in self._team_ids:
                    members[team["team_id"]] = [m["user_id"] for m in team["members_with_roles"]
                                                if m.get("role") == "user"]
                    aliases[team["team_id"]] = team.get("team_alias")
            if page >= body["total_pages"]:
                return {"members": members, "aliases": aliases}
            page += 1


def sign_in(http: httpx.Client, users: list[tuple[str, str]]) -> int:
    """(user id, e-mail) pairs made users as SSO makes them (no key, no team): 500 to a bulk
    creation where the proxy has the route, else one /user/new each."""
    rows = [{"user_id": u, "user_email": e, "sso_user_id": u, "auto_create_key": False,
             "metadata": dict(SSO_METADATA)} for u, e in users]
    if http.get("/management/v1/users/bulk").status_code == 405:
        for i in range(0, len(rows), 500):
            http.post("/management/v1/users/bulk", json={"users": rows[i:i + 500]}).raise_for_status()
    else:
        for row in rows:
            http.post("/user/new", json=row).raise_for_status()
    return len(rows)
