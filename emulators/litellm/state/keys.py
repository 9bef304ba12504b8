"""Virtual keys: the key table (made by /user/new and /key/generate), key lookup for auth, key
listing by owner, blocking, and key counts. Member removal and user deletion drop keys
(members.py, users.py), as on 1.108.7."""

from __future__ import annotations

import copy
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulators.litellm.state.base import StateBase, page_of, sorted_rows
from emulators.litellm.state.errors import InvalidKeyFormat, KeyNotFound, UserNotFound

_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class KeyQuery:
    page: int
    size: int
    user_id: str | None = None
    team_id: str | None = None
    sort_by: str = "created_at"
    sort_order: str = "desc"


def _key_row(token: str, key_name: str, user_id: str, models: list[str], stamp: str) -> dict[str, Any]:
    return {
        "token": token,
        "key_name": key_name,
        "key_alias": None,
        "soft_budget_cooldown": False,
        "spend": 0.0,
        "total_spend": 0.0,
        "expires": None,
        "models": list(models),
        "aliases": {},
        "config": {},
        "router_settings": {},
        "user_id": user_id,
        "team_id": None,
        "agent_id": None,
        "project_id": None,
        "permissions": {},
        "max_parallel_requests": None,
        "metadata": {},
        "blocked": None,
        "tpm_limit": None,
        "rpm_limit": None,
        "tpd_limit": None,
        "max_budget": None,
        "budget_duration": None,
        "budget_reset_at": None,
        "allowed_cache_controls": [],
        "allowed_routes": [],
        "key_type": None,
        "policies": [],
        "access_group_ids": [],
        "model_spend": {},
        "model_max_budget": {},
        "budget_fallbacks": {},
        "budget_id": None,
        "organization_id": None,
        "object_permission_id": None,
        "created_at": stamp,
        "created_by": None,
        "updated_at": stamp,
        "updated_by": None,
        "settings_updated_at": None,
        "last_active": None,
        "rotation_count": 0,
        "auto_rotate": False,
        "rotation_interval": None,
        "last_rotation_at": None,
        "key_rotation_at": None,
        "budget_limits": None,
        "litellm_budget_table": None,
        "litellm_organization_table": None,
        "litellm_project_table": None,
        "object_permission": None,
        "jwt_key_mappings": None,
        "team_alias": "None",
    }


class KeyState(StateBase):
    """Key operations (mixed into LiteLLMState)."""

    def key_row(self, secret: str) -> dict[str, Any] | None:
        """The key row of an "sk-..." secret, or None (the master key has none)."""
        with self.lock:
            token = self._secrets.get(secret)
            key = self.keys.get(token) if token else None
            return copy.deepcopy(key) if key else None

    def key_owner(self, secret: str) -> dict[str, Any] | None:
        with self.lock:
            token = self._secrets.get(secret)
            key = self.keys.get(token) if token else None
            return copy.deepcopy(self.users.get(key["user_id"])) if key else None

    def user_keys(self, user_id: str | None) -> list[dict[str, Any]]:
        """Keys of one user, or every key when ``user_id`` is None."""
        with self.lock:
            keys = self.keys.values()
            return [copy.deepcopy(k) for k in keys if user_id is None or k["user_id"] == user_id]

    def key_blocked(self, secret: str) -> bool:
        with self.lock:
            token = self._secrets.get(secret)
            return bool(token and self.keys[token]["blocked"])

    def generate_key(self, user_id: str, team_id: str | None) -> tuple[str, dict[str, Any]]:
        """A new key for an existing user, personal or in a team: its secret and its row."""
        with self.lock, self._operation():
            if user_id not in self.users:
                raise UserNotFound(user_id)
            secret = self._new_key(user_id, [])
            row = self.keys[self._secrets[secret]]
            row["team_id"] = team_id
            return secret, copy.deepcopy(row)

    def list_keys(self, query: KeyQuery) -> tuple[list[dict[str, Any]], int]:
        """One page of the keys matching the query (user_id and team_id match exactly), and the total."""
        with self.lock:
            rows = [k for k in self.keys.values() if query.user_id in (None, k["user_id"])
                    and query.team_id in (None, k["team_id"])]
            position = {token: n for n, token in enumerate(self.keys)}
            rows = sorted_rows(rows, query.sort_by, query.sort_order, lambda r: position[r["token"]])
            return copy.deepcopy(page_of(rows, query.page, query.size)), len(rows)

    def set_key_blocked(self, key: str, blocked: bool) -> dict[str, Any]:
        """Block or unblock by secret (sk-...) or hash; idempotent."""
        with self.lock, self._operation():
            token = self._secrets.get(key) if key.startswith("sk-") else key
            if not key.startswith("sk-") and not _HASH.fullmatch(key):
                raise InvalidKeyFormat(key)
            row = self.keys.get(token or "")
            if row is None:
                raise KeyNotFound(key)
            row["blocked"] = blocked
            row["updated_at"] = self._stamp()
            return copy.deepcopy(row)

    def team_key_count(self, team_id: str) -> int:
        with self.lock:
            return sum(1 for k in self.keys.values() if k["team_id"] == team_id)

    def _new_key(self, user_id: str, models: list[str]) -> str:
        secret = "sk-" + secrets.token_urlsafe(16)
        token = hashlib.sha256(secret.encode()).hexdigest()
        self.keys[token] = _key_row(token, f"sk-...{secret[-4:]}", user_id, models, self._stamp())
        self._secrets[secret] = token
        return secret

    def _drop_keys(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        for token in [t for t, k in self.keys.items() if predicate(k)]:
            del self.keys[token]
        for secret in [s for s, t in self._secrets.items() if t not in self.keys]:
            del self._secrets[secret]
