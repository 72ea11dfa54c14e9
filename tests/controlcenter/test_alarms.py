"""The alarm lifecycle (ISA-18.2 style) as a state machine, and the book that drives it."""

from __future__ import annotations

import pytest

from controlcenter.alarm_book import SYSTEM, AlarmBook
from controlcenter.alarms import (
    TRANSITIONS,
    Alarm,
    AlarmAction,
    AlarmState,
    IllegalTransition,
    Severity,
)
from controlcenter.rules import ConditionChange

A, S = AlarmAction, AlarmState


def alarm(state: AlarmState = S.ACTIVE_UNACKNOWLEDGED, *, active: bool = True) -> Alarm:
    return Alarm(7, "queue", "J1", 1, Severity.MEDIUM, "traffic", "trafficJam", "queue", "tls:J1",
                 state=state, active=active)  # fmt: skip


def change(active: bool, key: str = "J1", t: float = 10.0) -> ConditionChange:
    return ConditionChange("queue", key, active, t, f"tls:{key}", Severity.MEDIUM, "traffic",
                           "trafficJam", f"queue at {key}")  # fmt: skip


def test_the_normal_path_records_who_and_when() -> None:
    a = alarm()
    ack = a.apply(A.ACKNOWLEDGE, user="ana", at=100.0, note="on it")
    assert (ack.from_state, ack.to_state, ack.user, ack.at, ack.note) == (
        S.ACTIVE_UNACKNOWLEDGED, S.ACKNOWLEDGED, "ana", 100.0, "on it"
    )  # fmt: skip
    rtn = a.apply(A.RETURN_TO_NORMAL, user=SYSTEM, at=160.0, t=42.0)
    assert rtn.to_state is S.CLEARED and rtn.t == 42.0 and not a.active and not a.open
    assert a.updated_at == 160.0


def test_return_to_normal_before_acknowledgement_waits_for_it() -> None:
    a = alarm()
    a.apply(A.RETURN_TO_NORMAL, user=SYSTEM, at=1.0)
    assert a.state is S.RETURN_TO_NORMAL_UNACKNOWLEDGED and a.open
    a.apply(A.REALARM, user=SYSTEM, at=2.0)
    assert a.state is S.ACTIVE_UNACKNOWLEDGED and a.occurrences == 2
    a.apply(A.RETURN_TO_NORMAL, user=SYSTEM, at=3.0)
    assert a.apply(A.ACKNOWLEDGE, user="ana", at=4.0).to_state is S.CLEARED


@pytest.mark.parametrize(
    ("state", "active", "action"),
    [
        (S.ACKNOWLEDGED, True, A.ACKNOWLEDGE),
        (S.CLEARED, False, A.ACKNOWLEDGE),
        (S.CLEARED, False, A.SHELVE),
        (S.ACTIVE_UNACKNOWLEDGED, True, A.UNSHELVE),
        (S.ACTIVE_UNACKNOWLEDGED, True, A.REALARM),
        (S.RETURN_TO_NORMAL_UNACKNOWLEDGED, False, A.RETURN_TO_NORMAL),
        (S.SHELVED, True, A.ACKNOWLEDGE),
        (S.SHELVED, True, A.SHELVE),
        (S.ACTIVE_UNACKNOWLEDGED, True, A.RAISE),
        (S.CLEARED, False, A.CLEAR),
        (S.CLEARED, False, A.REMOVE_FROM_SERVICE),
        (S.OUT_OF_SERVICE, True, A.REMOVE_FROM_SERVICE),
        (S.OUT_OF_SERVICE, True, A.ACKNOWLEDGE),
        (S.OUT_OF_SERVICE, True, A.SHELVE),
        (S.ACKNOWLEDGED, True, A.RETURN_TO_SERVICE),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(
    state: AlarmState, active: bool, action: AlarmAction
) -> None:
    a = alarm(state, active=active)
    with pytest.raises(IllegalTransition):
        a.apply(action, user="ana", at=5.0, shelve_until=99.0)
    assert a.state is state and a.active is active and a.updated_at == 0.0


def test_every_state_and_action_is_either_in_the_table_or_refused() -> None:
    for state in S:
        for action in A:
            for active in (True, False):
                a = alarm(state, active=active)
                try:
                    a.apply(action, user="u", at=1.0, shelve_until=10.0)
                except IllegalTransition:
                    continue
                legal = (
                    action is A.COMMENT
                    or (state, action) in TRANSITIONS
                    or (state is S.SHELVED and action is A.UNSHELVE)
                    or (state is S.OUT_OF_SERVICE and action is A.RETURN_TO_SERVICE)
                )
                assert legal, (state, action, active)


def test_shelving_hides_until_unshelved_and_remembers_the_condition() -> None:
    a = alarm()
    with pytest.raises(IllegalTransition, match="end in the future"):
        a.apply(A.SHELVE, user="ana", at=10.0, shelve_until=5.0)
    a.apply(A.SHELVE, user="ana", at=10.0, shelve_until=70.0)
    assert a.state is S.SHELVED and a.shelved_until == 70.0
    a.apply(A.RETURN_TO_NORMAL, user=SYSTEM, at=20.0)
    assert a.state is S.SHELVED and not a.active
    assert a.apply(A.UNSHELVE, user="ana", at=30.0).to_state is S.CLEARED
    b = alarm()
    b.apply(A.SHELVE, user="ana", at=10.0, shelve_until=70.0)
    assert b.apply(A.UNSHELVE, user="ana", at=30.0).to_state is S.ACTIVE_UNACKNOWLEDGED


def test_comments_change_no_state() -> None:
    a = alarm(S.CLEARED, active=False)
    event = a.apply(A.COMMENT, user="ana", at=1.0, note="false alarm: detector fault")
    assert event.from_state is event.to_state is S.CLEARED


def test_alert_fields_follow_smart_data_models() -> None:
    entry = alarm().to_dict()
    assert entry["type"] == "Alert" and entry["severity"] == "medium"
    assert entry["category"] == "traffic" and entry["subCategory"] == "trafficJam"
    assert entry["alertSource"] == "tls:J1" and entry["dateIssued"].endswith("+00:00")


def test_the_book_raises_clears_and_reraises_per_rule_and_key() -> None:
    book = AlarmBook(
        [], next_id=1, run_id=3, locate=lambda source, key: {"type": "Point", "coordinates": [1, 2]}
    )
    [(raised, event)] = book.on_condition(change(True), at=100.0)
    assert event.action is A.RAISE and raised.id == 1 and raised.run_id == 3
    assert raised.location == {"type": "Point", "coordinates": [1, 2]}
    assert book.on_condition(change(True), at=101.0) == []  # still active: nothing new
    [(_, other)] = book.on_condition(change(True, key="J2"), at=102.0)
    assert other.alarm_id == 2
    book.act(1, A.ACKNOWLEDGE, user="ana", at=103.0)
    [(cleared, _)] = book.on_condition(change(False), at=104.0)
    assert cleared.state is S.CLEARED and 1 not in book.alarms
    [(again, _)] = book.on_condition(change(True), at=105.0)
    assert again.id == 3  # a cleared alarm is final: a new occurrence is a new alarm
    with pytest.raises(IllegalTransition, match="not open"):
        book.act(1, A.ACKNOWLEDGE, user="ana", at=106.0)
    with pytest.raises(IllegalTransition, match="condition"):
        book.act(3, A.RETURN_TO_NORMAL, user="ana", at=106.0)


def test_the_book_unshelves_when_the_shelf_time_is_over() -> None:
    book = AlarmBook([], next_id=1, run_id=1)
    book.on_condition(change(True), at=0.0)
    book.act(1, A.SHELVE, user="ana", at=1.0, shelve_until=50.0)
    assert book.next_shelf_end() == 50.0 and book.expire_shelves(49.0) == []
    [(a, event)] = book.expire_shelves(50.0)
    assert event.user == SYSTEM and a.state is S.ACTIVE_UNACKNOWLEDGED


def test_alarms_of_an_earlier_run_stay_open_but_apart() -> None:
    old = alarm()
    book = AlarmBook([old], next_id=8, run_id=2)
    [(new, _)] = book.on_condition(change(True), at=1.0)
    assert new.id == 8 and set(book.alarms) == {7, 8}


def test_out_of_service_keeps_the_alarm_apart_and_remembers_the_condition() -> None:
    a = alarm()
    a.apply(A.SHELVE, user="ana", at=1.0, shelve_until=50.0)
    assert a.apply(A.REMOVE_FROM_SERVICE, user="ana", at=2.0).to_state is S.OUT_OF_SERVICE
    assert a.open and a.shelved_until is None  # no shelf timer brings it back
    a.apply(A.RETURN_TO_NORMAL, user=SYSTEM, at=3.0)
    assert a.state is S.OUT_OF_SERVICE and not a.active
    assert a.apply(A.RETURN_TO_SERVICE, user="ana", at=4.0).to_state is S.CLEARED
    b = alarm()
    b.apply(A.REMOVE_FROM_SERVICE, user="ana", at=1.0)
    assert b.apply(A.RETURN_TO_SERVICE, user="ana", at=2.0).to_state is S.ACTIVE_UNACKNOWLEDGED


def test_only_alarms_of_ended_runs_are_cleared_by_hand() -> None:
    earlier = alarm()  # run 1
    book = AlarmBook([earlier], next_id=8, run_id=2)
    book.on_condition(change(True), at=1.0)  # alarm 8, of the run in progress
    with pytest.raises(IllegalTransition, match="belongs to the run in progress"):
        book.act(8, A.CLEAR, user="ana", at=2.0)
    assert book.alarms[8].state is S.ACTIVE_UNACKNOWLEDGED
    book.act(7, A.REMOVE_FROM_SERVICE, user="ana", at=3.0)
    _, event = book.act(7, A.CLEAR, user="ana", at=4.0, note="run 1 is over")
    assert (event.from_state, event.to_state, event.user) == (S.OUT_OF_SERVICE, S.CLEARED, "ana")
    assert 7 not in book.alarms
    book.run_ended = True  # the run in progress has ended too
    assert book.act(8, A.CLEAR, user="ana", at=5.0)[1].to_state is S.CLEARED
