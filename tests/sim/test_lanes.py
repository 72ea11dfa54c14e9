"""Lane ownership: a lane is closed while any holder (the operators, each blocking incident)
holds it; each holder lifts only its own hold. Pure code: a fake SUMO world that records what
it is told, on the bundled nets (read, not run)."""

from __future__ import annotations

import pytest

from sim.lanes import (
    LaneAccess,
    LaneHolds,
    blocking_problem,
    closing_problem,
    stranded_entries,
    stranded_turns,
)
from sim.messages import LaneStatus, MessageBus, MessageLog
from sim.network import Network, read_network
from sim.scenario import load_scenario

LANE = "B1_C1_2"  # the district: a middle lane of a three-lane avenue, needed by no turn alone


class RecordingWorld:
    """Records every change of lane access SUMO would get."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str] | None, list[str] | None]] = []

    def set_lane_access(
        self, lane: str, *, allowed: list[str] | None, disallowed: list[str] | None
    ) -> None:
        self.calls.append((lane, allowed, disallowed))


@pytest.fixture(scope="module")
def district() -> Network:
    return read_network(load_scenario("district").net_file)


def access(network: Network) -> tuple[LaneAccess, RecordingWorld, MessageLog]:
    bus, log, world = MessageBus(), MessageLog(), RecordingWorld()
    bus.subscribe(log)
    lanes = LaneAccess(network, bus)
    lanes.bind(world)
    return lanes, world, log


def own_access(network: Network, lane_id: str) -> tuple[str, list[str] | None, list[str] | None]:
    lane = network.lanes[lane_id]
    return (lane_id, sorted(lane.allow) if lane.allow else None,
            sorted(lane.disallow) if lane.disallow else None)  # fmt: skip


def statuses(log: MessageLog) -> list[LaneStatus]:
    return [m.payload for m in log.of_kind("lane.status") if isinstance(m.payload, LaneStatus)]


def test_holds_open_the_lane_only_when_the_last_holder_lets_go() -> None:
    holds = LaneHolds()
    assert holds.hold("L_0", "operator", "operator:ana") is True  # it was open
    assert holds.hold("L_0", "incident.1", "incident.1") is False
    assert holds.hold("L_0", "operator", "operator:bo") is False  # the same hold, relabelled
    assert holds.owners("L_0") == ("operator:bo", "incident.1")
    assert holds.release("L_0", "incident.2") is False  # never held it
    assert holds.release("L_0", "operator") is False and holds.closed("L_0")
    assert holds.release("L_0", "incident.1") is True and not holds.closed("L_0")
    assert holds.owners("L_0") == () and holds.release("L_0", "incident.1") is False


def test_an_incident_ending_does_not_reopen_a_lane_an_operator_closed(district: Network) -> None:
    lanes, world, log = access(district)
    lanes.close(10.0, LANE, "ana")
    lanes.block(20.0, LANE, "incident.1", known=True)
    lanes.unblock(80.0, LANE, "incident.1")
    assert world.calls == [(LANE, ["authority"], None)]  # closed once, never reopened
    ended = statuses(log)[-1]
    assert ended.closed and ended.owners == ("operator:ana",) and ended.user == "incident.1"
    assert "stays closed: held by operator:ana" in ended.detail
    opened = lanes.open(90.0, LANE, "bo")  # any operator lifts the operators' hold
    assert opened.accepted and not opened.closed and opened.detail == "open"
    assert world.calls[-1] == own_access(district, LANE)  # back to the net's own permissions


def test_an_operators_open_does_not_cancel_an_incident(district: Network) -> None:
    lanes, world, log = access(district)
    lanes.block(20.0, LANE, "incident.1", known=True)
    refused = lanes.open(30.0, LANE, "ana")
    assert not refused.accepted and refused.closed and refused.owners == ("incident.1",)
    assert "stays closed: held by incident.1" in refused.detail
    assert world.calls == [(LANE, ["authority"], None)]
    lanes.unblock(50.0, LANE, "incident.1")
    assert world.calls[-1] == own_access(district, LANE) and not statuses(log)[-1].closed


def test_an_operator_lifting_their_hold_is_told_the_incident_still_holds(district: Network) -> None:
    lanes, world, _log = access(district)
    closed = lanes.close(10.0, LANE, "ana")
    assert closed.accepted and closed.owners == ("operator:ana",) and closed.detail == "closed"
    lanes.block(20.0, LANE, "incident.4", known=True)
    again = lanes.close(25.0, LANE, "bo")
    assert again.owners == ("operator:bo", "incident.4")
    assert again.detail == "closed (also held by incident.4)"
    lifted = lanes.open(30.0, LANE, "ana")
    assert lifted.accepted and lifted.closed and lifted.owners == ("incident.4",)
    assert lifted.detail.startswith("operator hold lifted; the lane stays closed")
    assert len(world.calls) == 1  # still closed in SUMO


def test_two_incidents_on_one_lane_each_hold_it(district: Network) -> None:
    lanes, world, _log = access(district)
    lanes.block(0.0, LANE, "incident.1", known=True)
    lanes.block(5.0, LANE, "incident.2", known=True)
    lanes.unblock(60.0, LANE, "incident.1")
    assert lanes.owners(LANE) == ("incident.2",) and len(world.calls) == 1
    lanes.unblock(65.0, LANE, "incident.2")
    assert lanes.owners(LANE) == () and len(world.calls) == 2


def test_unknown_and_needed_lanes_are_refused_and_nothing_changes(district: Network) -> None:
    lanes, world, log = access(district)
    unknown = lanes.close(1.0, "nowhere_0", "ana")
    assert not unknown.accepted and unknown.detail == "no lane 'nowhere_0'"
    needed = next(
        x.id for x in district.lanes.values() if x.carries_vehicles and stranded_turns(district, x.id)
    )
    refused = lanes.close(2.0, needed, "ana")
    assert not refused.accepted and "would leave no lane" in refused.detail
    assert lanes.owners(needed) == () and world.calls == []
    assert [s.accepted for s in statuses(log)] == [False, False]  # each answer is on the stream


def test_a_lane_that_is_some_entrys_only_way_in_may_not_be_closed() -> None:
    # In single, N_C turns right into C_W only onto C_W_1: without it SUMO stops the run at the
    # next N->W departure ("no connection between edge N_C and edge C_W").
    single = read_network(load_scenario("single").net_file)
    assert stranded_turns(single, "C_W_1") == [] and stranded_entries(single, "C_W_1") == ["N_C"]
    assert (
        closing_problem(single, "C_W_1") == "closing C_W_1 would leave no lane of C_W reached from N_C"
    )
    assert (
        blocking_problem(single, "C_W_1") == "blocking C_W_1 would leave no lane of C_W reached from N_C"
    )
    # An incident may block an approach lane whose turn it strands (drivers wait to change lane);
    # an operator may not close it.
    assert blocking_problem(single, "E_C_1") is None
    assert closing_problem(single, "E_C_1") == "closing E_C_1 would leave no lane of E_C leading to C_N"
    assert blocking_problem(single, "N_C_1") == "N_C_1 is the only open vehicle lane of N_C"


def test_an_incident_nobody_reported_holds_the_lane_unseen(district: Network) -> None:
    """A scheduled incident (or a crash) closes the lane in SUMO, but the control room learns
    of it from detection, not from the ground truth: no message, no owner named to operators."""
    lanes, world, log = access(district)
    lanes.block(10.0, LANE, "incident.1", known=False)
    assert world.calls[-1][0] == LANE and lanes.holds.closed(LANE)
    assert statuses(log) == [] and lanes.owners(LANE) == ()
    closed = lanes.close(20.0, LANE, "ana")
    assert closed.accepted and closed.detail == "closed" and closed.owners == ("operator:ana",)
    opened = lanes.open(30.0, LANE, "ana")
    assert opened.accepted and not opened.closed and "incident" not in opened.detail
    assert lanes.holds.closed(LANE) and len(world.calls) == 1  # still blocked in SUMO
    lanes.unblock(40.0, LANE, "incident.1")
    assert not lanes.holds.closed(LANE) and len(world.calls) == 2
    assert [s.asked for s in statuses(log)] == ["close", "open"]  # the operator's two only


def test_the_checks_count_lanes_already_closed() -> None:
    """On single, W_C has two lanes: either may be blocked, not both (SUMO cannot run an edge
    with no lane); an operator's closure counts the same."""
    single = read_network(load_scenario("single").net_file)
    lanes, _, _ = access(single)
    assert lanes.blocking_problem("W_C_1") is None and lanes.blocking_problem("W_C_2") is None
    lanes.block(1.0, "W_C_1", "incident.1", known=True)
    assert lanes.blocking_problem("W_C_2") == "W_C_2 is the only open vehicle lane of W_C"
    assert lanes.blocking_problem("W_C_1") is None  # a second incident there: W_C_2 is open
