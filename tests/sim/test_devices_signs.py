"""Information signs: what they show, and drivers going around a warned incident."""

from __future__ import annotations

from pathlib import Path

from sim.devices import DeviceContext
from sim.devices.config import InfoSignsConfig
from sim.devices.signs import InfoSigns, centre_edge
from sim.messages import IncidentDetected, InfoSignShown, MessageBus
from sim.network import read_network
from sim.scenario import load_scenario
from tests.sim.devices_helpers import run, single_with

SIGNS = """
[devices.info_signs]
sites = ["W_C", "N_C"]
on = {on}
[devices.incidents]
persist_s = 120
[[devices.incidents.inject]]
at_s = 60
edge = "E_C"
lane = 1
pos_m = 150
duration_s = 900
"""


def test_signs_show_travel_times_and_detected_incidents(tmp_path: Path) -> None:
    result = run(single_with(tmp_path / "a", SIGNS.format(on="true")), tmp_path / "r", end_s=600.0)
    shown = [m for m in result.log.of_kind("sign.shown") if isinstance(m.payload, InfoSignShown)]
    assert len(shown) == 2 * 10  # two signs, once a minute
    detected = [m.t for m in result.log.of_kind("incident.detected")]
    assert detected
    for m in shown:
        assert isinstance(m.payload, InfoSignShown)
        assert m.payload.travel_time_s is not None and m.payload.travel_time_s > 0
        assert m.payload.free_bays is None  # no parking in this scenario
        warned = m.payload.warnings == ("incident on E_C",)
        assert warned == (m.t >= detected[0])
    dark = run(single_with(tmp_path / "b", SIGNS.format(on="false")), tmp_path / "r2", end_s=600.0)
    assert dark.log.of_kind("sign.shown") == []


class _World:
    """Routes as a fake of SumoWorld, recording who was sent around what."""

    def __init__(self) -> None:
        self.rerouted: list[tuple[str, list[str]]] = []

    def route(self, vehicle: str) -> tuple[str, ...]:
        return ("a", "b", "c") if vehicle.startswith("through") else ("a", "d")

    def road(self, vehicle: str) -> str:
        return "a"

    def fastest_route(self, from_edge: str, to_edge: str) -> tuple[str, ...]:
        return (from_edge, to_edge)

    def reroute_avoiding(self, vehicle: str, edges: list[str]) -> None:
        self.rerouted.append((vehicle, list(edges)))


def test_a_share_of_warned_drivers_take_another_way() -> None:
    scenario = load_scenario("single")
    bus = MessageBus()
    context = DeviceContext(read_network(scenario.net_file), bus, 1, 1.0, 0.0, Path("scenario.toml"))
    signs = InfoSigns(context, InfoSignsConfig(sites=("W_C",), reroute_share=0.3))
    world = _World()
    signs.bind(world, 0.0)  # type: ignore[arg-type]
    bus.publish(10.0, "incidents", IncidentDetected("b_1", "b", None, None))
    sign = signs.signs[0]
    for i in range(1000):
        signs._warn(sign, f"through{i}")
        signs._warn(sign, f"elsewhere{i}")
    assert all(edges == ["b"] and v.startswith("through") for v, edges in world.rerouted)
    assert 250 <= len(world.rerouted) <= 350 and sign.rerouted == len(world.rerouted)


def test_centre_edge_is_in_the_middle_of_the_district() -> None:
    network = read_network(load_scenario("district").net_file)
    xs = [xy[0] for xy in network.junction_xy.values()]
    ys = [xy[1] for xy in network.junction_xy.values()]
    x, y = network.edge_xy(centre_edge(network))
    assert abs(x - (min(xs) + max(xs)) / 2) < 100 and abs(y - (min(ys) + max(ys)) / 2) < 100
