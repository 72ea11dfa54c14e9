"""The simulated bay sensors as LoRaWAN devices: what they publish, fed by the message stream,
read back by the ingest - including the faults of their link profile."""

from __future__ import annotations

import pytest

from adapters.lorawan.devices import BayDevices, device_id
from adapters.lorawan.ingest import Ingest, Rejected
from adapters.lorawan.link import LinkProfile, link_profile
from adapters.lorawan.uplink import Format, parse
from sim.messages import (
    BayObserved,
    Message,
    ParkingArrival,
    ParkingDeparture,
    ParkingOccupancy,
    Payload,
    ZoneOccupancy,
)

ZONES = ParkingOccupancy(
    (
        ZoneOccupancy("pa_rotating_A1_A0", "rotating", 4, 0, 0, 0.0),
        ZoneOccupancy("pa_loading_B2_C2", "loading", 2, 0, 0, 0.0),
        ZoneOccupancy("pa_lot_north", "lot", 3, 0, 0, 0.0),
    )
)


def _msg(t: float, payload: Payload) -> Message:
    return Message(t, 0, "parking", payload)


def _fleet(**kwargs: object) -> BayDevices:
    fleet = BayDevices(seed=3, clock=lambda: 1.0e9, **kwargs)  # type: ignore[arg-type]
    fleet.on_message(_msg(0.0, ZONES))
    return fleet


def test_every_bay_becomes_a_device_of_its_zones_model() -> None:
    fleet = _fleet()
    assert len(fleet.registry) == 9
    models = {d.zone: d.model for d in fleet.registry.by_id.values()}
    assert models == {
        "pa_rotating_A1_A0": "nwave/nps405",
        "pa_loading_B2_C2": "bosch/tps110",
        "pa_lot_north": "dingtek/do201",
    }
    assert len({d.dev_eui for d in fleet.registry.by_id.values()}) == 9


@pytest.mark.parametrize("fmt", list(Format))
def test_arrivals_and_departures_are_status_uplinks_the_ingest_reads(fmt: Format) -> None:
    fleet = _fleet(fmt=fmt, heartbeat_s=1e9)
    ingest = Ingest(fleet.registry)
    events = [
        ParkingArrival("pa_rotating_A1_A0", 2, "rotating"),
        ParkingArrival("pa_loading_B2_C2", 1, "loading"),
        ParkingArrival("pa_lot_north", 0, "lot"),
        ParkingDeparture("pa_rotating_A1_A0", 2, "rotating", 30.0),
    ]
    for i, event in enumerate(events):
        fleet.on_message(_msg(10.0 + i, event))
    sent = fleet.due(20.0)
    assert [parse(s.topic, s.payload).f_cnt for s in sent] == [1, 1, 1, 2]
    observed = [ingest.handle(s.topic, s.payload, now=1.0e9) for s in sent]
    assert [(o.zone, o.bay, o.occupied) for o in observed if isinstance(o, BayObserved)] == [
        ("pa_rotating_A1_A0", 2, True),
        ("pa_loading_B2_C2", 1, True),
        ("pa_lot_north", 0, True),
        ("pa_rotating_A1_A0", 2, False),
    ]


def test_heartbeats_follow_the_vendor_period_and_keep_counters_in_time_order() -> None:
    fleet = _fleet(heartbeat_s=300.0)
    fleet.on_message(_msg(450.0, ParkingArrival("pa_rotating_A1_A0", 0, "rotating")))
    sent = fleet.due(900.0)
    mine = [s for s in sent if s.device_id == device_id("pa_rotating_A1_A0", 0)]
    assert len(mine) == 4  # heartbeats at t0, t0+300, t0+600 around the arrival at 450
    assert [s.f_cnt for s in mine] == [1, 2, 3, 4]
    assert [s.t for s in sent] == sorted(s.t for s in sent)
    ingest = Ingest(fleet.registry)
    results = [ingest.handle(s.topic, s.payload, now=1.0e9) for s in sent]
    assert not [r for r in results if isinstance(r, Rejected)]


def test_link_faults_show_up_in_the_ingest_counters() -> None:
    profile = LinkProfile("test", loss=0.1, duplicate=0.1, late=0.05, late_s=50.0)
    fleet = _fleet(profile=profile, heartbeat_s=60.0)
    sent = fleet.due(3600.0)
    ingest = Ingest(fleet.registry)
    for s in sent:
        ingest.handle(s.topic, s.payload, now=1.0e9)
    counters = fleet.counters
    assert counters["lost"] > 0 and counters["duplicated"] > 0 and counters["late"] > 0
    assert ingest.counters["duplicate"] + ingest.counters["replay"] == counters["duplicated"]
    assert ingest.counters["late"] <= counters["late"]
    # Every frame is applied, late (stale), or lost. The ingest knows of the frames lost between
    # two it received (not of those before a device's first or after its last).
    received: dict[str, set[int]] = {}
    for s in sent:
        received.setdefault(s.device_id, set()).add(s.f_cnt)
    between = sum(max(f) - min(f) + 1 - len(f) for f in received.values())
    assert ingest.counters["lost"] == between <= counters["lost"]
    applied_or_late = ingest.counters["applied"] + ingest.counters["late"]
    assert applied_or_late == counters["sent"]


def test_a_dead_battery_sends_a_critical_heartbeat_then_nothing() -> None:
    fleet = _fleet(profile=LinkProfile("dying", dead_battery_per_h=5.0), heartbeat_s=600.0)
    sent = fleet.due(4 * 3600.0)
    ingest = Ingest(fleet.registry)
    for s in sent:
        ingest.handle(s.topic, s.payload, now=1.0e9)
    assert fleet.counters["dead"] > 0
    assert ingest.low_battery()  # NPS405 and DO201 report their battery; TPS110 does not
    last = {s.device_id: s.t for s in sent}
    dead = [k for k, sensor in fleet.sensors.items() if sensor.battery_v == 0.0]
    assert all(last.get(fleet.sensors[k].device.device_id, 0.0) < fleet.sensors[k].dies_at for k in dead)


def test_device_ids_fit_the_network_servers_rules() -> None:
    name = device_id("pa_rotating_Very_Long_Street_Name_A1_A0_west", 12)
    assert len(name) <= 36 and name.startswith("bay-") and name == name.lower()
    with pytest.raises(KeyError, match="ideal"):
        link_profile("cosmic")


def test_a_new_run_empties_the_bays_and_the_devices_carry_on() -> None:
    fleet = _fleet(heartbeat_s=1e9)
    ingest = Ingest(fleet.registry)
    taken = ("pa_rotating_A1_A0", 2)
    fleet.on_message(_msg(100.0, ParkingArrival(*taken, "rotating")))
    fleet.on_message(_msg(110.0, ParkingArrival("pa_lot_north", 0, "lot")))
    fleet.on_message(_msg(150.0, ParkingDeparture("pa_lot_north", 0, "lot", 40.0)))
    ended = fleet.due(180.0)
    assert [ingest.handle(s.topic, s.payload, now=1.0e9) for s in ended]

    # The new run starts at device time 180 with every bay empty: only the bay the ended run
    # left taken reports, "free", its frame counter going on (the ingest takes it: no replay).
    fleet.new_run(180.0)
    fleet.on_message(_msg(190.0, ParkingArrival(*taken, "rotating")))
    sent = fleet.due(200.0)
    assert [(s.device_id, s.f_cnt) for s in sent] == [(device_id(*taken), 2), (device_id(*taken), 3)]
    observed = [ingest.handle(s.topic, s.payload, now=1.0e9) for s in sent]
    assert [(o.bay, o.occupied, o.f_cnt) for o in observed if isinstance(o, BayObserved)] == [
        (2, False, 2),
        (2, True, 3),
    ]
    assert not [o for o in observed if isinstance(o, Rejected)]
