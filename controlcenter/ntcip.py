"""``ccsim serve --ntcip HOST:PORT``: every signal of the run as an NTCIP agent.

The agents are fed from the same live state changes as the feed (signals, detectors, sensor
faults), and a SET takes the operators' path: it is audited (who: ``snmp@<manager address>``),
sent into the simulation as a :class:`~sim.signals.SignalCommand` through the safety guard, and
answered with the guard's verdict.

Access: the agents bind where ``--ntcip`` says (loopback unless told otherwise); the read
community is ``CCSIM_SNMP_READ_COMMUNITY`` (default ``public``); there is no write access until
``CCSIM_SNMP_WRITE_COMMUNITY`` is set (its SETs act with the operator role) or an SNMPv3 user
with the operator role is declared in ``CCSIM_SNMP_V3_USERS`` (authPriv: SHA and AES-128).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from adapters.ntcip.agent import AgentGroup, BindError
from adapters.ntcip.device import SignalDevice
from adapters.ntcip.model import DetectorReading, SignalLayout, build_layout, phases_of
from adapters.ntcip.protocol import Communities, Verdict, Write
from adapters.ntcip.usm import V3User
from controlcenter.auth import Role, User
from controlcenter.commands import CommandResult, Commands
from controlcenter.geojson import NetworkMap
from controlcenter.simproc import Control
from controlcenter.state import StateChanges
from sim.errors import CcsimError, ScenarioError
from sim.network import Network, read_network
from sim.scenario import Scenario
from sim.sensors import StationReport
from sim.signals import Action, ExternalShown, PhaseControl, SignalCommand

READ_COMMUNITY_ENV = "CCSIM_SNMP_READ_COMMUNITY"
WRITE_COMMUNITY_ENV = "CCSIM_SNMP_WRITE_COMMUNITY"
V3_USERS_ENV = "CCSIM_SNMP_V3_USERS"
"""``name:role:auth-passphrase:priv-passphrase`` entries, comma-separated (SHA + AES-128)."""
PATTERN_STANDBY, PATTERN_FREE, PATTERN_FLASH = 0, 254, 255
PHASE_CONTROL = {
    "phaseControlGroupPhaseOmit": "omit",
    "phaseControlGroupPedOmit": "ped_omit",
    "phaseControlGroupVehCall": "veh_call",
    "phaseControlGroupPedCall": "ped_call",
}
"""The phase control registers that become a :class:`~sim.signals.PhaseControl`, by object."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); the error says what was expected."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CcsimError(f"--ntcip '{text}': expected HOST:PORT, e.g. 127.0.0.1:16100")
    return host, int(port)


def v3_users_from(env: Mapping[str, str]) -> list[V3User]:
    users = []
    for entry in filter(None, (e.strip() for e in env.get(V3_USERS_ENV, "").split(","))):
        parts = entry.split(":")
        if len(parts) != 4:
            raise CcsimError(
                f"{V3_USERS_ENV}: '{parts[0]}...': expected name:role:auth-passphrase:priv-passphrase"
            )
        try:
            users.append(V3User(*parts))
        except ValueError as exc:
            raise CcsimError(f"{V3_USERS_ENV}: {exc}") from None
    return users


def communities_from(env: Mapping[str, str], v3_writers: bool = False) -> Communities:
    """The v1/v2c communities; an operator SNMPv3 user without a write community gets an
    internal one nobody is told (the v3 gateway uses it for that user's requests)."""
    read = env.get(READ_COMMUNITY_ENV, "public")
    write = env.get(WRITE_COMMUNITY_ENV)
    if not read:
        raise CcsimError(f"{READ_COMMUNITY_ENV}: empty; expected a community name")
    if write is not None and (len(write) < 8 or write == read):
        raise CcsimError(
            f"{WRITE_COMMUNITY_ENV}: expected at least 8 characters, different from the read community"
        )
    if write is None and v3_writers:
        write = "ccsim-v3-" + secrets.token_hex(16)
    return Communities(
        read=frozenset({read.encode()}), write=frozenset({write.encode()}) if write else frozenset()
    )


def signal_layouts(scenario: Scenario, network_map: NetworkMap) -> list[SignalLayout]:
    """One layout per signal, in the order of ``/api/network``."""
    network = read_network(scenario.net_file)
    layouts = []
    for feature in network_map.geojson["features"]:
        props = feature["properties"]
        if props.get("kind") != "signal":
            continue
        layouts.append(signal_layout(network, props["id"], list(props.get("lanes", []))))
    return layouts


def signal_layout(network: Network, tls_id: str, lanes: list[str]) -> SignalLayout:
    """One signal's NTCIP layout: its phases from its programs, detector ``n`` on ``lanes[n-1]``."""
    tls = network.traffic_lights[tls_id]
    link_lanes = [""] * tls.link_count
    for link in tls.links:
        if 0 <= link.index < len(link_lanes):
            link_lanes[link.index] = link.from_lane
    programs = [(p.id, [phase.state for phase in p.phases]) for p in tls.programs]
    return build_layout(tls.id, programs, link_lanes, tls.crossing_links, lanes)


class NtcipService:
    """The agents of a live run. Built (and bound) before the server starts; ``attach`` the
    command path, then ``start`` in the event loop."""

    def __init__(
        self,
        address: tuple[str, int] | None,
        scenario: Scenario,
        network_map: NetworkMap,
        env: Mapping[str, str] | None = None,
        stations: Sequence[tuple[str, tuple[str, int]]] = (),
        controllers: Sequence[tuple[str, tuple[str, int]]] = (),
    ) -> None:
        environment = os.environ if env is None else env
        self.v3_users = v3_users_from(environment)
        self.communities = communities_from(
            environment, v3_writers=any(u.role == "operator" for u in self.v3_users)
        )
        self.devices = [SignalDevice(layout) for layout in signal_layouts(scenario, network_map)]
        self._by_tls = {d.layout.tls: d for d in self.devices}
        self._by_lane = {lane: d for d in self.devices for lane in d.lanes}
        self.commands: Commands | None = None
        self.publish: Callable[[StateChanges], None] | None = None
        for binding in (*scenario.ntcip_stations, *scenario.ntcip_controllers):
            if binding.signal not in self._by_tls:
                raise ScenarioError(
                    scenario.source or scenario.root, f"no signal {binding.signal!r}",
                    field=f"{binding.field}.signal", value=binding.signal,
                    expected=f"one of {sorted(self._by_tls)}",
                )  # fmt: skip
        self.stations = list(stations) + [(b.signal, (b.host, b.port)) for b in scenario.ntcip_stations]
        self.drive = frozenset(b.signal for b in scenario.ntcip_stations if b.drive)
        """Signals whose controllers use their external station's data (``drive = true``)."""
        watched: set[str] = set()
        for tls, _ in self.stations:
            if tls not in self._by_tls:
                raise CcsimError(
                    f"--ntcip-station {tls}=...: no signal '{tls}'; signals: {sorted(self._by_tls)}"
                )
            if tls in watched:
                raise CcsimError(
                    f"signal '{tls}' has two external stations (--ntcip-station and the scenario's "
                    "[[ntcip.stations]] together count): bind one"
                )
            watched.add(tls)
        self.station_community = environment.get("CCSIM_SNMP_STATION_COMMUNITY", "public").encode()
        self.controllers = list(controllers) + [
            (b.signal, (b.host, b.port)) for b in scenario.ntcip_controllers
        ]
        bound: set[str] = set()
        for tls, _ in self.controllers:
            if tls not in self._by_tls:
                raise CcsimError(
                    f"--ntcip-controller {tls}=...: no signal '{tls}'; signals: {sorted(self._by_tls)}"
                )
            if tls in bound:
                raise CcsimError(
                    f"signal '{tls}' is bound to two external controllers (--ntcip-controller and "
                    "the scenario's [[ntcip.controllers]] together count)"
                )
            bound.add(tls)
        self.controller_community = environment.get("CCSIM_SNMP_CONTROLLER_COMMUNITY", "public").encode()
        write = environment.get("CCSIM_SNMP_CONTROLLER_WRITE_COMMUNITY")
        self.controller_write = write.encode() if write else None
        self.bindings: list[Any] = []
        self.watches: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.group: AgentGroup | None = None
        if address is not None:
            host, port = address
            try:
                self.group = AgentGroup(
                    self.devices, host, port, self.communities,
                    self._on_set if self.writable else None, v3_users=self.v3_users,
                )  # fmt: skip
            except BindError as exc:
                raise CcsimError(f"--ntcip {host}:{port}: {exc}") from None

    @property
    def writable(self) -> bool:
        return bool(self.communities.write)

    def attach(self, commands: Commands, publish: Callable[[StateChanges], None] | None = None) -> None:
        """The operators' command path, and where external stations' readings go (live state)."""
        self.commands = commands
        self.publish = publish

    async def start(self) -> None:
        from controlcenter.ntcip_hil import ControllerBinding
        from controlcenter.ntcip_stations import StationWatch

        if self.group is not None:
            await self.group.start()
        for tls, target in self.stations:
            watch = StationWatch(
                self._by_tls[tls], target, self.station_community, self._publish,
                send=self._send_station if tls in self.drive else None,
            )  # fmt: skip
            self.watches.append(watch)
            self._tasks.append(asyncio.create_task(watch.run(), name=f"ccsim-ntcip-station-{tls}"))
        for tls, target in self.controllers:
            binding = ControllerBinding(
                self._by_tls[tls], target, self.controller_community, self.controller_write,
                self._send_external,
            )  # fmt: skip
            self.bindings.append(binding)
            self._tasks.append(asyncio.create_task(binding.run(), name=f"ccsim-ntcip-hil-{tls}"))

    def _send_station(self, report: StationReport) -> bool:
        """Into the simulation, for the controllers the station drives."""
        if self.commands is None:
            return False
        return self.commands.simulation.send(Control("station", station=report))

    def _send_external(self, report: ExternalShown) -> bool:
        """Into the simulation, unaudited (a field report, ten a second, not a command)."""
        if self.commands is None:
            return False
        return self.commands.simulation.send(Control("external", external=report))

    def _publish(self, changes: StateChanges) -> None:
        if self.publish is not None:
            self.publish(changes)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.group is not None:
            self.group.close()

    def mapping(self) -> list[str]:
        """One line per agent and per external station, for the terminal."""
        endpoints = self.group.endpoints if self.group is not None else []
        agents = [
            f"ntcip: {e.tls} -> udp {e.host}:{e.port} ({len(d.layout.groups)} phases, "
            f"{len(d.layout.detectors)} detectors)"
            for e, d in zip(endpoints, self.devices, strict=False)
        ]
        stations = [f"ntcip station: {tls} <- udp {host}:{port}" for tls, (host, port) in self.stations]
        controllers = [
            f"ntcip controller: {tls} <- udp {host}:{port} (hardware in the loop"
            + (")" if self.controller_write else "; no calls placed: "
               "CCSIM_SNMP_CONTROLLER_WRITE_COMMUNITY is not set)")
            for tls, (host, port) in self.controllers
        ]  # fmt: skip
        return agents + stations + controllers

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/adapters`` shows of the agents."""
        return {
            "protocol": "NTCIP 1202 v03 ASC + NTCIP 1209 v02 TSS over SNMP v1/v2c/v3 (UDP)",
            "write": self.writable,
            "v3_users": [{"name": u.name, "role": u.role} for u in self.v3_users],
            "agents": [
                {
                    "tls": e.tls, "host": e.host, "port": e.port,
                    "phases": [
                        {"phase": g.number, "links": list(g.links), "pedestrian": g.pedestrian}
                        for g in d.layout.groups
                    ],
                    "detectors": [
                        {"detector": det.number, "lane": det.lane, "call_phase": det.call_phase}
                        for det in d.layout.detectors
                    ],
                    "patterns": [pid for pid, _ in d.layout.programs],
                    "counters": d.counters.as_dict(),
                }
                for e, d in zip(self.group.endpoints if self.group else [], self.devices, strict=False)
            ],
            "stations": [
                {"tls": w.tls, "host": w.target[0], "port": w.target[1], "periods": w.periods,
                 "failures": w.failures}
                for w in self.watches
            ],
            "controllers": [
                {"tls": b.tls, "host": b.target[0], "port": b.target[1], "polls": b.polls,
                 "answered": b.answered, "state": b.last_state,
                 "vehicle_calls": sorted(b.vehicle_calls), "calls_placed": b.calls_placed,
                 "call_failures": b.call_failures}
                for b in self.bindings
            ],
        }  # fmt: skip

    # --- what the live state learns (the pump thread) ------------------------------------------------

    def new_run(self) -> None:
        """A new run starts (between runs: no batch arrives meanwhile): every agent keeps
        serving, from the new run's data only (see :meth:`SignalDevice.new_run`)."""
        for device in self.devices:
            device.new_run()

    def on_changes(self, changes: StateChanges, t: float | None) -> None:
        for tls, entry in changes.get("signals", {}).items():
            device = self._by_tls.get(tls)
            if device is not None and isinstance(entry, dict):
                device.update_signal(t, entry)
        for lane, entry in changes.get("sensor_faults", {}).items():
            device = self._by_lane.get(lane)
            if device is not None:
                device.set_fault(
                    lane, str(entry.get("fault", "other")) if isinstance(entry, dict) else None
                )
        for lane, entry in changes.get("detectors", {}).items():
            device = self._by_lane.get(lane)
            if device is not None and isinstance(entry, dict):
                reading = DetectorReading(
                    present=int(entry.get("present", 0)),
                    queue=int(entry.get("queue", 0)),
                    occupancy=float(entry.get("occupancy", 0.0)),
                    count=int(entry.get("count", 0)),
                )
                device.update_detector(t, lane, reading)

    # --- SETs: the operators' path ------------------------------------------------------------------

    async def _on_set(self, device: SignalDevice, writes: tuple[Write, ...], who: str) -> list[Verdict]:
        verdicts: list[Verdict] = []
        user = User(who, Role.OPERATOR)
        for write in writes:
            if verdicts and not verdicts[-1].accepted:
                verdicts.append(Verdict(False, "not applied: an earlier variable was refused"))
                continue
            verdicts.append(await self._apply(device, write, user))
        device.touch()
        return verdicts

    async def _apply(self, device: SignalDevice, write: Write, user: User) -> Verdict:
        layout, controls = device.layout, device.controls
        name, value = write.object.name, write.value
        row = write.index[0] if write.index else 0
        instance = ".".join(map(str, write.index))
        arguments: dict[str, Any] = {"via": "ntcip", "object": f"{name}.{instance}", "value": value}
        if name == "phaseControlGroupHold":
            hold = {**controls.hold, row: value}
            held = {8 * (g - 1) + b + 1 for g, m in hold.items() for b in range(8) if m >> b & 1}
            snapshot = device.snapshot()
            if not held:
                verdict = await self._signal(device, Action.AUTOMATIC, "", user, arguments)
            else:
                phase = layout.hold_phase(snapshot.program, snapshot.phase, held)
                if phase is None:
                    return await self._refuse(
                        user, device, arguments,
                        f"NTCIP phases {sorted(held)} are never green together in program "
                        f"'{snapshot.program}'",
                    )  # fmt: skip
                verdict = await self._signal(device, Action.HOLD, str(phase), user, arguments)
            if verdict.accepted:
                controls.hold = {g: m for g, m in hold.items() if m}
            return verdict
        if name == "phaseControlGroupForceOff":
            controls.force_off[row] = value
            held_row = controls.hold.get(row, 0)
            if value & held_row:
                verdict = await self._signal(device, Action.AUTOMATIC, "", user, arguments)
                if verdict.accepted:
                    controls.hold = {}
                return verdict
            return await self._note(user, device, arguments, "no held phase to force off")
        if name in PHASE_CONTROL:
            return await self._phase_control(device, PHASE_CONTROL[name], row, value, user, arguments)
        if name == "systemPatternControl":
            if value in (PATTERN_STANDBY, PATTERN_FREE):
                verdict = await self._signal(device, Action.AUTOMATIC, "", user, arguments)
            elif value == PATTERN_FLASH:
                verdict = await self._signal(device, Action.FLASH, "", user, arguments)
            elif value <= len(layout.programs):
                program = layout.programs[value - 1][0]
                verdict = await self._signal(device, Action.PLAN, program, user, arguments)
            else:
                return await self._refuse(
                    user, device, arguments,
                    f"no pattern {value}: patterns 1-{len(layout.programs)} are the signal's programs",
                )  # fmt: skip
            if verdict.accepted:
                controls.system_pattern = value
            return verdict
        return await self._refuse(
            user, device, arguments, f"{name} is not supported by ccsim's controllers yet"
        )

    async def _phase_control(
        self, device: SignalDevice, register: str, row: int, value: int, user: User,
        arguments: dict[str, Any],
    ) -> Verdict:  # fmt: skip
        """Omit / PedOmit / VehCall / PedCall: the four registers together become the signal's
        omitted links and standing calls, sent through the guard; kept once the guard accepts.
        ccsim's pedestrian phases are their own phases (crossing links), on recall in its
        controllers: PedOmit omits them, a PedCall is shown and kept but changes no service."""
        layout, controls = device.layout, device.controls
        registers = {r: dict(getattr(controls, r)) for r in PHASE_CONTROL.values()}
        registers[register][row] = value
        phases = {r: phases_of(masks) for r, masks in registers.items()}
        numbers = {g.number for g in layout.groups}
        pedestrian = {g.number for g in layout.groups if g.pedestrian}
        name = arguments["object"]
        if unknown := sorted(phases[register] - numbers):
            return await self._refuse(
                user, device, arguments,
                f"{name}: no phase {unknown}; signal {layout.tls} has phases 1-{len(numbers)}",
            )  # fmt: skip
        if register in ("ped_omit", "ped_call") and (vehicle := sorted(phases[register] - pedestrian)):
            return await self._refuse(
                user, device, arguments,
                f"{name}: phases {vehicle} have no pedestrian service; the pedestrian phases of "
                f"{layout.tls} are {sorted(pedestrian)}",
            )  # fmt: skip
        omitted = phases["omit"] | phases["ped_omit"]
        label = (
            f"omit={sorted(omitted)} veh_call={sorted(phases['veh_call'])} "
            f"ped_call={sorted(phases['ped_call'])}"
        )
        command = PhaseControl(
            layout.tls, layout.links_of(omitted), layout.lanes_of(phases["veh_call"] - omitted),
            label, user.name,
        )  # fmt: skip
        args = {"action": "phase-control", "argument": label, **arguments}
        result = await self._commands().simulate(
            user, "signal.override", f"tls:{layout.tls}", args, command
        )
        verdict = _verdict(result)
        if verdict.accepted:
            for r, masks in registers.items():
                setattr(controls, r, {g: m for g, m in masks.items() if m})
        return verdict

    async def _signal(
        self, device: SignalDevice, action: Action, argument: str, user: User, arguments: dict[str, Any]
    ) -> Verdict:
        commands = self._commands()
        tls = device.layout.tls
        command = SignalCommand(tls, action, argument, user.name, via="ntcip")
        args = {"action": action.value, "argument": argument, **arguments}
        result = await commands.simulate(user, "signal.override", f"tls:{tls}", args, command)
        return _verdict(result)

    async def _refuse(
        self, user: User, device: SignalDevice, arguments: dict[str, Any], why: str
    ) -> Verdict:
        tls = device.layout.tls
        result = await self._commands().audit(
            user, "signal.override", f"tls:{tls}", arguments, "refused", why
        )
        return _verdict(result)

    async def _note(
        self, user: User, device: SignalDevice, arguments: dict[str, Any], why: str
    ) -> Verdict:
        tls = device.layout.tls
        result = await self._commands().audit(
            user, "signal.override", f"tls:{tls}", arguments, "accepted", why
        )
        return _verdict(result)

    def _commands(self) -> Commands:
        if self.commands is None:
            raise RuntimeError("NtcipService.attach() was not called")
        return self.commands


def _verdict(result: CommandResult) -> Verdict:
    """accepted and pending (queued for the next step) are both a yes to the manager."""
    return Verdict(result.result != "refused", result.detail)
