"""Infrared enforcement cameras at signalised junctions.

Each step (the cameras see continuously) a site watches the paths across its junction - the
internal lanes SUMO moves vehicles on between stop line and exit - and the signal state:

* **red light**: a vehicle appears on a path whose signal was red during the step (after the
  yellow, while the all-red or the red ran): it crossed the stop line on red. Severity
  by how long the red had run: under 1 s minor, under 3 s serious, else very serious. (A vehicle
  that crosses a whole short path within one step is not seen: at 1 s steps, short right turns.)
* **improper turn**: the same on a right turn (turning right on red is not allowed in
  Peru unless signed), or any U-turn where the site bans them (``ban_u_turns``).
* **crosswalk**: a vehicle stands (speed < 0.1 m/s) with its body over the first or last
  ``crosswalk_m`` of its path, where the crosswalks are, while that crosswalk's pedestrians have
  walk (a vehicle waiting there for its turn while the crosswalk is red blocks nobody).
* **box blocking**: a vehicle stands anywhere else inside the junction while its own signal is
  red, in the way of the crossing streams.

Each vehicle is reported at most once per site and kind. Messages carry no vehicle identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.devices.config import EnforcementConfig
from sim.devices.registry import DeviceContext, DeviceModel, register_device
from sim.devices.sites import crossed_edges, junction_sites
from sim.messages import (
    BoxBlockingViolation,
    CrosswalkViolation,
    ImproperTurnViolation,
    Message,
    MessageBus,
    RedLightViolation,
    SignalPhase,
)
from sim.network import Network
from sim.sumo import SumoWorld

HALTED_MPS = 0.1
RED = frozenset("r")  # SUMO: r red (s is a green arrow after a stop, u red-yellow: no entry yet)
RIGHT = frozenset("rR")
U_TURN = "t"


def _walking(state: str, link: int | None) -> bool:
    """Whether the pedestrian signal at ``link`` shows walk (green)."""
    return link is not None and link < len(state) and state[link] in "Gg"


def red_severity(red_for_s: float) -> str:
    """How serious entering on a red that has run ``red_for_s`` seconds is."""
    if red_for_s < 1.0:
        return "minor"
    return "serious" if red_for_s < 3.0 else "very_serious"


@dataclass
class _Path:
    link: int
    direction: str
    lanes: list[str]
    offsets: list[float]
    length_m: float
    entry_crossing: int | None = None
    """Link index of the pedestrian signal of the crosswalk at the path's start (None: none)."""
    exit_crossing: int | None = None


@dataclass
class _Site:
    tls: str
    paths: list[_Path]
    on_path: dict[int, set[str]] = field(default_factory=dict)
    red_since: dict[int, float] = field(default_factory=dict)
    shown: str = ""
    reported: set[tuple[str, str]] = field(default_factory=set)


def site_paths(
    network: Network, tls: str, crossings: dict[str, tuple[str, ...]] | None = None
) -> list[_Path]:
    """The signalised paths across ``tls``, each as its chain of internal lanes, with the
    pedestrian signals of the crosswalks at its two ends (``crossings``: crossing edge -> the
    road edges it crosses)."""
    light = network.traffic_lights[tls]
    signal_of: dict[str, int] = {}
    for index, lane in light.crossing_lanes.items():
        for edge in (crossings or {}).get(lane.rsplit("_", 1)[0], ()):
            signal_of.setdefault(edge, index)
    paths = []
    for link in sorted(light.links, key=lambda lk: lk.index):
        if not link.via:
            continue
        lanes, offsets, offset, lane = [], [], 0.0, link.via
        while lane and lane not in lanes:
            lanes.append(lane)
            offsets.append(offset)
            offset += network.internal_length_m.get(lane, 0.0)
            lane = network.internal_next.get(lane, "")
        entry = signal_of.get(link.from_lane.rsplit("_", 1)[0])
        exit_ = signal_of.get(link.to_lane.rsplit("_", 1)[0])
        paths.append(_Path(link.index, link.direction, lanes, offsets, offset, entry, exit_))
    return paths


class EnforcementCameras(DeviceModel):
    def __init__(self, context: DeviceContext, config: EnforcementConfig) -> None:
        self.config = config
        self.bus: MessageBus = context.bus
        self.period_s = context.step_s
        network = context.network
        crossings = crossed_edges(network.path)
        tls_ids = junction_sites(network, config.sites, config.count, source=context.source,
                                 field="devices.enforcement.sites")  # fmt: skip
        self.cameras = [_Site(tls, site_paths(network, tls, crossings)) for tls in tls_ids]

    def bind(self, world: SumoWorld, t: float) -> None:
        super().bind(world, t)
        self._by_tls = {site.tls: site for site in self.cameras}
        for site in self.cameras:
            site.shown = world.signal_state(site.tls)
            site.red_since = {i: t for i, c in enumerate(site.shown) if c in RED}
        self.bus.subscribe(self._on_message)

    def _on_message(self, message: Message) -> None:
        # The monitor reads every signal right after each SUMO step: the state that was in force
        # while vehicles moved in that step (whoever drives the signal).
        payload = message.payload
        if isinstance(payload, SignalPhase) and payload.tls in self._by_tls:
            site = self._by_tls[payload.tls]
            before = site.shown
            for i, c in enumerate(payload.state):
                if c in RED and (i >= len(before) or before[i] not in RED):
                    site.red_since[i] = message.t
            site.shown = payload.state

    def sites(self) -> tuple[str, ...]:
        return tuple(s.tls for s in self.cameras)

    def sample(self, t: float) -> None:
        for site in self.cameras:
            self._watch(t, site)

    def _watch(self, t: float, site: _Site) -> None:
        # Inlined for speed: most paths are empty at most steps, and cost one call per lane.
        lane_vehicles, state = self.world.lane_vehicle_ids, site.shown
        for path in site.paths:
            now: dict[str, tuple[str, float]] = {}
            for lane, offset in zip(path.lanes, path.offsets, strict=True):
                for vehicle in lane_vehicles(lane):
                    now[vehicle] = (lane, offset)
            before = site.on_path.get(path.link)
            if not now:
                if before:
                    site.on_path[path.link] = set()
                continue
            entered = now.keys() - before if before else now.keys()
            site.on_path[path.link] = set(now)
            signal = state[path.link] if path.link < len(state) else "G"
            for vehicle in sorted(entered):
                self._entered(t, site, path, vehicle, signal)
            for vehicle, (lane, offset) in sorted(now.items()):
                self._inside(t, site, path, vehicle, lane, offset, signal)

    def _entered(self, t: float, site: _Site, path: _Path, vehicle: str, signal: str) -> None:
        speed_kmh = round(self.world.vehicle_speed(vehicle) * 3.6, 1)
        source = f"enforcement:{site.tls}"
        if path.direction == U_TURN and self.config.ban_u_turns:
            payload = ImproperTurnViolation(site.tls, "serious", speed_kmh, f"u-turn, link {path.link}")
            self._report(t, site, vehicle, source, payload)
        elif signal in RED:
            red_for = t - site.red_since.get(path.link, t)
            severity = red_severity(max(0.0, red_for))
            if path.direction in RIGHT:
                detail = f"right turn on red, link {path.link}, red for {red_for:.0f} s"
                self._report(t, site, vehicle, source,
                             ImproperTurnViolation(site.tls, severity, speed_kmh, detail))  # fmt: skip
            else:
                detail = f"link {path.link} ({path.direction}), red for {red_for:.0f} s"
                self._report(t, site, vehicle, source,
                             RedLightViolation(site.tls, severity, speed_kmh, detail))  # fmt: skip

    def _inside(
        self, t: float, site: _Site, path: _Path, vehicle: str, lane: str, offset: float, signal: str
    ) -> None:
        pos, length, speed = self.world.vehicle_on_lane(vehicle)
        if speed >= HALTED_MPS:
            return
        front = offset + pos
        back = front - length
        cw = self.config.crosswalk_m
        source = f"enforcement:{site.tls}"
        if _walking(site.shown, path.entry_crossing) and back < cw:
            where = "entry"
        elif _walking(site.shown, path.exit_crossing) and front > path.length_m - cw:
            where = "exit"
        else:
            where = ""
        if where:
            detail = f"standing on the {where} crosswalk while pedestrians have walk, link {path.link}"
            self._report(t, site, vehicle, source, CrosswalkViolation(site.tls, "serious", 0.0, detail))
        elif signal in RED:
            detail = f"standing in the junction on red, link {path.link}"
            self._report(t, site, vehicle, source, BoxBlockingViolation(site.tls, "minor", 0.0, detail))

    def _report(
        self,
        t: float,
        site: _Site,
        vehicle: str,
        source: str,
        payload: RedLightViolation | ImproperTurnViolation | CrosswalkViolation | BoxBlockingViolation,
    ) -> None:
        key = (vehicle, payload.kind)
        if key in site.reported:
            return
        site.reported.add(key)
        self.bus.publish(t, source, payload)


@register_device("enforcement")
def _build(context: DeviceContext, config: EnforcementConfig) -> DeviceModel:
    return EnforcementCameras(context, config)
