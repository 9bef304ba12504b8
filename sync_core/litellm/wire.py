"""LiteLLM admin API wire models: only the fields the sync reads, everything else ignored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from sync_core.model import LiteLLMKey, LiteLLMTeam, LiteLLMUser, TeamMember
from sync_core.team_policy import METADATA_FIELDS


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MemberWire(_Wire):
    user_id: str | None = None
    user_email: str | None = None
    role: str = "user"


class ModelTableWire(_Wire):
    model_aliases: dict[str, Any] | None = None


class TeamWire(_Wire):
    team_id: str
    team_alias: str | None = None
    metadata: dict[str, Any] | None = None
    blocked: bool = False
    members_with_roles: list[MemberWire] = Field(default_factory=list)
    # The fields a team policy sets (team_policy.FIELDS) that the team row carries.
    models: list[str] | None = None
    max_budget: float | None = None
    soft_budget: float | None = None  # 1.80.0 has no such column: absent
    budget_duration: str | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    model_id: int | None = None
    litellm_model_table: ModelTableWire | None = None

    def to_model(self) -> LiteLLMTeam:
        return LiteLLMTeam(
            team_id=self.team_id,
            alias=self.team_alias,
            metadata=self.metadata or {},
            blocked=self.blocked,
            members=tuple(TeamMember(m.user_id, m.user_email, m.role) for m in self.members_with_roles),
            fields=self._fields(),
        )

    def _fields(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in _ROW_FIELDS if name in self.model_fields_set}
        if "models" in row:
            row["models"] = row["models"] or []
        metadata = self.metadata or {}
        row |= {name: metadata.get(name) for name in METADATA_FIELDS}
        # Aliases live in a model table the list joins in (1.108.7); 1.80.0 names the table (model_id)
        # without joining it: unknown there.
        if self.litellm_model_table is not None:
            row["model_aliases"] = self.litellm_model_table.model_aliases or {}
        elif self.model_id is None:
            row["model_aliases"] = {}
        return row


_ROW_FIELDS = ("models", "max_budget", "soft_budget", "budget_duration", "tpm_limit", "rpm_limit")


class UserWire(_Wire):
    user_id: str
    user_email: str | None = None
    user_role: str | None = None
    sso_user_id: str | None = None
    metadata: dict[str, Any] | None = None

    def to_model(self) -> LiteLLMUser:
        return LiteLLMUser(self.user_id, self.user_email.lower() if self.user_email else None,
                           role=self.user_role, sso_user_id=self.sso_user_id, metadata=self.metadata or {})


class KeyWire(_Wire):
    token: str
    key_alias: str | None = None
    key_name: str | None = None  # the masked secret, "sk-...3Rjg"
    team_id: str | None = None
    blocked: bool | None = None  # null until the key was first blocked or unblocked
    user_id: str | None = None  # the owner; None for a key of a team or a service
    created_at: datetime | None = None

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # both proxies write "...Z"; a stamp without a zone is the database's UTC
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    def to_model(self) -> LiteLLMKey:
        return LiteLLMKey(self.token, self.key_alias or self.key_name, self.team_id, bool(self.blocked))


class Page(_Wire):
    total_pages: int = Field(1, ge=0, le=100_000)  # bounded: it decides how many requests follow


class TeamPage(Page):
    teams: list[TeamWire]


class UserPage(Page):
    users: list[UserWire]


class KeyPage(Page):
    keys: list[KeyWire]
    total_count: int | None = Field(None, ge=0)


def error_message(body: Any) -> str:
    """LiteLLM's error shapes: {"error": {"message"}}, FastAPI's {"detail": ...} and, on the
    /management/v1 routes, RFC 9457 problem documents ({"type", "title", "status", "detail"})."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        detail = body.get("detail")
        if isinstance(detail, dict) and "error" in detail:
            return str(detail["error"])
        if isinstance(detail, list) and detail:
            first = detail[0]
            if isinstance(first, dict):
                loc = ".".join(str(p) for p in first.get("loc", []))
                return f"{loc}: {first.get('msg')}"
        if detail is not None:
            return str(detail)
    return str(body)[:500]


def error_type(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        kind = body["error"].get("type")
        return str(kind) if kind is not None else None
    return None


class UserCreateRow(_Wire):
    """One row of /management/v1/users/bulk's answer, in request order."""

    user_id: str | None = None
    success: bool
    teams: list[str] | None = None
    error: str | None = None


class UserCreateResults(_Wire):
    data: list[UserCreateRow]


class MemberDeleteRow(_Wire):
    """One row of /management/v1/teams/{team_id}/members/bulk_delete's answer, in request order."""

    user_id: str | None = None
    user_email: str | None = None
    success: bool
    error: str | None = None


class MemberDeleteResults(_Wire):
    data: list[MemberDeleteRow]


class BudgetWire(_Wire):
    """One row of /budget/info: a team's member budget (the team_member_* fields)."""

    budget_id: str
    max_budget: float | None = None
    budget_duration: str | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None


BudgetList = TypeAdapter(list[BudgetWire])


class ModelWire(_Wire):
    id: str


class ModelList(_Wire):
    """/v1/models: {"data": [{"id": <model name>}, ...], "object": "list"}."""

    data: list[ModelWire]
