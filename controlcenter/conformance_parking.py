"""``ccsim conformance PLAN.toml`` for LoRaWAN parking sensors (``device.kind = "lorawan"``):
their uplinks, as the network server publishes them on MQTT, scored against The Things Stack /
ChirpStack and the vendor's codec, and against the simulation's ground truth.

For emulated sensors a Mosquitto of our own is started (or the plan's broker used), the harness
subscribes to the plan's topic, and the emulator process
(:mod:`adapters.conformance.parking_emulator`) publishes on it: the plan's scenario runs and
every step the true changes of the watched bays go to the emulator's stdin (the scenario's own
bay sensors are made ideal for the run, so their arrivals and departures are the truth). At the
end the harness waits until every message the emulator published has arrived, then judges the
recording. Real sensors (``address = "mqtt://..."``) are listened to for ``listen_s`` and get the
protocol cases; their accuracy needs a truth the harness cannot see.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from adapters.conformance.accuracy import vehicles_to_distinguish
from adapters.conformance.bay_sensors import EPOCH_S, bay_registry
from adapters.conformance.cases import CASES, CaseResult, not_applicable, selected
from adapters.conformance.lorawan_cases import Expected, Received, identity, protocol_cases
from adapters.conformance.parking_accuracy import (
    ParkingThresholds,
    fitted_bay_profile,
    parking_cases,
    score,
)
from adapters.conformance.plan import LoRaWANDeviceDoc, Plan, PlanError
from adapters.conformance.report import write_all
from adapters.lorawan.codecs import codec_for
from adapters.lorawan.ingest import Ingest
from adapters.lorawan.registry import Registry, RegistryError, read_registry
from adapters.lorawan.uplink import SUBSCRIPTIONS, Format, UplinkError, parse
from adapters.mqtt.broker import BrokerError, BrokerUrl, MosquittoBroker, parse_broker_url
from adapters.mqtt.transport import connect, deliver, subscribe
from controlcenter.conformance import input_files, plan_scenario, sha256, verdict_head
from sim.controllers import create_controller
from sim.engine import Simulation
from sim.errors import CcsimError
from sim.messages import BayObserved, Message, ParkingArrival, ParkingDeparture
from sim.network import read_network
from sim.outputs import prepare_out_dir
from sim.parking import read_zones
from sim.scenario import Scenario

START_S = 30.0
DELIVERY_WAIT_S = 30.0
"""How long the harness waits for the last published uplinks to arrive."""


@dataclasses.dataclass
class BaySite:
    scenario: Scenario
    zones: dict[str, int]
    """Parking area -> bays."""
    begin_s: float
    end_s: float

    @property
    def bays(self) -> list[tuple[str, int]]:
        return [(zone, bay) for zone, n in self.zones.items() for bay in range(n)]


def resolve_bays(plan: Plan, end_s: float | None = None) -> BaySite:
    """The plan's scenario and parking zones, checked (errors name the plan's field)."""
    doc = plan.doc.scenario
    scenario, _ = plan_scenario(plan)
    if scenario.parking is None:
        raise PlanError(plan.path, "the scenario has no [parking]", field="scenario.name",
                        value=doc.name, expected="a scenario with parking areas, e.g. curbside "
                        "(adapters/conformance/plans/curbside) or district")  # fmt: skip
    network = read_network(scenario.net_file)
    zones = {z.id: z.bays for z in read_zones(list(scenario.additional_files), network)}
    if not zones:
        raise PlanError(plan.path, "the scenario has no parking areas", field="scenario.name",
                        value=doc.name)  # fmt: skip
    for i, zone in enumerate(doc.zones or []):
        if zone not in zones:
            raise PlanError(plan.path, "no such parking area in the scenario",
                            field=f"scenario.zones[{i}]", value=zone,
                            expected="one of " + ", ".join(zones))  # fmt: skip
    if doc.zones:
        zones = {z: zones[z] for z in doc.zones}
    begin = scenario.begin_s if doc.begin_s is None else doc.begin_s
    end = end_s if end_s is not None else (scenario.end_s if doc.end_s is None else doc.end_s)
    if end <= begin:
        raise PlanError(plan.path, "the run ends before it begins", field="scenario.end_s",
                        value=end, expected=f"above {begin:g} s")  # fmt: skip
    return BaySite(scenario, zones, begin, end)


class ParkingEmulatorProcess:
    """The emulated sensors as a child process (see :mod:`adapters.conformance.parking_emulator`)."""

    def __init__(self, plan: Plan, site: BaySite, url: BrokerUrl, log: Path) -> None:
        device = plan.doc.device
        assert isinstance(device, LoRaWANDeviceDoc) and device.emulator is not None
        em = device.emulator
        heartbeat = em.heartbeat_s or declared_heartbeat(device)
        command = [
            sys.executable, "-m", "adapters.conformance.parking_emulator", "--broker", str(url),
            "--bays", ",".join(f"{z}:{n}" for z, n in site.zones.items()),
            "--model", device.model, "--format", device.format, "--miss", str(em.miss_share),
            "--false-per-h", str(em.false_per_h), "--false-duration", str(em.false_duration_s),
            "--latency", str(em.latency_s), "--duplicates", str(em.duplicate_share),
            "--heartbeat", str(heartbeat), "--seed", str(em.seed), "--begin", f"{site.begin_s:g}",
        ]  # fmt: skip
        self._log = log.open("w")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._log, text=True, bufsize=1)  # fmt: skip
        line = self.stdout.readline()  # printed once the broker accepted it, or it died
        if not line.startswith("connected "):
            self.close()
            raise CcsimError(f"the emulated sensors did not start: {line.strip() or 'no output'} "
                             f"(see {log})")  # fmt: skip

    @property
    def stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def feed(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")

    def finish(self) -> int:
        """End of the truth: returns how many messages it published (all acknowledged)."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        line = self.stdout.readline()
        self.close()
        if not line.startswith("published "):
            raise CcsimError(f"the emulated sensors ended badly: {line.strip() or 'no output'} "
                             f"(see {self._log.name})")  # fmt: skip
        return int(line.split()[1])

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=START_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def declared_heartbeat(device: LoRaWANDeviceDoc) -> float:
    return device.heartbeat_s or codec_for(device.model).heartbeat_s


def run_bays(
    plan: Plan, site: BaySite, workdir: Path, emulator: ParkingEmulatorProcess
) -> tuple[dict[str, Any], dict[tuple[str, int], list[tuple[float, bool]]]]:
    """The scenario with ideal bay sensors; every step the watched bays' true changes go to the
    emulator. Returns the run's summary and the truth per bay."""
    doc = plan.doc.scenario
    assert site.scenario.parking is not None
    parking = dataclasses.replace(site.scenario.parking, bay_sensor_profile="ideal",
                                  bay_sensor_source="simulated")  # fmt: skip
    scenario = dataclasses.replace(site.scenario, parking=parking)
    truth: dict[tuple[str, int], list[tuple[float, bool]]] = {bay: [] for bay in site.bays}
    pending: dict[float, list[list[Any]]] = defaultdict(list)

    def listen(message: Message) -> None:
        p = message.payload
        if isinstance(p, ParkingArrival | ParkingDeparture) and (p.zone, p.bay) in truth:
            occupied = isinstance(p, ParkingArrival)
            truth[(p.zone, p.bay)].append((message.t, occupied))
            pending[message.t].append([p.zone, p.bay, occupied])

    def step(t: float) -> None:
        for at in sorted(pending):
            emulator.feed(f'{{"t": {at}, "changes": {_json(pending[at])}}}')
        pending.clear()
        emulator.feed(f'{{"t": {t}, "changes": []}}')

    simulation = Simulation(
        scenario, create_controller(doc.controller), seed=doc.seed, workdir=workdir,
        begin_s=site.begin_s, end_s=site.end_s, pace=step,
    )  # fmt: skip
    simulation.bus.subscribe(listen)
    return simulation.run().summary, truth


def _json(changes: list[list[Any]]) -> str:
    return "[" + ",".join(f'["{z}", {b}, {"true" if o else "false"}]' for z, b, o in changes) + "]"


async def run_parking_plan(
    plan: Plan, out: Path, *, end_s: float | None = None, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run a LoRaWAN plan; returns results.json's content (also written, with the reports)."""
    started = time.perf_counter()
    device = plan.doc.device
    assert isinstance(device, LoRaWANDeviceDoc)
    site = resolve_bays(plan, end_s)
    registry = _registry(plan, device, site)
    prepare_out_dir(out)
    wanted = selected(plan.doc.cases.include, plan.doc.cases.exclude, "lorawan")
    fmt = Format(device.format)
    topic = device.topic or SUBSCRIPTIONS[fmt]
    broker: MosquittoBroker | None = None
    try:
        if plan.emulated:
            broker = MosquittoBroker()
            url = broker.start()
        else:
            url = parse_broker_url(device.address)
    except BrokerError as exc:
        raise CcsimError(f"{plan.path}: device.address: {exc}") from None
    records: list[Received] = []
    summary: dict[str, Any] | None = None
    truth: dict[tuple[str, int], list[tuple[float, bool]]] | None = None
    published: int | None = None
    try:
        client = connect(url, f"ccsim-conformance-{secrets.token_hex(4)}",
                         on_message=lambda t, p: records.append(Received(t, p)))  # fmt: skip
        async with client:
            await subscribe(client, [topic])
            delivering = asyncio.create_task(deliver(client))
            if plan.emulated:
                epoch = EPOCH_S
                emulator = ParkingEmulatorProcess(plan, site, url, out / "emulator.log")
                say(f"emulated sensors: {len(site.bays)} {device.model} on {url} ({device.format}), "
                    f"running {site.scenario.name} {site.begin_s:g}-{site.end_s:g} s")  # fmt: skip
                try:
                    summary, truth = await asyncio.to_thread(run_bays, plan, site, out / "sim", emulator)
                finally:
                    published = await asyncio.to_thread(emulator.finish)
                deadline = time.monotonic() + DELIVERY_WAIT_S
                while len(records) < published and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
            else:
                epoch = time.time()
                say(f"listening to {url} topic {topic} for {device.listen_s:g} s")
                await asyncio.sleep(device.listen_s)
            delivering.cancel()
    finally:
        if broker is not None:
            broker.stop()
    run_s = (site.end_s - site.begin_s) if truth is not None else device.listen_s
    expected = Expected(fmt, device.model, registry, declared_heartbeat(device), epoch)
    results: list[CaseResult] = protocol_cases(
        records, expected, run_s, [c for c in wanted if CASES[c].group == "protocol"]
    )
    reported, counters = _ingest(records, registry, epoch)
    acc_wanted = [c for c in wanted if CASES[c].group == "accuracy"]
    parking_doc: dict[str, Any] | None = None
    if truth is not None:
        th = plan.thresholds
        pth = ParkingThresholds(th.state_accuracy_pct, th.change_detection_pct, th.false_per_bay_h,
                                th.change_latency_p95_s, th.match_window_s)  # fmt: skip
        fig = score(truth, reported, site.begin_s, site.end_s, pth.window_s)
        results += parking_cases(fig, pth, acc_wanted)
        parking_doc = {
            **fig, "ingest": counters, "published": published, "received": len(records),
            "timelines": {f"{z}#{b}": {"truth": truth[(z, b)], "reported": reported.get((z, b), [])}
                          for z, b in site.bays},
        }  # fmt: skip
    else:
        why = ("real sensors see real cars: their accuracy needs emulated ones here (or a "
               "reference record of the bays, not supported yet)")  # fmt: skip
        results += [not_applicable(c, why) for c in acc_wanted]
    files = input_files(plan, site.scenario)
    if device.registry is not None:
        files.append((plan.path.parent / device.registry).resolve())
    doc: dict[str, Any] = {
        **verdict_head(plan, results, started),
        "device": {
            "kind": device.kind, "address": device.address, "target": f"{url} topic {topic}",
            "model": device.model, "format": device.format,
            "heartbeat_s": declared_heartbeat(device),
            "identity": identity(records, expected) if records else None,
            "emulator": device.emulator.model_dump() if device.emulator is not None else None,
        },
        "scenario": {
            "name": site.scenario.name, "signal": None, "zones": list(site.zones),
            "bays": len(site.bays), "controller": plan.doc.scenario.controller,
            "seed": plan.doc.scenario.seed, "begin_s": site.begin_s, "end_s": site.end_s,
            "vehicles_departed": summary["vehicles_departed"] if summary else None,
        },
        "thresholds": plan.thresholds.__dict__,
        "inputs": [{"path": str(p), "sha256": sha256(p)} for p in files],
        "cases": [r.to_dict() for r in results],
        "accuracy": None,
        "parking": parking_doc,
        "sample_size": {
            "miss_good": 0.05, "miss_bad": 0.10, "alpha": 0.05, "power": 0.8,
            "vehicles": vehicles_to_distinguish(0.05, 0.10), "unit": "bay state changes",
        },
        "fitted_profile": fitted_bay_profile(parking_doc) if parking_doc else None,
    }  # fmt: skip
    write_all(doc, out)
    return doc


def _registry(plan: Plan, device: LoRaWANDeviceDoc, site: BaySite) -> Registry:
    if device.registry is None:
        return bay_registry(site.bays, device.model)
    try:
        return read_registry(plan.path.parent / device.registry)
    except RegistryError as exc:
        raise PlanError(plan.path, str(exc), field="device.registry", value=device.registry) from None


def _ingest(
    records: list[Received], registry: Registry, epoch: float
) -> tuple[dict[tuple[str, int], list[tuple[float, bool]]], dict[str, int]]:
    """What the control center would make of the recording: per bay, (t s, occupied) reported."""
    ingest = Ingest(registry)
    reported: dict[tuple[str, int], list[tuple[float, bool]]] = defaultdict(list)
    for r in records:
        try:
            at = parse(r.topic, r.payload).received_at
        except UplinkError:
            at = epoch
        observed = ingest.handle(r.topic, r.payload, at)
        if isinstance(observed, BayObserved):
            reported[(observed.zone, observed.bay)].append((round(at - epoch, 3), observed.occupied))
    return dict(reported), dict(ingest.counters)
