"""Notifications end to end: CLI runs against both emulators post to a local HTTP receiver once when
the sync needs attention, not again for the same attention, once when it is healthy again; a
receiver that fails or hangs neither fails nor stalls a run, and never sees a secret."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from emulators.graph import GraphEmulator
from emulators.http_base import EmulatorServer, Fault, Request, Response, ScriptedFaults
from sync_core import notify
from tests.conftest import MASTER_KEY, run_cli
from tests.tenants import oid


class Receiver:
    """An incoming webhook on 127.0.0.1 that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.raw: list[bytes] = []
        self.server = EmulatorServer(self._handle)

    def _handle(self, request: Request) -> Response:
        self.raw.append(request.body)
        self.bodies.append(request.json())
        return Response(200, "1")  # what Teams and Slack answer

    @property
    def url(self) -> str:
        return f"{self.server.origin}/webhook/secret-token"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    with hook.server:
        yield hook


@pytest.fixture
def notified(env: dict, receiver: Receiver) -> dict:
    # every run reads Graph in full, so a group made unreadable is read (and fails) every run
    return {**env, "SYNC_NOTIFY_WEBHOOK": receiver.url, "SYNC_FULL_RECONCILE_HOURS": "0"}


def unreadable(graph: GraphEmulator, group: str = "Operations") -> None:
    graph.server.faults = ScriptedFaults().add("GET", f"/groups/{oid(group)}/", Fault("status", 500), 1000)


def test_one_post_when_attention_is_needed_none_while_it_stays_one_when_healthy_again(
        notified: dict, graph: GraphEmulator, receiver: Receiver) -> None:
    assert run_cli(notified, "apply").code == 0
    assert receiver.bodies == [], "healthy from the start: nothing to say"

    unreadable(graph)
    assert run_cli(notified, "apply").code == 1
    assert run_cli(notified, "apply").code == 1  # the same attention again
    (first,) = receiver.bodies
    assert first["status"] == "needs_attention" and first["exit_code"] == 1 and first["trigger"] == "cli"
    assert any(oid("Operations") in reason and "could not be read" in reason for reason in first["reasons"])
    assert oid("Operations") in first["text"] and "GET /api/sync/status" in first["what_to_do"][0]

    unreadable(graph, "Engineering")  # a different group: new attention
    assert run_cli(notified, "apply").code == 1
    assert len(receiver.bodies) == 2 and oid("Engineering") in receiver.bodies[1]["text"]

    graph.server.faults = ScriptedFaults()
    assert run_cli(notified, "apply").code == 0
    assert run_cli(notified, "apply").code == 0
    assert [b["status"] for b in receiver.bodies] == ["needs_attention", "needs_attention", "healthy_again"]
    assert "healthy again" in receiver.bodies[2]["text"] and receiver.bodies[2]["reasons"] == []
    assert run_cli(notified, "plan").code == 0 and len(receiver.bodies) == 3  # dry runs never post


def test_held_removals_say_to_force(notified: dict, graph: GraphEmulator, receiver: Receiver) -> None:
    assert run_cli(notified, "apply").code == 0
    graph.tenant.remove_member(oid("Engineering"), oid("eng0"))
    assert run_cli({**notified, "SYNC_MAX_REMOVALS": "0"}, "apply").code == 3
    (held,) = receiver.bodies
    assert held["exit_code"] == 3 and "--force" in held["what_to_do"][0] and held["counts"]["held"] >= 1


def test_a_failing_webhook_fails_nothing_and_the_next_run_posts_again(
        notified: dict, graph: GraphEmulator, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    unreadable(graph)
    receiver.server.faults = ScriptedFaults().add("POST", "/webhook/", Fault("status", 500))
    first = run_cli(notified, "apply", "--json")
    assert first.code == 1 and first.json()["summary"]["teams_created"] == 3  # the run did its work
    assert "notification refused (SYNC_NOTIFY_WEBHOOK): HTTP 500" in caplog.text
    assert [r.status for r in receiver.server.requests(["POST"])] == [500] and receiver.bodies == []
    assert run_cli(notified, "apply").code == 1
    assert len(receiver.bodies) == 1, "a refused post is retried by the next run that needs it"


def test_a_hanging_webhook_does_not_stall_the_run(notified: dict, graph: GraphEmulator, receiver: Receiver,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    released = threading.Event()
    hang = 60.0
    receiver.server.faults = ScriptedFaults().add("POST", "/webhook/", Fault("hang", seconds=hang))
    unreadable(graph)
    with caplog.at_level(logging.ERROR):
        threading.Timer(hang - 1, released.set).start()
        result = run_cli(notified, "apply")
    assert result.code == 1 and not released.is_set(), "the run waited for the hanging webhook"
    assert "notification not sent (SYNC_NOTIFY_WEBHOOK): ReadTimeout" in caplog.text
    assert receiver.url not in caplog.text  # the webhook's URL is a secret too


def test_no_secret_ever_reaches_the_body(notified: dict, graph: GraphEmulator, receiver: Receiver) -> None:
    graph.tenant.rename_group(oid("Operations"), f"ops {MASTER_KEY} {receiver.url}")  # quoted by the reason
    unreadable(graph)
    assert run_cli(notified, "apply").code == 1
    (raw,) = receiver.raw
    assert MASTER_KEY.encode() not in raw and b"secret-token" not in raw and b"[redacted]" in raw


def test_the_timeout_is_short() -> None:
    assert notify.TIMEOUT_SECONDS <= 10


def test_a_run_that_fails_outright_is_posted_once(notified: dict, receiver: Receiver) -> None:
    wrong_key = {**notified, "LITELLM_MASTER_KEY": "sk-wrong-key"}
    assert run_cli(wrong_key, "apply").code == 1
    assert run_cli(wrong_key, "apply").code == 1
    (failed,) = receiver.bodies
    assert failed["status"] == "needs_attention" and failed["reasons"][0].startswith("the run failed: ")
    assert b"sk-wrong-key" not in receiver.raw[0]
    assert run_cli(notified, "apply").code == 0
    assert receiver.bodies[-1]["status"] == "healthy_again"
