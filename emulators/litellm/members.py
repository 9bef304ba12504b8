"""Team member routes: /team/member_add and /team/member_delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller, member_gate
from emulators.litellm.cost import TeamLocks
from emulators.litellm.errors import detail_error, proxy_error
from emulators.litellm.router import Route
from emulators.litellm.state import LiteLLMState
from emulators.litellm.state.errors import (
    AlreadyInTeam,
    AmbiguousEmail,
    IdentityMismatch,
    MemberNotInTeam,
    PremiumAdmin,
    TeamNotFound,
    TransactionClosed,
    UnknownUserIds,
)
from emulators.litellm.state.members import Member
from emulators.litellm.validation import (
    Field,
    check_id_or_email,
    err,
    invalid,
    json_body,
    member_errors,
    validate_fields,
)

PREMIUM_TAIL = (
    "You must be a LiteLLM Enterprise user to use this feature. If you have a license please set "
    "`LITELLM_LICENSE` in your env. Get a 7 day trial key here: https://www.litellm.ai/enterprise#trial. "
    "\nPricing: https://www.litellm.ai/#pricing. "
)
# /team/member_update's refusal carries the message as a plain string, with other links.
PREMIUM_UPDATE_TAIL = (
    "You must be a LiteLLM Enterprise user to use this feature. If you have a license please set "
    "`LITELLM_LICENSE` in your env. Get a 7 day trial key here: https://www.litellm.ai/#trial. "
    "Pricing: https://www.litellm.ai/#pricing"
)


class MemberRoutes:
    """The team member routes over the state.

    ``limit``: a /team/member_add that would create or link more members than this fails with
    the real proxy's 500 "Transaction already closed" and commits nothing. ``costs``: the real
    proxy's cost of a member_add, charged after it (see cost.py).
    """

    def __init__(self, state: LiteLLMState, limit: int | None, costs: TeamLocks | None = None) -> None:
        self.state = state
        self.limit = limit
        self.costs = costs

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/team/member_add", self.member_add),
            Route("POST", "/team/member_delete", self.member_delete),
            Route("POST", "/team/member_update", self.member_update),
        ]

    def member_add(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        body = json_body(request)
        members, single = _parse_member_add(body)
        data = validate_fields(
            body,
            (
                Field("team_id", "str", required=True),
                Field("max_budget_in_team", "float"),
                Field("budget_duration", "str"),
                Field("allowed_models", "list_str"),
            ),
        )
        team_id = data["team_id"]
        try:
            result = self.state.add_members(
                team_id,
                members,
                single=single,
                limit=self.limit,
                caller_can_manage=member_gate(caller, "/team/member_add"),
                may_create_users=caller.admin,
            )
        except PremiumAdmin as exc:
            return detail_error(
                400, f"Assigning team admins is a premium feature. Got={exc.member.py_str()}. " + PREMIUM_TAIL
            )
        except TeamNotFound:
            return detail_error(
                404, f"Team doesn't exist in db. Team={team_id}. Create team via `/team/new` call."
            )
        except UnknownUserIds as exc:
            listed, more = ", ".join(exc.user_ids[:10]), len(exc.user_ids) - 10
            return detail_error(
                403,
                f"Only proxy admins can add a user_id that does not exist yet: {listed}"
                f"{f' and {more} more' if more > 0 else ''}. Add the member by user_email to invite a new "
                "user, or ask a proxy admin to create the user first.",
            )
        except AlreadyInTeam as exc:
            return proxy_error(400, _already_in_team_message(exc), "team_member_already_in_team", "member")
        except IdentityMismatch as exc:
            return detail_error(
                400,
                f"user_email '{exc.user_email}' and user_id '{exc.user_id}' do not belong to the same user.",
            )
        except AmbiguousEmail as exc:
            return detail_error(
                400, f"Multiple users found with email '{exc.user_email}'. Please use 'user_id' instead."
            )
        except TransactionClosed as exc:
            return detail_error(
                500,
                f"Unable to add user - {exc.member.py_str()}, to team - {exc.team_id}, "
                "for reason - Transaction already closed: Could not perform operation.",
            )
        if self.costs is not None:
            self.costs.charge(self.costs.model.member_add, 0,
                              self.state.team_writes([team_id] * len(result.memberships)))
        return Response(
            200,
            {
                **result.team,
                "updated_users": result.updated_users,
                "updated_team_memberships": result.memberships,
            },
        )

    def member_delete(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        body = json_body(request)
        check_id_or_email(body)
        data = validate_fields(
            body,
            (Field("user_id", "str"), Field("user_email", "str"), Field("team_id", "str", required=True)),
        )
        team_id = data["team_id"]
        try:
            team = self.state.delete_member(
                team_id,
                data.get("user_id"),
                data.get("user_email"),
                caller_can_manage=member_gate(caller, "/team/member_delete"),
            )
        except TeamNotFound:
            return detail_error(400, f"Team id={team_id} does not exist in db")
        except MemberNotInTeam:
            return detail_error(400, "User not found in team")
        return Response(200, team)


    def member_update(self, request: Request, caller: Caller | None) -> Response:
        """A member's role (budget fields are not modelled). As on 1.108.7 and 1.80.0, the admin
        role is refused without a licence before anything else is looked at."""
        assert caller is not None
        data = validate_fields(json_body(request), (
            Field("team_id", "str", required=True), Field("user_id", "str", required=True),
            Field("role", "str")))
        team_id = data["team_id"]
        try:
            answer = self.state.update_member_role(team_id, data["user_id"], data.get("role") or "user")
        except PremiumAdmin:
            refusal = "Assigning team admins is a premium feature. " + PREMIUM_UPDATE_TAIL
            return Response(400, {"detail": refusal})
        except TeamNotFound:
            return detail_error(400, f"Team id={team_id} does not exist in db")
        except MemberNotInTeam:
            return detail_error(404, f"User {data['user_id']} is not a member of team {team_id}")
        return Response(200, answer)


def _parse_member_add(body: Mapping[str, Any]) -> tuple[list[Member], bool]:
    """member_add's request model builds each Member in its __init__, so the first bad member's
    errors are all that comes back (loc ``body.<field>``), before any other field is looked at."""
    raw = body.get("member")
    if isinstance(raw, dict | list):
        items = [raw] if isinstance(raw, dict) else raw
        for item in items:
            if isinstance(item, dict):
                errors = member_errors(item, ["body"], field_loc=["body"])
                if errors:
                    raise invalid(errors)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise invalid(
                    [
                        err(
                            "value_error",
                            ["body", "member", "list[Member]", i],
                            "Value error, input needs to be a dictionary",
                        ),
                        err(
                            "value_error",
                            ["body", "member", "Member"],
                            "Value error, input needs to be a dictionary",
                        ),
                    ]
                )
        return [Member(i.get("user_id"), i.get("user_email"), i["role"]) for i in items], isinstance(
            raw, dict
        )
    errors = (
        [err("missing", ["body", "member"], "Field required")]
        if raw is None
        else [
            err("list_type", ["body", "member", "list[Member]"], "Input should be a valid list"),
            err("value_error", ["body", "member", "Member"], "Value error, input needs to be a dictionary"),
        ]
    )
    if not isinstance(body.get("team_id"), str):
        errors += (
            [err("missing", ["body", "team_id"], "Field required")]
            if "team_id" not in body
            else [err("string_type", ["body", "team_id"], "Input should be a valid string")]
        )
    raise invalid(errors)


def _already_in_team_message(exc: AlreadyInTeam) -> str:
    roster = ", ".join(m.py_repr() for m in exc.roster)
    if exc.single and exc.member is not None:
        return (
            f"User already in team. Member: user_id={exc.member.user_id}, "
            f"user_email={exc.member.user_email}. Existing members=[{roster}]"
        )
    return f"All users are already in team. Existing members=[{roster}]"
