"""Virtual keys: the key table (keys are made by /user/new), key lookup for auth, and key counts."""

from __future__ import annotations

import copy
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from emulators.litellm.state.base import StateBase


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
