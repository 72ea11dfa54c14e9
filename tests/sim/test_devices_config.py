"""``[devices]`` in scenario.toml: defaults in the district, variants, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.devices import DeviceContext, FieldDevices, device_kinds, devices_config
from sim.devices.config import DevicesConfig, RadarConfig
from sim.devices.sites import vehicle_edges
from sim.errors import ScenarioError
from sim.messages import MessageBus
from sim.network import read_network
from sim.scenario import load_scenario
from tests.sim.devices_helpers import SECRET, single_with

TOML = Path("scenario.toml")


def test_district_declares_every_device_kind_with_defaults() -> None:
    devices = load_scenario("district").devices
    assert devices is not None
    for kind in device_kinds():
        assert getattr(devices, kind) is not None, kind
    assert devices.radar == RadarConfig()  # the toml writes the defaults
    assert devices.incidents is not None and devices.incidents.inject[0].edge == "C3_D3"
    assert load_scenario("single").devices is None


def test_speed_sign_variants_switch_the_signs() -> None:
    on = load_scenario("district", "speed_signs=on").devices
    off = load_scenario("district", "speed_signs=off").devices
    assert on is not None and on.radar is not None and on.radar.signs
    assert off is not None and off.radar is not None and not off.radar.signs


@pytest.mark.parametrize(
    ("variant", "signs", "at_s"),
    [("severe-incident+signs-off", False, 1200.0), ("severe-incident+signs-on", True, 1200.0),
     ("severe-incident+1s", False, 1201.0)],
)  # fmt: skip
def test_severe_incident_variants_block_every_lane_of_the_street(
    variant: str, signs: bool, at_s: float
) -> None:
    scenario = load_scenario("district", variant)
    devices = scenario.devices
    assert devices is not None and devices.info_signs is not None
    assert devices.info_signs.on is signs
    assert devices.incidents is not None
    blocked = {f"{i.edge}_{i.lane}" for i in devices.incidents.inject}
    edge = devices.incidents.inject[0].edge
    assert blocked == set(vehicle_edges(read_network(scenario.net_file))[edge])  # nobody gets by
    assert {(i.at_s, i.duration_s) for i in devices.incidents.inject} == {(at_s, 900.0)}


@pytest.mark.parametrize(
    ("table", "field", "expected"),
    [
        ({"lidar": {}}, "devices.lidar", "one of air, drivers"),
        ({"radar": {"count": 0}}, "devices.radar.count", "1..10000"),
        ({"radar": {"count": 2.5}}, "devices.radar.count", "an integer"),
        ({"radar": {"tolerance": "10%"}}, "devices.radar.tolerance", "a number"),
        ({"radar": {"signs": "yes"}}, "devices.radar.signs", "true or false"),
        ({"radar": {"speed": 3}}, "devices.radar.speed", "one of count"),
        ({"drivers": {"red_light_share": 1.5}}, "devices.drivers.red_light_share", "0..1"),
        ({"enforcement": {"sites": "C"}}, "devices.enforcement.sites", '"auto" or a non-empty list'),
        ({"enforcement": {"sites": []}}, "devices.enforcement.sites", '"auto" or a non-empty list'),
        ({"gates": {}}, "devices.gates.secret", "at least 16 characters"),
        ({"gates": {"secret": "short"}}, "devices.gates.secret", "at least 16 characters"),
        ({"incidents": {"inject": [{"at_s": 5}]}}, "devices.incidents.inject[0].edge", "a value"),
        ({"incidents": {"inject": [{"at_s": 5, "edge": "W_C", "cause": "fire"}]}},
         "devices.incidents.inject[0].cause", "one of stopped_vehicle"),
        ({"air": {"alarm_index": 0}}, "devices.air.alarm_index", "1..500"),
        ({"air": []}, "devices.air", "[devices.air]"),
        ({"air": {"period_s": 0}}, "devices.air.period_s", "0.1..3600"),
        ({"air": {"width_m": 0}}, "devices.air.width_m", "0.1..10000"),
        ({"pedestrians": {"interval_s": 0.5}}, "devices.pedestrians.interval_s", "1..86400"),
    ],
)  # fmt: skip
def test_bad_declarations_name_field_value_and_expectation(
    table: dict[str, object], field: str, expected: str
) -> None:
    with pytest.raises(ScenarioError) as err:
        devices_config(TOML, table)
    message = str(err.value)
    assert err.value.field == field
    assert str(TOML) in message and f"field '{field}'" in message and expected in message


def test_secret_never_appears_in_errors_and_may_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ScenarioError) as err:
        devices_config(TOML, {"gates": {"secret": "tiny-secret"}})
    assert "tiny-secret" not in str(err.value)
    monkeypatch.setenv("GATE_KEY", SECRET)
    config = devices_config(TOML, {"gates": {"secret": "env:GATE_KEY"}})
    assert config.gates is not None and config.gates.secret == SECRET
    assert SECRET not in repr(config)  # not in logs or tracebacks that print the config
    monkeypatch.delenv("GATE_KEY")
    with pytest.raises(ScenarioError, match=r"devices\.gates\.secret"):
        devices_config(TOML, {"gates": {"secret": "env:GATE_KEY"}})


def _build(config: DevicesConfig) -> FieldDevices:
    scenario = load_scenario("single")
    network = read_network(scenario.net_file)
    context = DeviceContext(network, MessageBus(), 1, 1.0, 0.0, TOML, scenario.route_files)
    return FieldDevices(config, context)


@pytest.mark.parametrize(
    ("table", "field", "value"),
    [
        ({"enforcement": {"sites": ["C", "Nowhere"]}}, "devices.enforcement.sites", "Nowhere"),
        ({"radar": {"sites": ["W_C", "C_X"]}}, "devices.radar.sites", "C_X"),
        ({"gates": {"secret": SECRET, "sites": ["C"]}}, "devices.gates.sites", "C"),
        ({"incidents": {"inject": [{"at_s": 5, "edge": "W_C", "lane": 7}]}},
         "devices.incidents.inject[0].lane", 7),
        ({"incidents": {"inject": [{"at_s": 5, "edge": "W_C", "lane": 1, "pos_m": 900}]}},
         "devices.incidents.inject[0].pos_m", 900),
    ],
)  # fmt: skip
def test_sites_are_checked_against_the_network(
    table: dict[str, object], field: str, value: object
) -> None:
    with pytest.raises(ScenarioError) as err:
        _build(devices_config(TOML, table))
    assert err.value.field == field and err.value.value == value


def test_a_bad_declaration_fails_when_the_scenario_loads(tmp_path: Path) -> None:
    folder = single_with(tmp_path / "bad", "[devices.radar]\ntolerance = -1\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(folder)
    assert err.value.path == folder.resolve() / "scenario.toml"
    assert "devices.radar.tolerance" in str(err.value) and "(got -1)" in str(err.value)


def test_auto_sites_spread_over_the_district() -> None:
    scenario = load_scenario("district")
    network = read_network(scenario.net_file)
    assert scenario.devices is not None
    context = DeviceContext(network, MessageBus(), 1, 1.0, 0.0, TOML, scenario.route_files)
    devices = FieldDevices(scenario.devices, context)
    sites = {kind: model.sites() for kind, model in devices.models.items()}
    assert len(sites["enforcement"]) == 6 and len(sites["radar"]) == 6
    assert len(sites["gates"]) == 4 and len(sites["air"]) == 4
    xs = [network.junction_xy[j][0] for j in sites["enforcement"]]
    ys = [network.junction_xy[j][1] for j in sites["enforcement"]]
    assert max(xs) - min(xs) > 300 and max(ys) - min(ys) > 300  # not bunched in one corner
    assert all(edge.startswith(("north", "south", "east", "west")) for edge in sites["gates"])
