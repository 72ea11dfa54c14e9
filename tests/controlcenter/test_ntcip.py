"""``ccsim serve --ntcip``'s wiring: addresses, access settings, one agent per signal in the
map's order, and the live state changes reaching the agents."""

from __future__ import annotations

import pytest

from adapters.ntcip.oids import OBJECTS_1202
from controlcenter.ntcip import (
    NtcipService,
    communities_from,
    parse_address,
    signal_layouts,
    v3_users_from,
)
from controlcenter.runtime import network_map_of
from sim.errors import CcsimError
from sim.scenario import load_scenario


def test_addresses() -> None:
    assert parse_address("127.0.0.1:16100") == ("127.0.0.1", 16100)
    assert parse_address("[::1]:161") == ("::1", 161)
    for bad in ("localhost", "127.0.0.1:", ":161", "127.0.0.1:99999", "h:port"):
        with pytest.raises(CcsimError, match="expected HOST:PORT"):
            parse_address(bad)


def test_no_write_access_unless_configured() -> None:
    assert communities_from({}).read == {b"public"} and not communities_from({}).write
    configured = communities_from(
        {"CCSIM_SNMP_READ_COMMUNITY": "look", "CCSIM_SNMP_WRITE_COMMUNITY": "w" * 8}
    )
    assert (configured.read, configured.write) == ({b"look"}, {b"w" * 8})
    for write in ("short", "public"):
        with pytest.raises(CcsimError, match="CCSIM_SNMP_WRITE_COMMUNITY"):
            communities_from({"CCSIM_SNMP_WRITE_COMMUNITY": write})
    # an operator v3 user alone gets an internal write community nobody is told
    assert len(communities_from({}, v3_writers=True).write) == 1


def test_v3_users_are_checked() -> None:
    users = v3_users_from(
        {"CCSIM_SNMP_V3_USERS": "ana:operator:auth-pass-1:priv-pass-1, bo:viewer:aaaaaaaa:bbbbbbbb"}
    )
    assert [(u.name, u.role) for u in users] == [("ana", "operator"), ("bo", "viewer")]
    cases = [
        ("ana:operator:short:priv-pass-1", "8 characters"),
        ("ana:root:aaaaaaaa:bbbbbbbb", "role"),
        ("ana:operator", "expected name:role"),
    ]
    for bad, why in cases:
        with pytest.raises(CcsimError, match=why):
            v3_users_from({"CCSIM_SNMP_V3_USERS": bad})


def test_one_agent_per_signal_in_the_order_of_the_network_map() -> None:
    scenario = load_scenario("corridor")
    network_map = network_map_of(scenario, "actuated")
    order = [
        f["properties"]["id"]
        for f in network_map.geojson["features"]
        if f["properties"]["kind"] == "signal"
    ]
    layouts = signal_layouts(scenario, network_map)
    assert [layout.tls for layout in layouts] == order and len(order) == 5
    assert all(layout.groups and layout.detectors for layout in layouts)

    service = NtcipService(("127.0.0.1", 0), scenario, network_map, env={})
    try:
        ports = [e.port for e in service.group.endpoints]
        assert len(set(ports)) == 5
        assert [line.split(" -> ")[0] for line in service.mapping()] == [f"ntcip: {t}" for t in order]
        described = service.describe()
        assert described["write"] is False and [a["tls"] for a in described["agents"]] == order
    finally:
        service.close()


def test_live_state_changes_reach_the_agent_of_their_signal() -> None:
    scenario = load_scenario("single")
    network_map = network_map_of(scenario, "actuated")
    service = NtcipService(("127.0.0.1", 0), scenario, network_map, env={})
    try:
        (device,) = service.devices
        lane = device.layout.detectors[0].lane
        state = "".join("G" if k in device.layout.groups[0].links else "r" for k in range(18))
        service.on_changes(
            {"signals": {"C": {"state": state, "program": "online", "phase": 0, "mode": "hold"}},
             "detectors": {lane: {"count": 1, "queue": 2, "present": 3, "occupancy": 0.5, "buses": 0}},
             "sensor_faults": {lane: {"tls": "C", "fault": "stuck_on", "t": 9.0}}},
            10.0,
        )  # fmt: skip
        entries = device.view().entries
        assert entries[OBJECTS_1202["phaseStatusGroupGreens"].instance(1)][1] == 1
        assert entries[OBJECTS_1202["vehicleDetectorStatusGroupAlarms"].instance(1)][1] == 1
        service.on_changes({"sensor_faults": {lane: None}}, 11.0)
        assert (
            device.view().entries[OBJECTS_1202["vehicleDetectorStatusGroupAlarms"].instance(1)][1] == 0
        )
    finally:
        service.close()


def test_a_taken_port_is_a_clear_error() -> None:
    scenario = load_scenario("single")
    network_map = network_map_of(scenario, "actuated")
    first = NtcipService(("127.0.0.1", 0), scenario, network_map, env={})
    try:
        port = first.group.endpoints[0].port
        with pytest.raises(
            CcsimError, match=f"--ntcip 127.0.0.1:{port}: udp 127.0.0.1:{port}: cannot listen"
        ):
            NtcipService(("127.0.0.1", port), scenario, network_map, env={})
    finally:
        first.close()
