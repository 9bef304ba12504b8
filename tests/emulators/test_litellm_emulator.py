"""Emulator-only features of the LiteLLM emulator: faults, latency, seeding, the request log, the
member_add transaction ceiling, concurrency, path-template routes and the command line. The API contract itself is
pinned by tests/contract, which runs against the emulator and a real proxy alike."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulators.http_base import Fault, RandomFaults, Request, Response, ScriptedFaults
from emulators.litellm import LiteLLMEmulator, LiteLLMState
from emulators.litellm.auth import Caller
from emulators.litellm.router import Route
from emulators.litellm.state.users import UserQuery
from sync_core.tls import shared_tls_context

KEY = "sk-test-master"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def lt() -> Iterator[LiteLLMEmulator]:
    with LiteLLMEmulator(master_key=KEY) as emulator:
        yield emulator


def client(emulator: LiteLLMEmulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10,
                        verify=shared_tls_context())


def add(http: httpx.Client, team_id: str, user_ids: list[str]) -> httpx.Response:
    return http.post(
        "/team/member_add",
        json={"team_id": team_id, "member": [{"user_id": u, "role": "user"} for u in user_ids]},
    )


# ---------------------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", ["status", "drop"])
def test_a_committed_fault_serves_the_request_and_loses_the_answer(kind: str) -> None:
    faults = ScriptedFaults().add("POST", r"^/team/new$", Fault(kind, status=500, committed=True))
    with LiteLLMEmulator(master_key=KEY, faults=faults) as emulator, client(emulator) as http:
        if kind == "drop":
            with pytest.raises(httpx.TransportError):
                http.post("/team/new", json={"team_id": "t"})
        else:
            assert http.post("/team/new", json={"team_id": "t"}).status_code == 500
        assert "t" in emulator.state.teams  # the write happened


def test_status_fault_answers_in_litellm_error_shape_with_retry_after() -> None:
    faults = ScriptedFaults().add("POST", r"^/team/new$", Fault("status", status=429, retry_after="2"))
    with LiteLLMEmulator(master_key=KEY, faults=faults) as emulator, client(emulator) as http:
        first = http.post("/team/new", json={"team_id": "t"})
        second = http.post("/team/new", json={"team_id": "t"})
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert first.json() == {
        "error": {
            "message": "injected fault 429",
            "type": "internal_server_error",
            "param": None,
            "code": "429",
        }
    }
    assert second.status_code == 200  # the rule fired once, and the faulted call did not write
    assert list(emulator.state.teams) == ["t"]


def test_drop_fault_resets_the_connection_and_is_logged_as_status_0() -> None:
    faults = ScriptedFaults().add("GET", r"^/v2/team/list$", Fault("drop"))
    with LiteLLMEmulator(master_key=KEY, faults=faults) as emulator, client(emulator) as http:
        with pytest.raises(httpx.TransportError):
            http.get("/v2/team/list")
        assert http.get("/v2/team/list").status_code == 200
    assert [(r.path, r.status) for r in emulator.server.requests()] == [
        ("/v2/team/list", 0),
        ("/v2/team/list", 200),
    ]


def test_random_faults_are_reproducible_for_a_seed() -> None:
    def statuses() -> list[int]:
        faults = RandomFaults(seed=7, rate=0.5, faults=(Fault("status", status=503),))
        with LiteLLMEmulator(master_key=KEY, faults=faults) as emulator, client(emulator) as http:
            return [http.get("/user/list").status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert {503, 200} == set(first)


def test_latency_is_added_to_every_request() -> None:
    with LiteLLMEmulator(master_key=KEY, latency=0.05) as emulator, client(emulator) as http:
        started = time.perf_counter()
        for _ in range(3):
            http.get("/health/readiness")
        assert time.perf_counter() - started >= 0.15


# ---------------------------------------------------------------------------------------- seeding and log


def test_seed_team_is_visible_through_the_api_without_a_default_admin(lt: LiteLLMEmulator) -> None:
    lt.state.seed_team(
        "t1",
        "Seeded",
        members=["u1", {"user_id": "u2", "user_email": "u2@x.com", "role": "user"}],
        metadata={"source": "test"},
        blocked=True,
    )
    with client(lt) as http:
        (team,) = http.get("/v2/team/list").json()["teams"]
        u1 = http.get("/user/info", params={"user_id": "u1"}).json()["user_info"]
    assert (team["team_alias"], team["metadata"], team["blocked"]) == ("Seeded", {"source": "test"}, True)
    assert team["members_with_roles"] == [
        {"user_id": "u1", "user_email": None, "role": "user"},
        {"user_id": "u2", "user_email": "u2@x.com", "role": "user"},
    ]
    assert (u1["teams"], u1["user_role"]) == (["t1"], "internal_user")
    assert "default_user_id" not in lt.state.users
    assert lt.state.teams["t1"]["team_alias"] == "Seeded"  # the dict as the API shows it


def test_seed_team_with_default_admin_and_seed_user(lt: LiteLLMEmulator) -> None:
    lt.state.seed_user("u9", "U9@Example.com")
    lt.state.seed_team("t2", None, members=[], with_default_admin=True)
    assert lt.state.teams["t2"]["members_with_roles"] == [
        {"user_id": "default_user_id", "user_email": None, "role": "admin"}
    ]
    with client(lt) as http:
        assert http.post("/user/new", json={"user_email": "u9@example.com"}).status_code == 409
        listed = http.get("/user/list", params={"user_ids": "u9"}).json()["users"]
    assert [(u["user_id"], u["user_email"], u["key_count"]) for u in listed] == [("u9", "U9@Example.com", 0)]


def test_request_log_and_write_calls(lt: LiteLLMEmulator) -> None:
    with client(lt) as http:
        http.get("/v2/team/list")
        http.post("/team/new", json={"team_id": "t"})
        http.post("/team/new", json={"team_id": "t"})
        http.get("/team/info", params={"team_id": "t"})
    assert [(c.method, c.path, c.status) for c in lt.write_calls()] == [
        ("POST", "/team/new", 200),
        ("POST", "/team/new", 400),
    ]
    assert len(lt.server.requests()) == 4
    lt.server.clear_log()
    assert lt.write_calls() == []


# ---------------------------------------------------------------------------------------- transaction ceiling


def test_member_add_over_the_limit_fails_like_a_closed_transaction_and_commits_nothing() -> None:
    with LiteLLMEmulator(master_key=KEY, member_add_limit=5) as emulator, client(emulator) as http:
        emulator.state.seed_team("t", "T", members=["old"])
        ids = [f"u{i}" for i in range(6)]
        refused = add(http, "t", ids)
        assert refused.status_code == 500
        assert refused.json() == {
            "detail": {
                "error": (
                    "Unable to add user - user_id='u5' user_email=None role='user', to team - t, for reason - "
                    "Transaction already closed: Could not perform operation."
                )
            }
        }
        assert [m["user_id"] for m in emulator.state.teams["t"]["members_with_roles"]] == ["old"]
        assert not set(ids) & set(emulator.state.users)
        # members already in the team do not count toward the limit
        accepted = add(http, "t", ["old", *ids[:5]])
        assert accepted.status_code == 200
        assert len(accepted.json()["updated_users"]) == 5


def test_default_limit_accepts_500_and_refuses_501() -> None:
    with LiteLLMEmulator(master_key=KEY) as emulator, client(emulator) as http:
        emulator.state.seed_team("t", "T")
        assert add(http, "t", [f"a{i}" for i in range(501)]).status_code == 500
        assert add(http, "t", [f"a{i}" for i in range(500)]).status_code == 200
        assert len(emulator.state.teams["t"]["members_with_roles"]) == 500


# ---------------------------------------------------------------------------------------- behaviour


def test_concurrent_member_adds_to_one_team_lose_no_update(lt: LiteLLMEmulator) -> None:
    lt.state.seed_team("t", "T")
    errors: list[int] = []

    def worker(n: int) -> None:
        with client(lt) as http:
            for i in range(10):
                response = add(http, "t", [f"w{n}-{i}"])
                if response.status_code != 200:
                    errors.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(lt.state.teams["t"]["members_with_roles"]) == 80
    assert all(lt.state.users[f"w{n}-{i}"]["teams"] == ["t"] for n in range(8) for i in range(10))


def test_a_deleted_users_key_stops_working(lt: LiteLLMEmulator) -> None:
    with client(lt) as http:
        key = http.post("/user/new", json={"user_id": "u", "user_role": "proxy_admin"}).json()["key"]
        with httpx.Client(base_url=lt.base_url, headers={"Authorization": f"Bearer {key}"}) as as_user:
            assert as_user.post("/team/new", json={"team_id": "by-u"}).status_code == 200
            assert http.post("/user/delete", json={"user_ids": ["u"]}).json() == 1
            assert as_user.get("/v2/team/list").json()["error"]["type"] == "token_not_found_in_db"
    assert lt.state.teams["by-u"]["members_with_roles"] == []  # its creator was removed from the roster


def test_malformed_bodies(lt: LiteLLMEmulator) -> None:
    with client(lt) as http:
        broken = http.post("/team/new", content=b"{not json", headers={"Content-Type": "application/json"})
        array = http.post("/team/new", json=[1, 2])
        plain = http.post("/team/new", content=b"{}", headers={"Content-Type": "text/plain"})
    assert broken.json() == {
        "detail": [{"type": "json_invalid", "loc": ["body", 1], "msg": "JSON decode error"}]
    }
    assert array.status_code == 500  # the real proxy crashes on a non-object body
    assert plain.json()["detail"][0]["type"] == "model_attributes_type"


def test_state_can_be_shared_and_inspected_directly() -> None:
    state = LiteLLMState()
    state.seed_team("t", "T", members=["a"])
    with LiteLLMEmulator(master_key=KEY, state=state) as emulator, client(emulator) as http:
        assert http.post("/team/member_delete", json={"team_id": "t", "user_id": "a"}).status_code == 200
    assert state.teams["t"]["members_with_roles"] == [] and state.users["a"]["teams"] == []


# ---------------------------------------------------------------------------------------- routing


def test_a_path_template_route_gets_its_parameters_after_auth(lt: LiteLLMEmulator) -> None:
    def echo(request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        return Response(200, {"params": request.path_params, "role": caller.role})

    lt.router.add(Route("POST", "/management/v1/teams/{team_id}/members/echo", echo))
    path = "/management/v1/teams/team%20one/members/echo"
    with client(lt) as http:
        hit = http.post(path)
        anonymous = httpx.post(lt.base_url + path)
        wrong_method = http.get(path)
        too_deep = http.post("/management/v1/teams/a/b/members/echo")
        exact_still = http.get("/team/list")
    assert hit.json() == {"params": {"team_id": "team one"}, "role": "proxy_admin"}
    assert anonymous.status_code == 401
    assert wrong_method.status_code == 405 and too_deep.status_code == 404
    assert exact_still.status_code == 200
    with pytest.raises(ValueError, match="registered twice"):
        lt.router.add(Route("POST", "/management/v1/teams/{team_id}/members/echo", echo))


def test_an_older_proxy_has_no_bulk_routes() -> None:
    with LiteLLMEmulator(master_key=KEY, bulk_routes=False) as older, client(older) as http:
        assert http.get("/management/v1/users/bulk").status_code == 404  # what the sync's probe reads
        assert http.post("/management/v1/users/bulk", json={"users": [{"user_id": "u"}]}).status_code == 404
        assert http.post("/management/v1/teams/t/members/bulk_delete", json={"members": []}).status_code == 404
        assert http.get("/team/member_add").status_code == 405


# ---------------------------------------------------------------------------------------- command line


def test_module_prints_its_url_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.litellm", "--master-key", "sk-cli"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/v2/team/list", headers={"Authorization": "Bearer sk-cli"}, timeout=5)
        assert response.status_code == 200 and response.json()["total"] == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_created_at_sorts_by_time_even_on_a_whole_second() -> None:
    state = LiteLLMState()
    for user_id in ("a", "b", "c"):
        state.seed_user(user_id)
    # the API prints a zero fraction as "...:02Z", which sorts after "...:02.001000Z" as text
    state.users["a"]["created_at"] = "2026-01-01T00:00:02Z"
    state.users["b"]["created_at"] = "2026-01-01T00:00:02.001000Z"
    state.users["c"]["created_at"] = "2026-01-01T00:00:01.999000Z"
    rows, total = state.list_users(UserQuery(sort_by="created_at", sort_order="asc"))
    assert ([r["user_id"] for r in rows], total) == (["c", "a", "b"], 3)


def test_rows_written_by_one_call_share_a_timestamp_and_calls_never_share_one(lt: LiteLLMEmulator) -> None:
    with client(lt) as http:
        stamps = [http.post("/team/new", json={"team_id": f"t{i}"}).json()["created_at"] for i in range(20)]
        added = add(http, "t0", [f"u{i}" for i in range(50)]).json()
    assert len(set(stamps)) == 20  # strictly increasing milliseconds, however fast the emulator is
    assert {u["created_at"] for u in added["updated_users"]} == {added["updated_at"]}
