"""Settings: app settings / environment variables, validated once, before any network call.

Every problem becomes a ConfigError that names the setting (and the field inside a JSON
setting) and the expected form; secret values are never echoed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from sync_core import redact
from sync_core.errors import ConfigError
from sync_core.leavers import LeaverAction
from sync_core.planner import OrphanAction, Policy
from sync_core.team_policy import TeamPolicy
from sync_core.text import one_line

KEY_VAULT_PREFIXES = ("@microsoft.keyvault(", "@microsoft.appconfiguration(")  # any letter case
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _guid(value: str) -> str:
    if not GUID_RE.fullmatch(value):
        raise ValueError("expected a GUID such as 11112222-bbbb-3333-cccc-4444dddd5555")
    return value.lower()


Guid = Annotated[str, AfterValidator(_guid)]
# JSON numbers LiteLLM can store: finite floats (1e400 and Infinity parse as inf), 64-bit integers.
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
Duration = Annotated[str, Field(pattern=r"^\d+(s|m|h|d|w|mo)$")]
UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    def to_request(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class _LimitParams(_Params):
    """The budget and rate fields LiteLLM's teams and users share."""

    max_budget: Amount | None = None
    budget_duration: Duration | None = None
    models: list[str] | None = None
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None
    max_parallel_requests: Count | None = None
    metadata: dict[str, Any] | None = None


class DefaultTeamParams(_LimitParams):
    """LiteLLM's default_team_params: applied when the sync creates a team, never re-applied."""

    soft_budget: Amount | None = None
    team_member_permissions: list[str] | None = None
    team_member_budget: Amount | None = None
    tags: list[str] | None = None
    guardrails: list[str] | None = None
    model_aliases: dict[str, str] | None = None
    organization_id: str | None = None


class DefaultInternalUserParams(_LimitParams):
    """LiteLLM's default_internal_user_params: applied when the sync creates a user."""

    user_role: UserRole | None = None


def _ncrontab(value: str) -> str:
    fields = value.split()
    if len(fields) != 6 or not all(re.fullmatch(r"[0-9*/,\-A-Za-z?]+", f) for f in fields):
        raise ValueError("expected a 6-field NCRONTAB expression such as '0 */15 * * * *'")
    return value


class GraphSettings(BaseModel):
    """Where Microsoft Graph is and which tenant: all that `grant-permissions` needs."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    entra_tenant_id: Guid | None = Field(None, alias="ENTRA_TENANT_ID")
    graph_base_url: str = Field("https://graph.microsoft.com/v1.0", alias="GRAPH_BASE_URL")
    graph_access_token: SecretStr | None = Field(None, alias="GRAPH_ACCESS_TOKEN")
    http_timeout: float = Field(30.0, gt=0, le=300, alias="SYNC_HTTP_TIMEOUT_SECONDS")

    @field_validator("graph_access_token", "litellm_master_key", "entra_client_secret", check_fields=False)
    @classmethod
    def _header_safe(cls, value: SecretStr | None) -> SecretStr | None:
        # httpx refuses such a header, quoting it whole in its error: refused here, the value unsaid.
        if value is not None and not all(" " <= char <= "~" for char in value.get_secret_value()):
            raise ValueError("contains a control character (a line break?) or a non-ASCII character, which "
                             "an HTTP header cannot carry; copy the value again")
        return value

    @field_validator("graph_base_url")
    @classmethod
    def _graph_url(cls, value: str) -> str:
        _check_url(value, allow_http_on_loopback=True)
        return value.rstrip("/")

    @model_validator(mode="after")
    def _static_token_on_loopback(self) -> GraphSettings:
        if self.graph_access_token is not None and not self.graph_on_loopback:
            raise ValueError("GRAPH_ACCESS_TOKEN: a static token is accepted only when GRAPH_BASE_URL "
                             "is on localhost or 127.0.0.1 (emulators)")
        return self

    @property
    def graph_on_loopback(self) -> bool:
        return (urlsplit(self.graph_base_url).hostname or "") in LOOPBACK_HOSTS

    @property
    def graph_scope(self) -> str:
        """The token audience: the Graph root of the configured cloud (graph.microsoft.us, ...)."""
        parts = urlsplit(self.graph_base_url)
        return f"{parts.scheme}://{parts.netloc}/.default"

    # Settings needed together: (the setting a problem names, the problem, whether the set names
    # have it). Checked on the names given, so they are reported alongside every other problem.
    _together: ClassVar[tuple[tuple[str, str, Callable[[set[str]], bool]], ...]] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """The settings, or one ConfigError listing every problem found (one line each)."""
        references = unresolved_references(env, cls)
        hint = unresolved_reference_hint(env)
        problems = [(name, hint) for name in references]
        values = _prepare(env, cls, problems, skip=references)
        given = set(values) | set(references)
        problems += [(name, problem) for name, problem, broken in cls._together if broken(given)]
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            problems += [p for p in _problems(exc) if p[0] not in references]
        if problems:
            raise ConfigError(*problems[0], *problems[1:])
        return settings


class Settings(GraphSettings):
    """Every setting the product reads, by its app-setting name."""

    litellm_base_url: str = Field(alias="LITELLM_BASE_URL")
    litellm_master_key: SecretStr = Field(alias="LITELLM_MASTER_KEY", min_length=1)
    entra_client_id: Guid | None = Field(None, alias="ENTRA_CLIENT_ID")
    entra_client_secret: SecretStr | None = Field(None, alias="ENTRA_CLIENT_SECRET")
    entra_app_id: Guid | None = Field(None, alias="ENTRA_APP_ID")
    entra_service_principal_id: Guid | None = Field(None, alias="ENTRA_SERVICE_PRINCIPAL_ID")
    default_team_params: DefaultTeamParams = Field(default_factory=DefaultTeamParams,
                                                   alias="DEFAULT_TEAM_PARAMS")
    default_internal_user_params: DefaultInternalUserParams = Field(
        default_factory=DefaultInternalUserParams, alias="DEFAULT_INTERNAL_USER_PARAMS")
    nested_groups: bool = Field(True, alias="SYNC_NESTED_GROUPS")
    user_email_attribute: Literal["userPrincipalName", "mail"] = Field(
        "userPrincipalName", alias="SYNC_USER_EMAIL_ATTRIBUTE")
    orphaned_team_action: OrphanAction = Field(OrphanAction.BLOCK, alias="SYNC_ORPHANED_TEAM_ACTION")
    leaver_action: LeaverAction = Field(LeaverAction.BLOCK, alias="SYNC_LEAVER_ACTION")
    leaver_delete_after_days: int = Field(30, ge=1, le=3650, alias="SYNC_LEAVER_DELETE_AFTER_DAYS")
    app_roles: bool = Field(True, alias="SYNC_APP_ROLES")
    schedule: str | None = Field(None, alias="SYNC_SCHEDULE")
    max_removals: NonNegativeInt = Field(100, alias="SYNC_MAX_REMOVALS")
    max_removal_percent: float = Field(20.0, ge=0, le=100, alias="SYNC_MAX_REMOVAL_PERCENT")
    graph_concurrency: int = Field(8, ge=1, le=64, alias="SYNC_GRAPH_CONCURRENCY")
    # Graph reads are paced to this many resource units per 10 s (0: no budget, though a 429 still
    # pauses every read).
    # A large tenant's quota is 8,000 per app and tenant; a quarter is left for calls in flight.
    graph_ru_per_10s: int = Field(6000, ge=0, le=150_000, alias="SYNC_GRAPH_RU_PER_10S")
    litellm_concurrency: int = Field(16, ge=1, le=32, alias="SYNC_LITELLM_CONCURRENCY")
    member_add_chunk: int = Field(200, ge=1, le=500, alias="SYNC_MEMBER_ADD_CHUNK")
    # LiteLLM's bulk routes (/management/v1/...): "auto" uses them where the proxy offers them.
    litellm_bulk: Literal["auto", "on", "off"] = Field("auto", alias="SYNC_LITELLM_BULK")
    # Rows per bulk request; the proxy takes at most 500 (more is a 422).
    user_create_chunk: int = Field(500, ge=1, le=500, alias="SYNC_USER_CREATE_CHUNK")
    member_delete_chunk: int = Field(500, ge=1, le=500, alias="SYNC_MEMBER_DELETE_CHUNK")
    # Users per /user/bulk_update (the proxy's limit is 500: more is a 400). The proxy does the rows
    # one after another, each as long as a /user/update: 100 keep a request well inside its timeout.
    user_update_chunk: int = Field(100, ge=1, le=500, alias="SYNC_USER_UPDATE_CHUNK")
    # Bulk user creations at once, and the seconds each (and a bulk update) may take (a creation's
    # doubled after a lost answer): the proxy writes their shared teams in turn (docs/bulk-writes.md).
    litellm_bulk_in_flight: int = Field(1, ge=1, le=32, alias="SYNC_LITELLM_BULK_IN_FLIGHT")
    litellm_bulk_timeout: float = Field(120.0, gt=0, le=1800, alias="SYNC_LITELLM_BULK_TIMEOUT_SECONDS")
    retry_budget: float = Field(120.0, ge=0, le=1800, alias="SYNC_RETRY_BUDGET_SECONDS")
    # Graph is read incrementally (delta queries) between full reads this many hours apart;
    # 0 reads everything every run. Delta links expire after 7 days.
    full_reconcile_hours: float = Field(24.0, ge=0, le=144, alias="SYNC_FULL_RECONCILE_HOURS")
    # The platform cuts HTTP responses at 230 s: POST /api/sync answers 202 after this long.
    http_wait: float = Field(180.0, gt=0, le=220, alias="SYNC_HTTP_WAIT_SECONDS")
    # The provisioning log keeps this many days (sync_core/provisioning_log.py).
    log_retention_days: int = Field(30, ge=1, le=3650, alias="SYNC_LOG_RETENTION_DAYS")
    # A Teams or Slack incoming webhook told when runs need attention (sync_core/notify.py).
    notify_webhook: SecretStr | None = Field(None, alias="SYNC_NOTIFY_WEBHOOK")
    # A YAML file of team settings per group (team_policy_file.py), relative to the app's folder.
    team_policy_file: str | None = Field(None, alias="SYNC_TEAM_POLICY_FILE")
    _team_policy: TeamPolicy = PrivateAttr(default_factory=TeamPolicy)

    @field_validator("litellm_base_url")
    @classmethod
    def _litellm_url(cls, value: str) -> str:
        _check_url(value, allow_http_on_loopback=True)
        return value.rstrip("/")

    @field_validator("notify_webhook")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_url(value.get_secret_value(), allow_http_on_loopback=True)
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return None if value is None else _ncrontab(value)

    _together = (
        ("ENTRA_APP_ID or ENTRA_SERVICE_PRINCIPAL_ID", "one of them is required (the LiteLLM enterprise "
         "app's appId or its service principal object id)",
         lambda given: not {"ENTRA_APP_ID", "ENTRA_SERVICE_PRINCIPAL_ID"} & given),
        ("ENTRA_TENANT_ID", "required (a GUID) to sign in to Microsoft Graph",
         lambda given: not {"ENTRA_TENANT_ID", "GRAPH_ACCESS_TOKEN"} & given),
        ("ENTRA_CLIENT_ID", "required (a GUID) when ENTRA_CLIENT_SECRET is set",
         lambda given: "ENTRA_CLIENT_SECRET" in given and "ENTRA_CLIENT_ID" not in given),
    )

    @model_validator(mode="after")
    def _load_team_policy(self) -> Settings:
        if self.team_policy_file is not None:
            from sync_core.team_policy_file import load  # it imports this module's types

            self._team_policy = load(self.team_policy_file)
        return self

    def policy(self, only_group_ids: frozenset[str] | None = None) -> Policy:
        return Policy(
            default_team_params=self.default_team_params.to_request(),
            default_user_params=self.default_internal_user_params.to_request(),
            orphaned_team_action=self.orphaned_team_action,
            only_group_ids=only_group_ids,
            leaver_action=self.leaver_action,
            leaver_delete_after=timedelta(days=self.leaver_delete_after_days),
            app_roles=self.app_roles,
            app=self.entra_app_id or self.entra_service_principal_id,
            team_policy=self._team_policy,
        )



# Names whose values are JSON objects, and the booleans.
_JSON_SETTINGS = ("DEFAULT_TEAM_PARAMS", "DEFAULT_INTERNAL_USER_PARAMS")
_BOOL_SETTINGS = ("SYNC_NESTED_GROUPS", "SYNC_APP_ROLES")
_SECRET_SETTINGS = ("LITELLM_MASTER_KEY", "ENTRA_CLIENT_SECRET", "GRAPH_ACCESS_TOKEN", "SYNC_NOTIFY_WEBHOOK")


UNRESOLVED_REFERENCE = (
    "is still a Key Vault reference, so the platform could not resolve it: check the app's managed "
    "identity, its 'Key Vault Secrets User' role on the vault (or keyVaultReferenceIdentity for a "
    "user-assigned identity), the vault's network rules and the secret URI"
)
# Only App Service resolves references (it sets WEBSITE_SITE_NAME); Core Tools and the CLI never do.
LOCAL_REFERENCE = (
    "is still a Key Vault reference, which only Azure resolves (WEBSITE_SITE_NAME is unset: this is not "
    "Azure): for a local run put the value itself in local.settings.json (or the environment)"
)


def unresolved_reference_hint(env: Mapping[str, str]) -> str:
    """What to do about a setting still holding a reference, in Azure or on a workstation."""
    return UNRESOLVED_REFERENCE if env.get("WEBSITE_SITE_NAME", "").strip() else LOCAL_REFERENCE


def unresolved_references(env: Mapping[str, str], model: type[BaseModel] | None = None) -> list[str]:
    """The settings (of ``model``, default Settings) still holding a Key Vault reference: the platform
    passes the literal reference on when it cannot resolve it."""
    names = sorted(f.alias for f in (model or Settings).model_fields.values() if f.alias)
    return [name for name in names if env.get(name, "").strip().lower().startswith(KEY_VAULT_PREFIXES)]


def _prepare(env: Mapping[str, str], model: type[BaseModel], problems: list[tuple[str, str]], *,
             skip: Collection[str]) -> dict[str, Any]:
    """The settings of ``model`` found in ``env``, JSON and booleans parsed; what cannot be parsed is
    left out and added to ``problems``, as are the names in ``skip``."""
    redact.remember_settings(env)  # before any check: a refused value stays out of every message too
    values: dict[str, Any] = {}
    for name in (f.alias for f in model.model_fields.values() if f.alias):
        raw = env.get(name)
        if raw is None or raw.strip() == "" or name in skip:
            continue  # unset and empty mean the same: Functions cannot delete an app setting's value
        try:
            values[name] = _parse_json(name, raw) if name in _JSON_SETTINGS else \
                _parse_bool(name, raw.strip()) if name in _BOOL_SETTINGS else raw.strip()
        except ConfigError as exc:
            problems += exc.problems
    return values


def _parse_json(name: str, raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(name, f"is not valid JSON ({exc.msg} at position {exc.pos}); "
                          'expected an object such as {"max_budget": 10}') from None
    if not isinstance(value, dict):
        raise ConfigError(name, f"must be a JSON object, got {type(value).__name__}")
    return value


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def _check_url(value: str, *, allow_http_on_loopback: bool) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an absolute http(s) URL such as https://litellm.example.com")
    if "@" in parts.netloc or parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError("must be a plain base URL, without user info (user:password@), a query or a "
                         "fragment: credentials belong in their own settings")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if parts.scheme == "http" and not (allow_http_on_loopback and parts.hostname in LOOPBACK_HOSTS):
        raise ValueError("must use https (plain http is accepted only for localhost / 127.0.0.1): "
                         "the key would otherwise travel in clear text")


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    return [_problem(error) for error in exc.errors()]


def _problem(error: Any) -> tuple[str, str]:
    """Turn one of pydantic's errors into (setting[.field], problem) without echoing secret input."""
    loc = [str(p) for p in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if not loc:  # a model-level check: its message starts with the setting's name
        setting, _, problem = message.partition(": ")
        return setting, problem
    setting = ".".join(loc)
    if error["type"] == "missing":
        return setting, "is required"
    if error["type"] == "extra_forbidden":
        return setting, "is not a known field (check the spelling; LiteLLM's field names are used)"
    got = redact.redact(one_line(repr(_without_url_extras(error.get("input"))), 120))
    shown = "" if loc[0] in _SECRET_SETTINGS else f" (got {got})"
    return setting, f"{message}{shown}"


def _without_url_extras(value: Any) -> Any:
    """A URL as an error may show it: without user info, query or fragment, where keys hide."""
    if not isinstance(value, str) or "://" not in value:
        return value
    return re.sub(r"//[^/]*@", "//", re.split(r"[?#]", value, maxsplit=1)[0])


def check_schedule(env: Mapping[str, str]) -> str | None:
    """A problem with SYNC_SCHEDULE, or None. The timer needs it; the CLI and HTTP runs do not."""
    value = env.get("SYNC_SCHEDULE", "").strip()
    if not value:
        return "SYNC_SCHEDULE is not set; the host will not index the timer (expected e.g. '0 */15 * * * *')"
    try:
        _ncrontab(value)
    except ValueError as exc:
        return f"SYNC_SCHEDULE: {exc}"
    return None


def load_local_settings(path: Path) -> dict[str, str]:
    """The Values of a Functions local.settings.json, as environment-style strings."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read local settings: {exc}") from None
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise ConfigError(str(path), 'expected a JSON object with a "Values" object')
    # null is unset; a nested object or list is the JSON its setting holds (DEFAULT_TEAM_PARAMS)
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items() if v is not None}
