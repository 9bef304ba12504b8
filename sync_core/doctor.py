"""`doctor`: every prerequisite of a sync run, checked one by one, with the fix for each failure.

Nothing is written to LiteLLM or Graph: only GETs go out. The one write is to our own state
storage, where the run lock is taken and released as a run would.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sync_core.errors import ConfigError, LockBusy, SyncError
from sync_core.grant import REQUIRED_PERMISSIONS
from sync_core.settings import Settings, unresolved_reference_hint, unresolved_references

Status = Literal["ok", "fail", "skip"]
GRANT_FIX = ("run `python -m sync_core grant-permissions --principal-id <object id of the sync's identity>` "
             "as an administrator; a token issued before the grant does not carry it (a managed identity's "
             "token is cached for up to 24 h)")


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {"ok": "ok  ", "fail": "FAIL", "skip": "skip"}[self.status]
        return f"{mark} {self.name}: {self.detail}" + (f" -> fix: {self.fix}" if self.fix else "")


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def skip(name: str, because: str) -> Check:
    return Check(name, "skip", f"not checked: {because}")


async def run_checks(env: Mapping[str, str], emit: Callable[[Check], None] = lambda c: None) -> list[Check]:
    """Every check in order, each handed to ``emit`` as soon as it is known."""
    checks: list[Check] = []

    def add(*found: Check) -> list[Check]:
        for check in found:
            checks.append(check)
            emit(check)
        return list(found)

    add(check_key_vault(env))
    settings_check, settings = check_settings(env)
    add(settings_check)
    if settings is None:
        add(*(skip(name, "the settings are not valid") for name in _NEEDS_SETTINGS))
    else:
        await _graph_checks(settings, add)
        await _litellm_checks(settings, add)
    add(*await check_state(env))  # the storage settings are read on their own
    return checks


_NEEDS_SETTINGS = ("graph token", *(f"graph permission {p}" for p in REQUIRED_PERMISSIONS), "enterprise app",
                   "app assignments", "litellm", "litellm key", "litellm bulk routes")


# ---------------------------------------------------------------- settings


def check_key_vault(env: Mapping[str, str]) -> Check:
    unresolved = unresolved_references(env)
    if unresolved:
        return fail("key vault references", f"not resolved: {', '.join(unresolved)}",
                    unresolved_reference_hint(env))
    return ok("key vault references", "none left unresolved")


def check_settings(env: Mapping[str, str]) -> tuple[Check, Settings | None]:
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        names = ", ".join(name for name, _ in exc.problems)
        return fail("settings", str(exc), f"set {names} as the README's settings table says"), None
    return ok("settings", "valid"), settings


# ---------------------------------------------------------------- Microsoft Graph


async def _graph_checks(settings: Settings, add: Callable[..., list[Check]]) -> None:
    from sync_core.graph.client import build_credential, build_graph_client
    from sync_core.graph.reader import GraphReader, GraphSource

    credential = build_credential(settings)
    token_check, claims = await check_graph_token(credential, settings)
    add(token_check)
    client = build_graph_client(settings, credential=credential)
    reader = GraphReader(client, GraphSource.from_settings(settings))
    if token_check.status != "ok":
        add(*(skip(f"graph permission {p}", "no token") for p in REQUIRED_PERMISSIONS))
    else:
        add(*[await check_permission(reader, p, claims) for p in REQUIRED_PERMISSIONS])
    (app,) = add(await check_enterprise_app(reader))
    if app.status == "ok":
        add(await check_assignments(reader))
    else:
        add(skip("app assignments", "no enterprise app"))
    if settings.team_policy_file is not None:  # checked with the settings; here: what each rule matches
        add(await check_team_policy(reader, settings) if app.status == "ok"
            else skip("team policy", "no enterprise app"))


async def check_graph_token(credential: Any, settings: Settings) -> tuple[Check, dict[str, Any] | None]:
    name = "graph token"
    try:
        token = await _get_token(credential, settings.graph_scope)
    except Exception as exc:  # azure-identity raises its own and azure-core's errors
        problem = f"none for {settings.graph_scope}: {_first_line(exc)}"
        return fail(name, problem, _credential_fix(settings)), None
    # Access tokens are opaque to clients (Microsoft says so): the claims are read only as a hint.
    claims = jwt_claims(token)
    if claims is None:
        return ok(name, f"obtained for {settings.graph_scope} (opaque: its claims are not read)"), None
    who = claims.get("app_displayname") or claims.get("appid") or claims.get("oid") or "an unnamed identity"
    return ok(name, f"obtained for {settings.graph_scope} as {who}"), claims


# The smallest read that needs each permission (learn.microsoft.com/graph/permissions-reference):
# reading users' accountEnabled takes User.Read.All (User.ReadBasic.All does not cover it).
PROBES = {
    "Application.Read.All": "servicePrincipals?$top=1&$select=id",
    "GroupMember.Read.All": "groups?$top=1&$select=id",
    "User.Read.All": "users?$top=1&$select=id,accountEnabled",
}


async def check_permission(reader: Any, permission: str, claims: Mapping[str, Any] | None) -> Check:
    """Judged by whether the identity can make the read that needs ``permission``; the token's
    claims, where they can be read, only say what it was granted."""
    name = f"graph permission {permission}"
    path = PROBES[permission]
    try:
        await reader.get(f"{reader.source.base_url}/{path}")
    except Exception as exc:
        if getattr(exc, "response_status_code", None) in (401, 403):
            return fail(name, f"GET /{path} refused: {_graph_error(exc)}{_granted_hint(claims)}", GRANT_FIX)
        return fail(name, f"GET /{path} could not be probed: {_graph_error(exc)}", _graph_fix(exc, "Graph"))
    return ok(name, f"GET /{path} readable{_granted_hint(claims)}")


def _granted_hint(claims: Mapping[str, Any] | None) -> str:
    """An app-only token lists its application permissions in ``roles``; a user's token (a developer
    signed in locally) lists delegated ones in ``scp``, which is what it then runs with."""
    if claims is None:
        return ""
    roles = claims.get("roles")
    granted = set(roles) if isinstance(roles, list) else set(str(claims.get("scp") or "").split())
    kind = "application" if isinstance(roles, list) else "delegated (a user's sign-in)"
    return f"; the token's {kind} permissions: {', '.join(sorted(granted)) or 'none'}"


async def check_enterprise_app(reader: Any) -> Check:
    name = "enterprise app"
    source = reader.source
    which = f"ENTRA_SERVICE_PRINCIPAL_ID {source.service_principal_id}" if source.service_principal_id \
        else f"ENTRA_APP_ID {source.app_id}"
    try:
        sp = await reader.get(f"{source.service_principal_url}?$select=id,appId,displayName")
    except Exception as exc:
        return fail(name, f"{which}: {_graph_error(exc)}", _graph_fix(exc, which))
    return ok(name, f"{sp.get('displayName')!r} (appId {sp.get('appId')}, service principal {sp.get('id')})")


async def check_assignments(reader: Any) -> Check:
    name = "app assignments"
    try:
        page = await reader.page(reader.source.assignments_url)
    except Exception as exc:
        return fail(name, _graph_error(exc), _graph_fix(exc, "the enterprise app"))
    kinds = [row.get("principalType") for row in page.value]
    groups, users = kinds.count("Group"), kinds.count("User")
    more = " (more pages follow)" if page.next_link else ""
    if not groups and not users:
        return fail(name, "readable, but no group or user is assigned to the app",
                    "assign the groups whose members should become LiteLLM teams to the enterprise app")
    return ok(name, f"readable: {groups} group(s) and {users} user(s) on the first page{more}")


async def check_team_policy(reader: Any, settings: Settings) -> Check:
    """Which assigned groups each rule of the (valid) team policy matches; a rule matching none is
    said, as a run's plan says it."""
    name = "team policy"
    try:
        assigned = await reader.assignments()
    except SyncError as exc:
        return fail(name, str(exc), "the app assignments check says why")
    groups = sorted(assigned.groups.items(), key=lambda item: item[1].casefold())
    matched = []
    for rule in settings.policy().team_policy.rules:
        names = [group_name for group_id, group_name in groups if rule.matches(group_id, group_name)]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        matched.append(f"rule {rule.name!r} ({rule.mode}) matches " + (f"{len(names)}: {shown}" if names
                                                                       else "no assigned group"))
    partial = "" if assigned.complete else " (the assignment list broke off: there may be more)"
    return ok(name, f"{settings.team_policy_file}: valid; " + "; ".join(matched) + partial)


async def _get_token(credential: Any, scope: str) -> str:
    # The sync's credentials are azure-identity's sync ones (kiota awaits either); the static one is async.
    if inspect.iscoroutinefunction(credential.get_token):
        return (await credential.get_token(scope)).token
    return (await asyncio.to_thread(credential.get_token, scope)).token


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, unverified: read to report what the token carries, never to trust it."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _credential_fix(settings: Settings) -> str:
    if settings.entra_client_secret is not None:
        return ("check ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET (secrets expire: "
                "Entra admin center > App registrations > Certificates & secrets)")
    return ("enable the Function app's managed identity (a user-assigned one also needs ENTRA_CLIENT_ID); "
            "on a workstation, sign in with `az login`")


def _graph_error(exc: BaseException) -> str:
    from sync_core.graph.reader import describe

    return describe(exc)


def _graph_fix(exc: BaseException, what: str) -> str:
    status = getattr(exc, "response_status_code", None)
    if status == 404:
        return (f"{what} was not found: ENTRA_APP_ID is the enterprise app's application (client) id, "
                "ENTRA_SERVICE_PRINCIPAL_ID its object id (Entra admin center > Enterprise applications)")
    if status in (401, 403):
        return f"the identity may not read {what}: it needs Application.Read.All; {GRANT_FIX}"
    return "check GRAPH_BASE_URL and that Microsoft Graph is reachable from here (network, proxy, firewall)"


# ---------------------------------------------------------------- LiteLLM


async def _litellm_checks(settings: Settings, add: Callable[..., list[Check]]) -> None:
    from sync_core.litellm.client import LiteLLMClient

    # No retry budget: a proxy that does not answer is reported at once, not after two minutes.
    async with LiteLLMClient(settings.litellm_base_url, settings.litellm_master_key.get_secret_value(),
                             timeout=min(settings.http_timeout, 10.0), retry_budget=0) as client:
        (answers,) = add(await check_litellm(client, settings.litellm_base_url))
        if answers.status != "ok":
            add(*(skip(name, "LiteLLM does not answer") for name in ("litellm key", "litellm bulk routes")))
            return
        add(await check_litellm_key(client), await check_bulk_routes(client))
        if settings.team_policy_file is not None and settings.policy().team_policy.reads_owners:
            add(await check_team_admins(client))


async def check_litellm(client: Any, url: str) -> Check:
    from sync_core.errors import TargetAuthError, TargetError
    from sync_core.litellm.capabilities import proxy_version

    try:
        version = await proxy_version(client)
    except TargetAuthError:
        version = None  # 1.108 tells its version to proxy admins only; the key check says why
    except TargetError as exc:
        return fail("litellm", f"no answer from {url}: {exc}",
                    "check LITELLM_BASE_URL and that the proxy is up and reachable from here")
    return ok("litellm", f"answers at {url}, version {version or 'unknown'}")


async def check_litellm_key(client: Any) -> Check:
    from sync_core.errors import TargetAuthError, TargetError
    from sync_core.litellm.capabilities import key_role

    name = "litellm key"
    admin_fix = ("set LITELLM_MASTER_KEY to the proxy's master key or a key of a user with user_role "
                 "proxy_admin: the sync creates teams and users")
    try:
        role = await key_role(client)
    except TargetAuthError as exc:
        return fail(name, f"rejected: {exc.message}", admin_fix)
    except TargetError as exc:
        return fail(name, f"its role could not be read: {exc}", "check the proxy's logs")
    if not role.admin:
        return fail(name, f"not a proxy admin: {role.who}", admin_fix)
    return ok(name, f"a proxy admin ({role.who})")


async def check_bulk_routes(client: Any) -> Check:
    from sync_core.litellm.capabilities import bulk_routes

    try:
        routes = await bulk_routes(client)
    except SyncError as exc:
        return fail("litellm bulk routes", str(exc), "check the proxy's logs")
    return ok("litellm bulk routes", ", ".join(routes) if routes else
              "none offered (as on 1.80.0)")


async def check_team_admins(client: Any) -> Check:
    """A rule makes group owners team admins: whether this proxy takes them. Without a licence it
    does not, and the sync then leaves admins alone: a note, never a failure."""
    from sync_core.litellm.capabilities import team_admins_allowed
    from sync_core.owners import LICENCE_UNKNOWN, NO_LICENCE

    allowed = await team_admins_allowed(client)
    detail = {True: "the proxy has a licence: group owners become team admins",
              False: NO_LICENCE, None: LICENCE_UNKNOWN}[allowed]
    return ok("team admins", detail)


# ---------------------------------------------------------------- state storage


async def check_state(env: Mapping[str, str]) -> list[Check]:
    """The storage answers a read, and the run lock can be taken and released, as a run would."""
    from sync_core.state import open_state

    fix = ("check AzureWebJobsStorage (or its __blobServiceUri / __queueServiceUri settings); with an "
           "identity-based connection the identity needs 'Storage Blob Data Owner' on the account")
    unreachable = skip("run lock", "no state storage")
    try:
        state = open_state(env, retries=0)  # unreachable storage is reported at once
    except ConfigError as exc:
        return [fail("state storage", str(exc), fix), unreachable]
    try:
        try:
            await state.last_report()
        except SyncError as exc:
            return [fail("state storage", f"{state.location}: {exc}", fix), unreachable]
        reached = ok("state storage", f"reachable at {state.location}")
        try:
            async with state.run_lock("doctor"):
                pass
        except LockBusy as exc:
            wait = ("wait for that run to end (GET /api/sync/status shows it); "
                    "a crashed run's lease expires within 60 s")
            return [reached, fail("run lock", f"held: {exc}", wait)]
        except SyncError as exc:
            return [reached, fail("run lock", str(exc), fix)]
        return [reached, ok("run lock", "taken and released")]
    finally:
        await state.aclose()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
