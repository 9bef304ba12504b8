"""The saved scope (sync_core/scope.py): what a run keeps, what the next run judges from it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sync_core import scope
from sync_core.actions import AddMember, BlockUser, DeleteUser, UpdateUser
from sync_core.model import LiteLLMUser
from sync_core.scope import SavedScope, Via
from sync_core.state import LocalStateBackend
from tests.planning import directory, gid, group, litellm, team, uid, user

STARTED = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
EARLIER = datetime(2026, 12, 3, 11, 45, tzinfo=UTC)
G1, G2 = gid(1), gid(2)


def block(n: int) -> BlockUser:
    return BlockUser(user_id=uid(n), email=None, why="disabled", left_at=STARTED, block_keys=(), metadata={},
                     reason="")


def back(n: int) -> UpdateUser:
    return UpdateUser(user_id=uid(n), email=None, metadata={}, returned=True, reason="")


SAVED = SavedScope({uid(1): Via(frozenset({G1})), uid(2): Via(direct=True), uid(3): Via(frozenset({G1, G2}))},
                   frozenset({uid(9)}), EARLIER, "app")


def test_the_document_round_trips_and_names_each_group_once() -> None:
    saved = replace(SAVED, people={**SAVED.people, uid(4): Via(frozenset({G2}), True, "legacy-id")})
    doc = saved.to_doc()
    assert doc["groups"] == sorted([G1, G2]) and doc["people"][uid(4)] == {"g": [doc["groups"].index(G2)],
                                                                          "d": 1, "u": "legacy-id"}
    assert SavedScope.from_doc(doc, "app") == saved
    unknown = SavedScope(None, frozenset({uid(9)}), None, "app")
    assert SavedScope.from_doc(unknown.to_doc(), "app") == unknown


def test_a_document_of_another_app_or_version_is_not_used() -> None:
    assert SavedScope.from_doc(SAVED.to_doc(), "another app") == SavedScope(app="another app")
    assert SavedScope.from_doc({**SAVED.to_doc(), "version": 99}, "app") == SavedScope(app="app")
    assert SavedScope.from_doc(None, "app") == SavedScope(app="app")


def test_a_document_that_does_not_parse_is_not_used() -> None:
    for broken in ({"people": {uid(1): {"g": [7]}}}, {"people": [1]}, {"keys_since": "yesterday"},
                   {"groups": None}):
        assert SavedScope.from_doc({**SAVED.to_doc(), **broken}, "app") == SavedScope(app="app"), broken


def test_it_is_kept_in_the_state_storage(tmp_path: Path) -> None:
    store = LocalStateBackend(tmp_path)
    assert asyncio.run(scope.load(store, "app")) == SavedScope(app="app")
    asyncio.run(scope.save(store, SAVED))
    assert asyncio.run(scope.load(store, "app")) == SAVED
    assert asyncio.run(scope.load(None, "app")) == SavedScope(app="app")  # no storage: nothing known


def test_memberships_say_why_and_leave_out_the_disabled_and_unread_groups() -> None:
    entra = directory([group(1, [1, 2, 3]), group(2, [3]), group(3, None, error="503")],
                      [user(1), user(2, enabled=False), user(3), user(4), user(5, enabled=False)], direct=[4, 5])
    assert scope.memberships(entra) == {uid(1): Via(frozenset({G1})), uid(3): Via(frozenset({G1, G2})),
                                        uid(4): Via(direct=True)}


def test_those_gone_since_the_last_complete_run_are_judged_again_with_those_to_recheck() -> None:
    entra = directory([group(1, [1]), group(2, [3])], [user(1), user(3)])  # uid(2) unassigned directly
    assert scope.to_recheck(SAVED, entra) == {uid(2), uid(9)}
    saved = replace(SAVED, people={**SAVED.people, uid(2): Via(direct=True, user_id="legacy-id")})
    assert scope.to_recheck(saved, entra) == {"legacy-id", uid(9)}  # the LiteLLM user standing for them


def test_nobody_is_gone_while_a_group_could_not_be_read() -> None:
    entra = directory([group(1, None, error="503"), group(2, [3])], [user(3)])
    assert scope.to_recheck(SAVED, entra) == {uid(9)}


def test_newcomers_known_only_from_a_roster_have_their_rows_read() -> None:
    entra = directory([group(1, [1, 5, 6])], [user(1), user(2), user(5), user(6)], direct=[2])
    roster_only = LiteLLMUser(uid(5), None, row_read=False)
    state = litellm([team(G1, "G1", [1, 5])], [1, 2, 6, roster_only])
    # uid(5) arrived and is known from G1's roster only; uid(6) arrived and its row is read already;
    # uid(3) is gone; uid(9) is to recheck
    assert scope.rows_to_read(SAVED, entra, state) == {uid(3), uid(5), uid(9)}
    assert scope.rows_to_read(SavedScope(app="app"), entra, state) == set()  # nothing saved: nobody arrived


def test_those_about_to_get_a_leaver_action_are_saved_to_recheck_before_the_apply() -> None:
    actions = [block(1), back(2), AddMember(team_id=G1, user_id=uid(4), reason=""),
               UpdateUser(user_id=uid(5), email=None, metadata={}, reason=""),
               DeleteUser(user_id=uid(6), email=None, why="deleted", keys=0, reason="")]
    ahead = scope.before_apply(SAVED, actions)
    assert ahead == replace(SAVED, recheck=frozenset({uid(1), uid(2), uid(6), uid(9)}))
    assert scope.before_apply(SAVED, [AddMember(team_id=G1, user_id=uid(4), reason="")]) is None


def test_a_complete_run_saves_who_is_in_scope_now_and_what_did_not_go_through() -> None:
    entra = directory([group(1, [1, 3])], [user(1), user(3), user(4)], direct=[4])
    actions = [block(2), back(4), block(9)]
    after = scope.after_run(SAVED, entra, {uid(1): uid(1), uid(3): "legacy-id"}, actions, [True, False, True],
                            STARTED)
    assert after == SavedScope({uid(1): Via(frozenset({G1})), uid(3): Via(frozenset({G1}), user_id="legacy-id"),
                                uid(4): Via(direct=True)}, frozenset({uid(4)}), STARTED, "app")


def test_an_incomplete_run_keeps_the_scope_and_what_it_could_not_judge() -> None:
    entra = directory([group(1, None, error="503"), group(2, [3])], [user(3)])
    after = scope.after_run(SAVED, entra, {uid(3): uid(3)}, [back(3)], [False], STARTED)
    assert after == replace(SAVED, recheck=frozenset({uid(3), uid(9)}))
