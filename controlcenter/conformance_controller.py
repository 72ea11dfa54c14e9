"""``ccsim conformance PLAN.toml`` for an NTCIP 1202 actuated signal controller
(``device.kind = "ntcip1202"``): scored against NTCIP 1202 over SNMP and against the simulation's
ground truth.

For an emulated controller the plan's scenario runs with its controller and seed, and the
emulator process (:mod:`adapters.conformance.controller_emulator`) is the signal's cabinet: every
step what the intersection shows goes to its stdin, and each SET it accepts comes back on its
stdout and is handed to the simulated controller as a command (hold, omit, call, pattern) - the
way ccsim's own agents turn SETs into commands (:mod:`controlcenter.ntcip`). After each step the
harness reads the controller's phase status over SNMP and keeps it beside what SUMO showed; during
the run it holds, omits and calls a phase by SET and watches what the intersection does. Then the
protocol cases run against the same controller, and the accuracy cases compare what it reported
with the truth. An external controller (``address = HOST:PORT``) gets the protocol cases; its
truth is its own intersection, which the harness cannot see.

Outputs in ``--out``: ``results.json``, ``report.md``, ``report.html`` (as for every device),
``controller-layout.json`` and ``emulator.log`` for an emulated controller, the run under ``sim/``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from adapters.conformance import report
from adapters.conformance.cases import CASES, CaseResult, not_applicable, selected
from adapters.conformance.controller_accuracy import (
    Colours,
    Command,
    Poll,
    command_cases,
    onsets,
    status_cases,
    steady,
    truth_colours,
)
from adapters.conformance.controller_cases import (
    Shape,
    StatusObservations,
    consistency_case,
    group_tables_case,
    objects_cases,
    oid,
    phase_table_case,
    poll_status,
    read_shape,
    set_cases,
    set_value,
    status_problems,
    timing_case,
)
from adapters.conformance.controller_device import REGISTERS, layout_to_dict
from adapters.conformance.plan import Plan, PlanError
from adapters.conformance.protocol_cases import Station, identity_case
from adapters.ntcip import ber
from adapters.ntcip.manager import Manager, ManagerError
from adapters.ntcip.model import Controls, SignalLayout, phases_of
from controlcenter.conformance import input_files, plan_scenario, sha256, verdict_head
from controlcenter.conformance_lockstep import EmulatorChild
from controlcenter.ntcip import signal_layout
from sim.controllers import create_controller
from sim.engine import Simulation
from sim.errors import CcsimError
from sim.messages import DetectorReadings, Message, SignalMode, SignalOverride, SignalPhase
from sim.network import read_network
from sim.outputs import prepare_out_dir
from sim.scenario import Scenario
from sim.signals import Action, PhaseControl, SignalCommand
from sim.signals import Command as SimCommand

START_S = 30.0
STEP_WAIT_S = 30.0
"""How long the simulation waits for the harness's poll (and commands) of one step (wall s)."""
COMMANDS = (("hold", 0.25, 120.0), ("omit", 0.50, 180.0), ("call", 0.75, 120.0))
"""The run's commands: what, when (share of the run), for how long (s). A hold longer than any
green the controller gives by itself, an omit longer than its cycle."""
REGISTER = {"hold": "phaseControlGroupHold", "omit": "phaseControlGroupPhaseOmit",
            "call": "phaseControlGroupVehCall"}  # fmt: skip
USER = "ntcip1202-cabinet"


@dataclass
class ControllerSite:
    scenario: Scenario
    signal: str
    layout: SignalLayout
    begin_s: float
    end_s: float


def resolve_controller_site(plan: Plan, end_s: float | None = None) -> ControllerSite:
    """The plan's scenario and signal, checked against the net (errors name the plan)."""
    doc = plan.doc.scenario
    scenario, controller = plan_scenario(plan)
    if not controller.uses_detectors:
        raise PlanError(plan.path, "the controller leaves the signals to the net's own programs, so "
                        "no command reaches them", field="scenario.controller",
                        value=doc.controller, expected="actuated, maxpressure or adaptive")  # fmt: skip
    network = read_network(scenario.net_file)
    signal = doc.signal
    if signal is None or signal not in network.traffic_lights:
        known = "one of " + ", ".join(sorted(network.traffic_lights))
        raise PlanError(plan.path, "no such signal in the scenario's net", field="scenario.signal",
                        value=signal, expected=known)  # fmt: skip
    tls = network.traffic_lights[signal]
    layout = signal_layout(network, signal, [lane.id for lane in tls.incoming_lanes(network)])
    begin = scenario.begin_s if doc.begin_s is None else doc.begin_s
    end = end_s if end_s is not None else (scenario.end_s if doc.end_s is None else doc.end_s)
    if end <= begin + 60:
        raise PlanError(plan.path, "the run is too short", field="scenario.end_s", value=end,
                        expected=f"above {begin + 60:g} s")  # fmt: skip
    return ControllerSite(scenario, signal, layout, begin, end)


# --- the emulator process -------------------------------------------------------------------------


class ControllerEmulatorProcess(EmulatorChild):
    """The emulated controller as a child process (see the module docstring)."""

    def __init__(self, plan: Plan, site: ControllerSite, out: Path, write_community: str) -> None:
        device = plan.controller
        em = device.emulator
        assert em is not None
        layout = out / "controller-layout.json"
        layout.write_text(json.dumps(layout_to_dict(site.layout), indent=1) + "\n", encoding="utf-8")
        command = [
            sys.executable, "-m", "adapters.conformance.controller_emulator", "--layout", str(layout),
            "--listen", "127.0.0.1:0", "--begin", f"{site.begin_s:g}",
            "--status-latency", str(em.status_latency_s), "--broken", ",".join(em.broken),
            "--stuck-after", str(em.stuck_after_s), "--community", device.community,
            "--descr", em.descr, "--name", em.name,
        ]  # fmt: skip
        super().__init__(command, out / "emulator.log", write_community, "controller")

    @property
    def stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def exchange(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """Send one line, wait for its ack; returns the SETs the controller accepted meanwhile."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(doc) + "\n")
        self.process.stdin.flush()
        writes: list[dict[str, Any]] = []
        while line := self.stdout.readline():
            answer = json.loads(line)
            if "ack" in answer:
                return writes
            writes.append(answer)
        raise CcsimError(f"the emulated controller stopped answering (see {self.log})")


# --- the cabinet: registers become the simulated controller's commands ----------------------------


@dataclass
class Cabinet:
    """The registers an emulated controller forwards, turned into commands to the simulation as
    ccsim's own agents turn SETs into operator commands: a hold holds a program phase in which
    the held phases are green, omits and calls become one :class:`~sim.signals.PhaseControl`,
    ``systemPatternControl`` a free / flash / plan command."""

    layout: SignalLayout
    controls: Controls = field(default_factory=Controls)

    def commands(self, write: dict[str, Any], program: str, phase: int | None) -> list[SimCommand]:
        layout, controls, tls = self.layout, self.controls, self.layout.tls
        name, value = str(write["set"]), int(write["value"])
        row = int(write["index"][0]) if write["index"] else 0
        if name == "systemPatternControl":
            controls.system_pattern = value
            if value == 255:
                return [SignalCommand(tls, Action.FLASH, "", USER, via="ntcip")]
            if 1 <= value <= len(layout.programs):
                program = layout.programs[value - 1][0]
                return [SignalCommand(tls, Action.PLAN, program, USER, via="ntcip")]
            return [SignalCommand(tls, Action.AUTOMATIC, "", USER, via="ntcip")]
        register = dict(getattr(controls, REGISTERS[name]))
        register[row] = value
        setattr(controls, REGISTERS[name], {r: v for r, v in register.items() if v})
        if name == "phaseControlGroupHold":
            held = controls.held_phases()
            index = layout.hold_phase(program, phase, held) if held else None
            if index is None:
                return [SignalCommand(tls, Action.AUTOMATIC, "", USER, via="ntcip")]
            return [SignalCommand(tls, Action.HOLD, str(index), USER, via="ntcip")]
        if name == "phaseControlGroupForceOff":
            if value & controls.hold.get(row, 0):
                controls.hold = {}
                return [SignalCommand(tls, Action.AUTOMATIC, "", USER, via="ntcip")]
            return []
        omitted = phases_of(controls.omit) | phases_of(controls.ped_omit)
        calls = phases_of(controls.veh_call) - omitted
        label = f"omit={sorted(omitted)} veh_call={sorted(calls)}"
        return [PhaseControl(tls, layout.links_of(omitted), layout.lanes_of(calls), label, USER)]


# --- the run in lockstep --------------------------------------------------------------------------


@dataclass
class ControllerRun:
    """The simulation, the emulated controller and the harness's polls and commands, in step."""

    site: ControllerSite
    plan: Plan
    dut: Station
    emulator: ControllerEmulatorProcess
    shape: Shape
    loop: asyncio.AbstractEventLoop
    workdir: Path
    """Where the simulation writes its files."""
    truth: list[tuple[float, Colours]] = field(default_factory=list)
    polls: list[Poll] = field(default_factory=list)
    status: StatusObservations = field(default_factory=StatusObservations)
    commands: list[Command] = field(default_factory=list)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    forwarded: list[dict[str, Any]] = field(default_factory=list)
    simulation: Simulation | None = None

    def __post_init__(self) -> None:
        site = self.site
        span = site.end_s - site.begin_s
        due = [(kind, site.begin_s + share * span, length) for kind, share, length in COMMANDS]
        for k, (kind, at, length) in enumerate(due):
            if at + length + 30 > site.end_s:
                continue  # the run is too short for it (its case says so)
            following = due[k + 1][1] if k + 1 < len(due) else site.end_s - length - 30
            self.commands.append(Command(kind, at, length, deadline_s=following))
        self.cabinet = Cabinet(site.layout)
        self._signal: dict[str, Any] = {"state": "", "program": "", "phase": None, "mode": "automatic"}
        self._target: int | None = None
        self._lanes = {d.lane for d in site.layout.detectors}
        self._present: dict[str, int] = {}
        self._sent: dict[str, Any] = {}

    def listen(self, message: Message) -> None:
        p = message.payload
        if isinstance(p, SignalPhase) and p.tls == self.site.signal:
            self._signal.update(state=p.state, program=p.program, phase=p.phase)
            self._target = p.target
        elif isinstance(p, SignalMode) and p.tls == self.site.signal:
            self._signal["mode"] = p.mode
        elif isinstance(p, DetectorReadings):
            for lane, reading in p.lanes.items():
                if lane in self._lanes:
                    self._present[lane] = int(reading[2])
        elif isinstance(p, SignalOverride) and p.tls == self.site.signal:
            self.overrides.append({"t": message.t, "action": p.action, "argument": p.argument,
                                   "accepted": p.accepted, "detail": p.detail})  # fmt: skip

    def pace(self, t: float) -> None:
        """After each SUMO step (the simulation's thread): the step to the emulator, then the
        harness's commands and poll of this step, then the SETs the emulator accepted to the
        simulated controller (applied at the next step)."""
        fields: dict[str, Any] = {k: v for k, v in self._signal.items() if self._sent.get(k) != v}
        if self._sent.get("present") != self._present:
            fields["present"] = dict(self._present)
        self._sent.update(fields)
        self._forward(t, self.emulator.exchange({"t": t, **fields}))
        colours = truth_colours(self.site.layout, self._signal["state"])
        self.truth.append((t, colours))
        sent = asyncio.run_coroutine_threadsafe(self.at_step(t, colours), self.loop).result(STEP_WAIT_S)
        if sent:
            self._forward(t, self.emulator.exchange({"sync": t}))

    def _forward(self, t: float, writes: list[dict[str, Any]]) -> None:
        phase = self._signal["phase"]
        current = self._target if not isinstance(phase, int) or phase < 0 else phase
        for write in writes:
            self.forwarded.append({"t": t, **write})
            for command in self.cabinet.commands(write, str(self._signal["program"]), current):
                assert self.simulation is not None  # steps come from its run
                self.simulation.submit(command)

    async def at_step(self, t: float, colours: Colours) -> bool:
        """This step's command, if one is due, and the poll of the phase status."""
        sent = False
        for command in self.commands:
            if command.released_s is not None or command.skipped:
                continue
            if command.sent_s is None:
                if t > command.deadline_s:
                    command.skipped = True
                    continue
                phase = self._choose(command, colours, t) if t >= command.at_s else None
                if phase is not None:
                    await self._send(command, phase, t)
                    sent = True
            elif t >= command.sent_s + command.for_s and command.phase is not None:
                group = (command.phase - 1) // 8 + 1
                command.sets.append(await set_value(self.dut, REGISTER[command.kind], group, 0, t))
                command.released_s = t
                sent = True
            break  # one command at a time, in order
        groups = self.shape.groups or 1
        try:
            shown, masks = await poll_status(self.dut, len(self.site.layout.groups), groups)
        except ManagerError:
            self.polls.append(Poll(t, None))
        else:
            self.polls.append(Poll(t, shown))
            self.status.polls += 1
            self.status.problems += status_problems(t, shown, masks, self.shape)
        return sent

    def _choose(self, command: Command, colours: Colours, t: float) -> int | None:
        """The phase to command now: a red vehicle phase at a steady moment (for an omit, the one
        served most in the window before, so the omit's effect can be told)."""
        layout = self.site.layout
        if not steady(layout, colours):
            return None
        red = [g.number for g in layout.groups if not g.pedestrian and colours[g.number - 1] == "R"]
        if not red:
            return None
        if command.kind == "omit":
            return max(red, key=lambda n: (len(onsets(self.truth, n, t - command.for_s, t)), -n))
        return red[0]

    async def _send(self, command: Command, phase: int, t: float) -> None:
        group, bit = (phase - 1) // 8 + 1, 1 << ((phase - 1) % 8)
        command.phase, command.sent_s = phase, t
        command.sets.append(await set_value(self.dut, REGISTER[command.kind], group, bit, t))
        if command.kind == "call":
            tlvs = await self.dut.get([oid("phaseStatusGroupVehCalls", group)])
            value = ber.decode_value(tlvs.get(oid("phaseStatusGroupVehCalls", group), b""))
            command.shown = isinstance(value, int) and bool(value & bit)

    def run(self) -> dict[str, Any]:
        """The simulation (call in a worker thread); returns its summary."""
        doc = self.plan.doc.scenario
        simulation = self.simulation = Simulation(
            self.site.scenario, create_controller(doc.controller), seed=doc.seed,
            workdir=self.workdir, begin_s=self.site.begin_s, end_s=self.site.end_s, pace=self.pace,
        )  # fmt: skip
        simulation.bus.subscribe(self.listen)
        return simulation.run().summary


# --- the plan ------------------------------------------------------------------------------------


async def run_controller_plan(
    plan: Plan, out: Path, *, end_s: float | None = None, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run ``plan``; returns results.json's content (also written, with the reports, to ``out``)."""
    started = time.perf_counter()
    site = resolve_controller_site(plan, end_s)
    device = plan.controller
    prepare_out_dir(out)
    wanted = selected(plan.doc.cases.include, plan.doc.cases.exclude, "ntcip1202")
    write = device.write_community
    emulator: ControllerEmulatorProcess | None = None
    if plan.emulated:
        write = write or "ccsim-conformance-" + secrets.token_hex(8)
        emulator = ControllerEmulatorProcess(plan, site, out, write)
        target = emulator.address
        say(f"emulated controller: udp {target[0]}:{target[1]} (log {emulator.log})")
    else:
        host, _, port = device.address.rpartition(":")
        target = (host.strip("[]"), int(port))
    managers: list[Manager] = []
    results: list[CaseResult] = []
    run: ControllerRun | None = None
    summary: dict[str, Any] | None = None
    status = StatusObservations()
    th = plan.thresholds
    try:
        managers.append(await Manager.open(device.community.encode()))
        managers.append(await Manager.open(device.community.encode(), version=0))
        dut = Station(managers[0], target, device.community.encode(),
                      write.encode() if write else None, 0)  # fmt: skip
        identity, id_case = await identity_case(dut, "ASC-ID-1")
        if "ASC-ID-1" in wanted:
            results.append(id_case)
        shape = await read_shape(dut) if identity is not None else Shape()
        if emulator is not None and identity is not None:
            say(f"running {site.scenario.name} {site.begin_s:g}-{site.end_s:g} s, signal {site.signal} "
                f"({len(site.layout.groups)} phases), {plan.doc.scenario.controller}; the phase "
                "status polled every step")  # fmt: skip
            run = ControllerRun(site, plan, dut, emulator, shape, asyncio.get_running_loop(),
                                out / "sim")  # fmt: skip
            summary = await asyncio.to_thread(run.run)
            status = run.status
        elif identity is not None and shape.phases and shape.groups:
            begin = time.monotonic()
            for _ in range(20):  # an external controller: its status read for a while (ASC-TBL-3)
                try:
                    shown, masks = await poll_status(dut, shape.phases, shape.groups)
                except ManagerError:
                    continue
                status.polls += 1
                at = round(time.monotonic() - begin, 1)  # wall s: it runs on its own clock
                status.problems += status_problems(at, shown, masks, shape)
                await asyncio.sleep(0.1)
        if identity is not None:
            results += await objects_cases(dut, shape, wanted)
            if "ASC-TBL-1" in wanted:
                results.append(await phase_table_case(dut, shape))
            if "ASC-TBL-2" in wanted:
                results.append(await group_tables_case(dut, shape))
            if "ASC-TBL-3" in wanted:
                results.append(consistency_case(status))
            run_sets = [s for c in run.commands for s in c.sets] if run else []
            results += await set_cases(dut, managers[1], shape, run_sets, wanted)
            if "ASC-TIM-1" in wanted:
                results.append(await timing_case(dut, shape.groups or 1, th.timing_requests,
                                                 th.response_p95_ms))  # fmt: skip
        else:
            why = "the controller did not answer (ASC-ID-1)"
            results += [not_applicable(c, why) for c in wanted
                        if CASES[c].group == "protocol" and c != "ASC-ID-1"]  # fmt: skip
    finally:
        for manager in managers:
            manager.close()
        if emulator is not None:
            emulator.close()
    accuracy_wanted = [c for c in wanted if CASES[c].group == "accuracy"]
    figures: dict[str, Any] | None = None
    if run is not None:
        status_results, figures = status_cases(run.truth, run.polls, th.status_agreement_pct,
                                               th.status_latency_p95_s, accuracy_wanted)  # fmt: skip
        results += status_results
        results += command_cases(run.commands, run.truth, th.command_settle_s, accuracy_wanted)
    else:
        why = "the controller did not answer"
        if identity is not None:
            why = ("an external controller runs an intersection the simulation does not see: "
                   "accuracy needs an emulated controller")  # fmt: skip
        results += [not_applicable(c, why) for c in accuracy_wanted]
    doc: dict[str, Any] = {
        **verdict_head(plan, results, started),
        "device": {
            "kind": device.kind, "address": device.address, "target": f"{target[0]}:{target[1]}",
            "identity": identity,
            "emulator": device.emulator.model_dump() if device.emulator is not None else None,
        },
        "scenario": {
            "name": site.scenario.name, "signal": site.signal,
            "controller": plan.doc.scenario.controller, "seed": plan.doc.scenario.seed,
            "begin_s": site.begin_s, "end_s": site.end_s,
            "vehicles_departed": summary["vehicles_departed"] if summary else None,
            "phases": [{"phase": g.number, "pedestrian": g.pedestrian, "links": list(g.links)}
                       for g in site.layout.groups],
        },
        "thresholds": th.__dict__,
        "inputs": [{"path": str(p), "sha256": sha256(p)} for p in input_files(plan, site.scenario)],
        "cases": [r.to_dict() for r in results],
        "controller": None if run is None else controller_doc(run, figures or {}),
    }  # fmt: skip
    report.write_all(doc, out)
    return doc


def controller_doc(run: ControllerRun, figures: dict[str, Any]) -> dict[str, Any]:
    """results.json's ``controller``: the figures, the commands, and both timelines as change
    points (each [t, colours], colours one string per phase; null: no answer)."""

    def changes(points: list[tuple[float, Colours | None]]) -> list[list[Any]]:
        out: list[list[Any]] = []
        for t, colours in points:
            value = None if colours is None else list(colours)
            if not out or out[-1][1] != value:
                out.append([t, value])
        return out

    return {
        **figures,
        "polls": len(run.polls),
        "step_s": run.site.scenario.step_length_s,
        "truth": changes([(t, c) for t, c in run.truth]),
        "reported": changes([(p.t, p.colours) for p in run.polls]),
        "commands": [
            {"kind": c.kind, "phase": c.phase, "due_s": c.at_s, "sent_s": c.sent_s,
             "released_s": c.released_s, "shown": c.shown,
             "sets": [s.__dict__ for s in c.sets]}
            for c in run.commands
        ],
        "forwarded": run.forwarded,
        "overrides": run.overrides,
    }  # fmt: skip
