"""Information signs: what they show, and drivers going around a warned incident."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sim.devices import DeviceContext
from sim.devices.config import InfoSignsConfig
from sim.devices.signs import InfoSigns, centre_edge
from sim.messages import (
    IncidentDetected,
    InfoSignShown,
    InfoSignTotals,
    MessageBus,
    MessageLog,
    VehiclesArrived,
)
from sim.network import read_network
from sim.scenario import load_scenario
from sim.sumo import sumo_binary
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


@pytest.mark.parametrize("on", [True, False])
def test_a_share_of_warned_drivers_take_another_way(on: bool) -> None:
    scenario = load_scenario("single")
    bus, log = MessageBus(), MessageLog()
    bus.subscribe(log)
    context = DeviceContext(read_network(scenario.net_file), bus, 1, 1.0, 0.0, Path("scenario.toml"))
    signs = InfoSigns(context, InfoSignsConfig(sites=("W_C",), reroute_share=0.3, on=on))
    world = _World()
    signs.bind(world, 0.0)  # type: ignore[arg-type]
    bus.publish(10.0, "incidents", IncidentDetected("b_1", "b"))
    sign = signs.signs[0]
    for i in range(1000):
        signs._warn(20.0, sign, f"through{i}")
        signs._warn(20.0, sign, f"elsewhere{i}")
        signs._warn(21.0, sign, f"through{i}")  # seen over the next lane's loop too: once
    assert all(edges == ["b"] and v.startswith("through") for v, edges in world.rerouted)
    if on:
        assert 250 <= len(world.rerouted) <= 350 and sign.rerouted == len(world.rerouted)
    else:
        assert world.rerouted == []  # dark signs warn nobody...
    # ...but count the drivers they would have warned all the same
    arrived = ("through0", "through1", "elsewhere2")
    bus.publish(100.0, "monitor", VehiclesArrived(arrived))
    signs.finish(200.0)
    # each warned driver in the group the draw put them in: 80 s to the end of the trip if they
    # arrived, else 180 s so far and still on the road
    around = {vehicle for vehicle, _edges in world.rerouted}
    arrived_around = len(around & set(arrived))
    totals = [m.payload for m in log.of_kind("sign.totals")]
    assert totals == [InfoSignTotals(
        warned=1000, rerouted=len(around), travel_time_s=2 * 80.0 + 998 * 180.0,
        rerouted_travel_time_s=arrived_around * 80.0 + (len(around) - arrived_around) * 180.0,
        rerouted_unfinished=len(around) - arrived_around,
        stayed_unfinished=1000 - len(around) - (2 - arrived_around),
    )]  # fmt: skip


def test_centre_edge_is_in_the_middle_of_the_district() -> None:
    network = read_network(load_scenario("district").net_file)
    xs = [xy[0] for xy in network.junction_xy.values()]
    ys = [xy[1] for xy in network.junction_xy.values()]
    x, y = network.edge_xy(centre_edge(network))
    assert abs(x - (min(xs) + max(xs)) / 2) < 100 and abs(y - (min(ys) + max(ys)) / 2) < 100


GRID_ROUTES = """<routes>
  <vType id="car" vClass="passenger"/>
  <route id="through" edges="left1A1 A1B1 B1C1 C1right1"/>
  <route id="cross" edges="bottom1B0 B0B1 B1B2 B2top1"/>
  <flow id="through" type="car" route="through" begin="0" end="900" period="15"
        departLane="best" departSpeed="max"/>
  <flow id="cross" type="car" route="cross" begin="0" end="900" period="10" departLane="best"
        departSpeed="max"/>
</routes>
"""
GRID_DEVICES = """
[devices.incidents]
[[devices.incidents.inject]]   # a broken-down car on the one lane of B1C1: nobody gets past
at_s = 100
edge = "B1C1"
lane = 0
pos_m = {pos_m}
duration_s = {duration_s}

[devices.info_signs]
sites = ["left1A1"]            # the entry the through traffic comes in by, before A1
reroute_share = {share}
on = {on}
"""


@pytest.fixture(scope="module")
def grid_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 x 3 signalised grid, one lane each way, with 100 m arms into it."""
    net = tmp_path_factory.mktemp("grid") / "grid.net.xml"
    subprocess.run(
        [str(sumo_binary("netgenerate")), "--grid", "--grid.number", "3", "--grid.length", "200",
         "--grid.attach-length", "100", "--default-junction-type", "traffic_light", "-o", str(net)],
        check=True, capture_output=True,
    )  # fmt: skip
    return net


def grid_with_signs(folder: Path, net: Path, on: bool, *, share: float = 1.0,
                    pos_m: float = 100.0, duration_s: float = 600.0) -> Path:  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "routes.rou.xml").write_text(GRID_ROUTES, encoding="utf-8")
    (folder / "grid.sumocfg").write_text(
        f'<configuration><input><net-file value="{net}"/>'
        '<route-files value="routes.rou.xml"/></input></configuration>\n',
        encoding="utf-8",
    )
    devices = GRID_DEVICES.format(on="true" if on else "false", share=share, pos_m=pos_m,
                                  duration_s=duration_s)  # fmt: skip
    toml = f'name = "grid-signs"\nsumocfg = "grid.sumocfg"\n{devices}'
    (folder / "scenario.toml").write_text(toml, encoding="utf-8")
    return folder


def test_warned_drivers_who_go_around_an_incident_save_time(tmp_path: Path, grid_net: Path) -> None:
    # Through traffic enters at left1A1 and crosses B1C1, which a broken-down car blocks from
    # t = 100 s for 10 minutes; the sign at the entry warns once the detectors find it.
    on = run(grid_with_signs(tmp_path / "on", grid_net, True), tmp_path / "r1", end_s=900.0)
    off = run(grid_with_signs(tmp_path / "off", grid_net, False), tmp_path / "r2", end_s=900.0)
    for result in (on, off):
        assert result.summary["incident_detection_delay_mean_s"] is not None
        assert result.summary["sign_warned_vehicles"] >= 20
    assert on.summary["sign_reroutes"] == on.summary["sign_warned_vehicles"]
    assert off.summary["sign_reroutes"] == 0
    # the same drivers, warned or left to find the incident, from the sign to their destination
    warned_on = on.summary["sign_warned_travel_time_mean_s"]
    assert warned_on < 0.7 * off.summary["sign_warned_travel_time_mean_s"]
    assert on.log.of_kind("sign.shown") and not off.log.of_kind("sign.shown")


def test_warned_drivers_the_draw_sends_around_beat_those_it_leaves(
    tmp_path: Path, grid_net: Path
) -> None:
    # Within one run the draw sends half the warned drivers around: the same advice, taken or
    # not. B1C1 stays closed to the end (the car stands longer than the run), 175 m in, near its
    # end: the queue has room on B1C1 before it backs up past B1 and A1, where the ways around
    # leave - beyond them the drivers sent around would stand in it behind those who stay (with
    # the car 100 m in, half of them still do at the end). The run goes on well past the
    # demand (to 900 s) so that most trips end before it does.
    folder = grid_with_signs(tmp_path / "half", grid_net, True, share=0.5, pos_m=175.0,
                             duration_s=3600.0)  # fmt: skip
    kpis = run(folder, tmp_path / "r", end_s=1800.0).summary
    warned, rerouted = kpis["sign_warned_vehicles"], kpis["sign_reroutes"]
    stayed = warned - rerouted
    assert rerouted >= 8 and stayed >= 8
    # the way around from the sign is some 900 m, over a minute at the speed limit
    assert kpis["sign_rerouted_travel_time_mean_s"] > 60.0
    assert kpis["sign_rerouted_travel_time_mean_s"] < 0.7 * kpis["sign_stayed_travel_time_mean_s"]
    # most of those who stayed still stand behind the car at the end; the groups make up all
    # the warned drivers
    assert kpis["sign_rerouted_unfinished"] < kpis["sign_stayed_unfinished"] <= stayed
    assert kpis["sign_warned_travel_time_mean_s"] * warned == pytest.approx(
        kpis["sign_rerouted_travel_time_mean_s"] * rerouted
        + kpis["sign_stayed_travel_time_mean_s"] * stayed
    )
