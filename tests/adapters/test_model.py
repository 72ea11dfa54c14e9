"""The pure mapping from a signal's state to NTCIP values: phases, bitmaps, samples, faults."""

from __future__ import annotations

from adapters.ntcip.model import (
    MISSING,
    Controls,
    DetectorReading,
    Sampler,
    SignalSnapshot,
    build_layout,
    signal_values,
)
from adapters.ntcip.oids import all_objects
from tests.adapters.snmp_helpers import four_way_layout


def value(entries, name, *index):  # type: ignore[no-untyped-def]
    return entries[all_objects()[name].instance(*index)][1]


def test_links_that_always_show_the_same_are_one_phase_and_crossings_are_pedestrian_phases() -> None:
    layout = four_way_layout()
    assert [(g.number, g.links, g.pedestrian) for g in layout.groups] == [
        (1, (0, 1), False), (2, (2, 3), False), (3, (4,), True), (4, (5,), True),
    ]  # fmt: skip
    # Detector n is the n-th incoming lane; it calls the vehicle phase its lane feeds.
    assert [(d.number, d.lane, d.call_phase) for d in layout.detectors] == [
        (1, "n", 1), (2, "s", 1), (3, "e", 2), (4, "w", 2),
    ]  # fmt: skip


def test_a_link_that_differs_in_one_program_is_a_phase_of_its_own() -> None:
    programs = [("0", ["GGr", "rrG"]), ("1", ["GrG", "rrG"])]
    layout = build_layout("X", programs, ["a", "a", "b"], set(), ["a", "b"])
    assert [g.links for g in layout.groups] == [(0,), (1,), (2,)]


def test_phase_status_bitmaps_follow_the_sumo_characters() -> None:
    layout = four_way_layout()
    snapshot = SignalSnapshot(t=5.0, state="GgrrGr", program="0", phase=0)
    entries = signal_values(layout, snapshot, Sampler(["n"]), Controls())
    assert value(entries, "phaseStatusGroupGreens", 1) == 0b0101  # phases 1 and 3
    assert value(entries, "phaseStatusGroupReds", 1) == 0b1010
    assert value(entries, "phaseStatusGroupYellows", 1) == 0
    assert value(entries, "phaseStatusGroupWalks", 1) == 0b0100  # the crossing of phase 3
    assert value(entries, "phaseStatusGroupDontWalks", 1) == 0b1000
    yellow = signal_values(layout, SignalSnapshot(state="yyrrrr"), Sampler(["n"]), Controls())
    assert value(yellow, "phaseStatusGroupYellows", 1) == 0b0001
    # u (red-amber) is red; O (dark) is neither
    dark = signal_values(layout, SignalSnapshot(state="uuOOrr"), Sampler(["n"]), Controls())
    assert value(dark, "phaseStatusGroupReds", 1) == 0b1101
    assert value(dark, "phaseStatusGroupGreens", 1) == 0


def test_more_than_eight_phases_use_a_second_group() -> None:
    programs = [
        ("0", ["G" + "r" * 9, "r" * 9 + "G"] + ["r" * i + "G" + "r" * (9 - i) for i in range(1, 9)])
    ]
    layout = build_layout("X", programs, [f"l{i}" for i in range(10)], set(), [])
    entries = signal_values(layout, SignalSnapshot(state="r" * 9 + "G"), Sampler([]), Controls())
    assert value(entries, "maxPhaseGroups") == 2
    assert value(entries, "phaseStatusGroupGreens", 1) == 0
    assert value(entries, "phaseStatusGroupGreens", 2) == 0b10  # phase 10


def test_vehicle_calls_and_detector_status_come_from_presence_and_faults() -> None:
    layout = four_way_layout()
    snapshot = SignalSnapshot(
        state="GGrrGr",
        detectors={"e": DetectorReading(present=3, queue=2), "n": DetectorReading(present=1)},
        faults={"w": "stuck_on"},
    )
    entries = signal_values(layout, snapshot, Sampler(["n", "s", "e", "w"]), Controls())
    assert value(entries, "phaseStatusGroupVehCalls", 1) == 0b10  # phase 2 waits; phase 1 is green
    assert value(entries, "vehicleDetectorStatusGroupActive", 1) == 0b0101  # detectors 1 and 3
    assert value(entries, "vehicleDetectorStatusGroupAlarms", 1) == 0b1000
    assert value(entries, "sensorZoneStatus", 4) == 5  # maxPresence
    assert value(entries, "sensorZoneStatus", 1) == 2  # oK


def test_samples_add_counts_and_weigh_occupancy_by_time() -> None:
    sampler = Sampler(["n"], period_s=60.0)
    sampler.report(0.0, "n", DetectorReading(count=2, occupancy=0.5))
    sampler.report(30.0, "n", DetectorReading(count=1, occupancy=0.0))
    assert sampler.sequence == 0 and not sampler.completed
    sampler.advance(61.0)
    sample = sampler.completed["n"]
    assert (sample.volume, sample.occupancy, sampler.sequence, sampler.end_s) == (3, 0.25, 1, 60.0)
    layout = four_way_layout()
    entries = signal_values(layout, SignalSnapshot(), sampler, Controls())
    assert value(entries, "detectorVolume", 1) == 3
    assert value(entries, "detectorOccupancy", 1) == 50  # 0.5 % steps
    assert value(entries, "volumeOccupancySequence") == 1
    assert value(entries, "volumeOccupancyPeriod") == 60
    assert value(entries, "sampleVolumeData", 1, 2, 1) == 3
    assert value(entries, "samplePercentOccupancy", 1, 2, 1) == 250  # tenths of a percent
    assert value(entries, "sampleSpeedData", 1, 2, 1) == MISSING  # zones do not measure speed
    assert value(entries, "sampleEndTime", 1, 2, 1) == 60


def test_a_faulty_zone_reports_missing_values_and_the_1202_fault_code() -> None:
    sampler = Sampler(["n"], period_s=60.0)
    sampler.report(0.0, "n", DetectorReading(count=4, occupancy=0.9), fault="chatter")
    sampler.advance(60.0)
    entries = signal_values(four_way_layout(), SignalSnapshot(), sampler, Controls())
    assert value(entries, "sampleVolumeData", 1, 2, 1) == MISSING
    assert value(entries, "samplePercentOccupancy", 1, 2, 1) == MISSING
    assert value(entries, "sampleZoneStatus", 1, 2, 1) == 7  # erraticCounts
    assert value(entries, "detectorOccupancy", 1) == 217  # erratic output fault


def test_unit_and_pattern_status_follow_the_mode() -> None:
    layout = four_way_layout()

    def of(mode: str, program: str = "0") -> tuple[int, int, int]:
        e = signal_values(layout, SignalSnapshot(mode=mode, program=program), Sampler([]), Controls())
        return (
            value(e, "unitControlStatus"),
            value(e, "unitFlashStatus"),
            value(e, "coordPatternStatus"),
        )

    assert of("automatic") == (2, 2, 254)  # system control, not flashing, free
    assert of("flash") == (2, 3, 255)
    assert of("failsafe") == (1, 6, 255)  # the conflict monitor's flash
    assert of("program", "night") == (3, 2, 2)  # SUMO's own program 2 runs locally


def test_hold_picks_a_green_phase_of_the_program_serving_every_held_phase() -> None:
    layout = four_way_layout()
    assert layout.hold_phase("0", None, {2}) == 2
    assert layout.hold_phase("0", 2, {2, 4}) == 2
    assert layout.hold_phase("0", 0, {1}) == 0
    assert layout.hold_phase("0", None, {1, 2}) is None  # never green together
    assert Controls(hold={1: 0b10, 2: 0b1}).held_phases() == {2, 9}
