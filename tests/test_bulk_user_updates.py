"""User updates through /user/bulk_update (SYNC_LITELLM_BULK, SYNC_USER_UPDATE_CHUNK) end to end:
the CLI against the Graph emulator and the LiteLLM emulator, into which everyone of the small
tenant signed in by SSO before the sync ran, so the first run adopts them all (one UpdateUser each).
"""

from __future__ import annotations

from collections import Counter

import pytest

from emulators.http_base import Fault, ScriptedFaults
from emulators.litellm import LiteLLMEmulator
from tests.conftest import MASTER_KEY, run_cli
from tests.expectations import LiteLLMReadback, assert_in_sync, expected_state
from tests.tenants import oid, small_tenant

BULK_UPDATE = "POST /user/bulk_update"
UPDATE = "POST /user/update"
ADOPTED = 163  # the small tenant's users in scope: every one gets the sync's marker


@pytest.fixture
def signed_in(lite: LiteLLMEmulator) -> LiteLLMEmulator:
    for user in small_tenant()["users"]:
        lite.state.seed_user(user["id"], user["userPrincipalName"].lower())
    return lite


def apply(env: dict[str, str], code: int = 0, **settings: str) -> dict:
    result = run_cli({**env, **settings}, "apply", "--json")
    assert result.code == code, result.out[-2000:] + result.err
    return result.json()


def outcomes(report: dict) -> Counter[tuple[str, str]]:
    return Counter((a["type"], a["outcome"]) for a in report["actions"])


def requests(lite: LiteLLMEmulator) -> Counter[str]:
    return Counter(f"{r.method} {r.path}" for r in lite.server.requests(["POST"]))


def adopted(lite: LiteLLMEmulator) -> set[str]:
    users = LiteLLMReadback(lite.base_url, MASTER_KEY).users()
    return {u["user_id"] for u in users.values() if "entra_id" in (u.get("metadata") or {}).get("entra_sync", {})}


def test_adoptions_go_out_in_chunks_and_converge(env, signed_in: LiteLLMEmulator) -> None:
    report = apply(env, SYNC_USER_UPDATE_CHUNK="50")
    assert outcomes(report)[("update_user", "applied")] == ADOPTED and report["summary"]["failed"] == 0
    assert (requests(signed_in)[BULK_UPDATE], requests(signed_in)[UPDATE]) == (4, 0)  # 163 rows, 50 a request
    assert report["stats"]["litellm_calls"][BULK_UPDATE] == 4
    assert_in_sync(expected_state(small_tenant()), LiteLLMReadback(signed_in.base_url, MASTER_KEY))
    assert len(adopted(signed_in)) == ADOPTED
    assert apply(env)["actions"] == []


def test_off_writes_one_update_per_user(env, signed_in: LiteLLMEmulator) -> None:
    report = apply(env, SYNC_LITELLM_BULK="off")
    assert outcomes(report)[("update_user", "applied")] == ADOPTED
    assert (requests(signed_in)[BULK_UPDATE], requests(signed_in)[UPDATE]) == (0, ADOPTED)
    assert len(adopted(signed_in)) == ADOPTED


def test_a_failed_row_fails_only_its_action_and_the_next_run_retries_it(env, signed_in: LiteLLMEmulator) -> None:
    signed_in.users.row_fault = lambda user_id: "deadlock detected" if user_id == oid("eng0") else None
    report = apply(env, code=1)
    assert outcomes(report)[("update_user", "failed")] == 1
    assert outcomes(report)[("update_user", "applied")] == ADOPTED - 1
    (failed,) = [a for a in report["actions"] if a["outcome"] == "failed"]
    assert (failed["user_id"], failed["error"]) == (oid("eng0"), f"{BULK_UPDATE} -> row: deadlock detected")
    assert oid("eng0") not in adopted(signed_in)

    signed_in.users.row_fault = None
    again = apply(env, SYNC_FULL_RECONCILE_HOURS="0")  # an adoption is not rechecked by an incremental run
    assert [(a["type"], a["user_id"], a["outcome"]) for a in again["actions"]] == [
        ("update_user", oid("eng0"), "applied")]
    assert len(adopted(signed_in)) == ADOPTED


@pytest.mark.parametrize("fault", [
    Fault("status", 503), Fault("status", 200, body=b'{"results": [{"success": "maybe"}]}'),
    Fault("status", 200, body=b'{"results": []}')], ids=["503 after retries", "malformed row", "rows missing"])
def test_a_chunk_that_fails_whole_fails_each_of_its_actions(env, signed_in: LiteLLMEmulator, fault: Fault) -> None:
    # the second of two chunks fails, every time it is sent; the first is written
    signed_in.server.faults = ScriptedFaults().add("POST", "^/user/bulk_update$", Fault("delay"), times=1) \
        .add("POST", "^/user/bulk_update$", fault, times=10)
    report = apply(env, code=1, SYNC_USER_UPDATE_CHUNK="100", SYNC_RETRY_BUDGET_SECONDS="1",
                   SYNC_LITELLM_CONCURRENCY="1")  # the chunks in turn: the faulty one is the second
    assert outcomes(report)[("update_user", "applied")] == 100
    failed = [a for a in report["actions"] if a["outcome"] == "failed"]
    assert len(failed) == ADOPTED - 100 and {a["type"] for a in failed} == {"update_user"}
    assert all(a["error"].startswith(f"{BULK_UPDATE} -> ") for a in failed), failed[0]["error"]
    assert len(adopted(signed_in)) == 100  # nothing of the failed chunk is counted done
    assert requests(signed_in)[UPDATE] == 0

    signed_in.server.faults = ScriptedFaults()
    assert outcomes(apply(env, SYNC_FULL_RECONCILE_HOURS="0"))[("update_user", "applied")] == ADOPTED - 100


def test_a_chunk_retried_after_its_answer_was_lost_is_done(env, signed_in: LiteLLMEmulator) -> None:
    signed_in.server.faults = ScriptedFaults().add("POST", "^/user/bulk_update$", Fault("drop", committed=True))
    report = apply(env, SYNC_USER_UPDATE_CHUNK="500")  # one chunk, sent twice
    assert outcomes(report)[("update_user", "applied")] == ADOPTED
    assert report["stats"]["litellm_lost"] == {BULK_UPDATE: 1} and requests(signed_in)[BULK_UPDATE] == 2
    assert len(adopted(signed_in)) == ADOPTED


def test_auto_falls_back_to_one_update_per_user_on_a_proxy_without_the_route(env, signed_in: LiteLLMEmulator) -> None:
    # an older LiteLLM (before 1.74) answers 404; SYNC_LITELLM_BULK=on would fail the updates instead
    signed_in.server.faults = ScriptedFaults().add("POST", "^/user/bulk_update$", Fault("status", 404), times=100)
    report = apply(env, SYNC_USER_UPDATE_CHUNK="50", SYNC_LITELLM_CONCURRENCY="1")  # one 404, then per call
    assert outcomes(report)[("update_user", "applied")] == ADOPTED
    assert (report["stats"]["litellm_calls"][BULK_UPDATE], requests(signed_in)[UPDATE]) == (1, ADOPTED)
