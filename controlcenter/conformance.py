"""``ccsim conformance PLAN.toml``: a detector station under test, scored against NTCIP 1209 and
against the simulation's ground truth.

For an emulated station the plan's scenario runs (with its controller and seed) and every step
the true counts and occupancy of the watched lanes go to the emulator process over its stdin;
at the end of each sample period the simulation waits until the station has been read over
SNMP, as a central system polls it, so the comparison is in lockstep however fast SUMO runs.
Then the protocol cases run against the same station, and the accuracy cases compare what it
reported with the truth. An external station (``address = HOST:PORT``) gets the protocol cases;
its accuracy needs ground truth it can see, which only an emulated one has here.

Outputs in ``--out``: ``results.json`` (plan, device identity as read from it, sha256 of every
input, every case, every aligned interval), ``report.md`` and ``report.html`` (rendered from
results.json alone), ``emulator.log`` and the simulation's files under ``sim/``.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.conformance import accuracy, detection, report
from adapters.conformance.cases import CASES, CaseResult, Outcome, not_applicable, selected
from adapters.conformance.plan import Plan, PlanError
from adapters.conformance.profile import fitted_profile
from adapters.conformance.protocol_cases import (
    RunObservations,
    Station,
    buffer_case,
    cadence_case,
    identity_case,
    instance,
    objects_cases,
    power_case,
    sample_table_case,
    set_cases,
    status_case,
    timing_case,
    zone_table_case,
)
from adapters.conformance.reference import align_reference, interval_s, read_reference
from adapters.ntcip import ber
from adapters.ntcip.manager import Manager, ManagerError
from controlcenter.conformance_lockstep import (
    EmulatorProcess,
    Poller,
    PresenceSeries,
    Site,
    TruthPeriods,
    lockstep,
)
from sim.controllers import Controller, create_controller
from sim.errors import CcsimError
from sim.network import read_network
from sim.outputs import prepare_out_dir
from sim.scenario import Scenario, load_scenario


def plan_scenario(plan: Plan) -> tuple[Scenario, Controller]:
    """The plan's scenario and controller, loaded (errors name the plan's field)."""
    doc = plan.doc.scenario
    try:
        scenario = load_scenario(plan.scenario_spec())
    except CcsimError as exc:
        raise PlanError(plan.path, f"scenario cannot be loaded ({exc})", field="scenario.name",
                        value=doc.name) from None  # fmt: skip
    try:
        controller = create_controller(doc.controller)
    except CcsimError as exc:
        raise PlanError(plan.path, str(exc), field="scenario.controller", value=doc.controller) from None
    return scenario, controller


def resolve_site(plan: Plan, end_s: float | None = None) -> Site:
    """The plan's scenario, signal and lanes, checked against the net (errors name the plan)."""
    doc = plan.doc.scenario
    scenario, controller = plan_scenario(plan)
    if not controller.uses_detectors:
        raise PlanError(plan.path, "the controller does not read detectors, so no truth reaches the "
                        "station", field="scenario.controller", value=doc.controller,
                        expected="actuated, maxpressure or adaptive")  # fmt: skip
    network = read_network(scenario.net_file)
    signal = doc.signal
    if signal is None:
        raise PlanError(plan.path, "missing", field="scenario.signal", expected="a value")
    tls = network.traffic_lights.get(signal)
    if tls is None:
        known = "one of " + ", ".join(sorted(network.traffic_lights))
        raise PlanError(plan.path, "no such signal in the scenario's net", field="scenario.signal",
                        value=doc.signal, expected=known)  # fmt: skip
    approach = [lane.id for lane in tls.incoming_lanes(network)]
    lanes = list(doc.lanes or approach)
    for i, lane in enumerate(lanes):
        if lane not in approach:
            raise PlanError(plan.path, "not an approach lane of the signal",
                            field=f"scenario.lanes[{i}]", value=lane,
                            expected="one of " + ", ".join(approach))  # fmt: skip
    begin = scenario.begin_s if doc.begin_s is None else doc.begin_s
    end = end_s if end_s is not None else (scenario.end_s if doc.end_s is None else doc.end_s)
    if end <= begin + doc.period_s:
        raise PlanError(plan.path, "the run is shorter than one sample period", field="scenario.end_s",
                        value=end, expected=f"above {begin + doc.period_s:g} s")  # fmt: skip
    return Site(scenario, signal, lanes, begin, end)


def input_files(plan: Plan, scenario: Scenario) -> list[Path]:
    """Every file the result depends on: the plan and the scenario's files."""
    files = [plan.path]
    if scenario.source is not None:
        files.append(scenario.source)
    if scenario.sumocfg is not None:
        files.append(scenario.sumocfg)
    files += [scenario.net_file, *scenario.route_files, *scenario.additional_files]
    return list(dict.fromkeys(p.resolve() for p in files))


def verdict_head(plan: Plan, results: list[CaseResult], started: float) -> dict[str, Any]:
    """Sort ``results`` into the cases' order (in place) and give the head every results.json
    starts with: the plan, the verdict, the counts, when, and the wall time since ``started``
    (``time.perf_counter``)."""
    order = {c: i for i, c in enumerate(CASES)}
    results.sort(key=lambda r: order[r.id])
    counts = {o.value: sum(1 for r in results if r.outcome is o) for o in Outcome}
    return {
        "plan": {"name": plan.name, "description": plan.doc.description, "file": str(plan.path)},
        "verdict": "fail" if counts["fail"] else "pass",
        "counts": counts,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def run_plan(
    plan: Plan, out: Path, *, end_s: float | None = None, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run ``plan``; returns results.json's content (also written, with the reports, to ``out``)."""
    started = time.perf_counter()
    site = resolve_site(plan, end_s)
    device = plan.station
    reference = None
    if device.reference is not None:  # a bad file fails before anything starts
        reference = read_reference(plan.path.parent / device.reference, site.lanes)
    prepare_out_dir(out)  # a folder that cannot be written fails before the run
    wanted = selected(plan.doc.cases.include, plan.doc.cases.exclude)
    emulator: EmulatorProcess | None = None
    write = device.write_community
    if plan.emulated:
        write = write or "ccsim-conformance-" + secrets.token_hex(8)
        emulator = EmulatorProcess(plan, site, out / "emulator.log", write)
        target = emulator.address
        say(f"emulated station: udp {target[0]}:{target[1]} (log {out / 'emulator.log'})")
    else:
        host, _, port = device.address.rpartition(":")
        target = (host.strip("[]"), int(port))
    try:
        manager = await Manager.open(device.community.encode())
    except BaseException:
        if emulator is not None:
            emulator.close()
        raise
    station = Station(manager, target, device.community.encode(),
                      write.encode() if write else None, len(site.lanes))  # fmt: skip
    observed = RunObservations(period_s=plan.doc.scenario.period_s)
    results: list[CaseResult] = []
    summary: dict[str, Any] | None = None
    truth: TruthPeriods | None = None
    poller = Poller(station, observed)
    polled = False
    presence: PresenceSeries | None = None
    try:
        identity, id_case = await identity_case(station, "TSS-ID-1")
        if "TSS-ID-1" in wanted:
            results.append(id_case)
        if identity is not None:
            observed.period_s = await _period(station, plan.doc.scenario.period_s)
        if emulator is not None and identity is not None:
            period = observed.period_s
            truth = TruthPeriods(len(site.lanes), float(period), site.begin_s)
            if "TSS-COM-1" in wanted and (site.end_s - site.begin_s) >= 4 * period:
                poller.miss_at = 2  # the third period's poll is lost, on purpose
            if any(c in wanted for c in PRESENCE_CASES) and await _has_outputs(station):
                presence = PresenceSeries(len(site.lanes))
            say(f"running {site.scenario.name} {site.begin_s:g}-{site.end_s:g} s, signal {site.signal}, "
                f"{len(site.lanes)} zones, {period} s periods"
                + (", presence outputs read every step" if presence else ""))  # fmt: skip
            summary = await lockstep(site, plan, out / "sim", emulator, truth, poller, presence)
        elif reference is not None and identity is not None:
            say(f"polling {target[0]}:{target[1]} until its clock passes {reference.end_s:g} s, "
                f"the end of {reference.path.name} (at most {device.listen_s:g} s)")  # fmt: skip
            polled = await poll_until(poller, reference.end_s, device.listen_s,
                                      min(1.0, observed.period_s / 4))  # fmt: skip
            if not polled:
                poller.unreadable.append(f"the station's clock did not reach {reference.end_s:g} s "
                                         f"within {device.listen_s:g} s")  # fmt: skip
        results += await _protocol(
            station, observed, plan, wanted, ran=truth is not None, polled=polled or truth is not None,
            power_cycle=None if emulator is None else emulator.power_cycle,
        )  # fmt: skip
    finally:
        manager.close()
        if emulator is not None:
            emulator.close()
    th = plan.thresholds
    acc_th = accuracy.AccuracyThresholds(
        th.volume_error_pct, th.block_vehicles, th.block_s, th.block_pass_share,
        th.occupancy_error_points,
    )  # fmt: skip
    acc_wanted = [c for c in wanted if CASES[c].group == "accuracy"]
    det_th = detection.DetectionThresholds(
        th.speed_error_kmh, th.presence_miss_pct, th.false_presence_per_h, th.latency_p95_s
    )
    accuracy_doc: dict[str, Any] | None = None
    if truth is not None:
        if observed.recovered is False and observed.missed_end is not None:
            # lost by the harness's own missed poll: TSS-COM-1 says so, accuracy leaves it out
            truth.completed.pop(float(observed.missed_end), None)
        aligned = accuracy.align(site.lanes, truth.completed, poller.device)
        lanes = accuracy.lane_summaries(aligned, truth.period_s, acc_th)
        results += accuracy.accuracy_cases(lanes, acc_th, acc_wanted)
        speed = detection.speed_summary(_speed_periods(site.lanes, truth, poller))
        presence_doc = None
        if presence is not None and presence.times:
            presence_doc = _presence_doc(site, presence, th.presence_window_s)
        results += detection.detection_cases(speed, presence_doc, det_th, acc_wanted)
        accuracy_doc = {
            "period_s": truth.period_s,
            "intervals": {lane: [r.__dict__ for r in rows] for lane, rows in aligned.items()},
            "lanes": lanes,
            "conditions": accuracy.by_condition(aligned),
            "unread_periods": poller.unreadable,
            "speed": speed,
            "presence": presence_doc,
        }
    elif reference is not None and identity is not None:
        aligned, untiled = align_reference(reference, site.lanes, poller.device, observed.period_s)
        step = interval_s(reference)
        lanes = accuracy.lane_summaries(aligned, step, acc_th)
        results += accuracy.accuracy_cases(lanes, acc_th, acc_wanted)
        results += [not_applicable(c, "a reference count file has counts only: no speeds, no "
                                   "presence") for c in acc_wanted if c in DETECTION_CASES]  # fmt: skip
        accuracy_doc = {
            "period_s": step,
            "truth": "reference",
            "reference": {"file": str(reference.path), "site": reference.site,
                          "clock": reference.clock, "rows": len(reference.rows),
                          "untiled": untiled},
            "intervals": {lane: [r.__dict__ for r in rows] for lane, rows in aligned.items()},
            "lanes": lanes,
            "conditions": accuracy.by_condition(aligned),
            "unread_periods": poller.unreadable,
        }  # fmt: skip
    else:
        why = ("an external station sees traffic the simulation does not: accuracy needs an "
               "emulated station or a reference count file (device.reference)")  # fmt: skip
        results += [not_applicable(c, why) for c in acc_wanted]
    doc: dict[str, Any] = {
        **verdict_head(plan, results, started),
        "device": {
            "kind": device.kind, "address": device.address, "target": f"{target[0]}:{target[1]}",
            "identity": identity,
            "emulator": device.emulator.model_dump() if device.emulator is not None else None,
        },
        "scenario": {
            "name": site.scenario.name, "signal": site.signal, "zones": site.lanes,
            "controller": plan.doc.scenario.controller, "seed": plan.doc.scenario.seed,
            "begin_s": reference.begin_s if reference else site.begin_s,
            "end_s": reference.end_s if reference else site.end_s,
            "vehicles_departed": summary["vehicles_departed"] if summary else None,
        },
        "thresholds": plan.thresholds.__dict__,
        "inputs": [{"path": str(p), "sha256": sha256(p)} for p in input_files(plan, site.scenario)
                   + ([reference.path.resolve()] if reference else [])],
        "cases": [r.to_dict() for r in results],
        "accuracy": accuracy_doc,
        "sample_size": {
            "miss_good": 0.05, "miss_bad": 0.10, "alpha": 0.05, "power": 0.8,
            "vehicles": accuracy.vehicles_to_distinguish(0.05, 0.10),
        },
    }  # fmt: skip
    doc["fitted_profile"] = fitted_profile(doc)
    report.write_all(doc, out)
    return doc


PRESENCE_CASES = ("ACC-PRS-1", "ACC-PRS-2", "ACC-LAT-1")
DETECTION_CASES = ("ACC-SPD-1", *PRESENCE_CASES)


def _speed_periods(
    lanes: list[str], truth: TruthPeriods, poller: Poller
) -> dict[str, list[detection.SpeedPeriod]]:
    """Per lane, each period's true mean speed beside the station's (periods it was read for)."""
    out: dict[str, list[detection.SpeedPeriod]] = {lane: [] for lane in lanes}
    for end in sorted(truth.completed):
        if end not in truth.speeds:
            continue
        means, vehicles = truth.speeds[end]
        reported = poller.speeds.get(end)
        for k, lane in enumerate(lanes):
            device = reported[k] if reported is not None else None
            out[lane].append(detection.SpeedPeriod(end, means[k], vehicles[k], device))
    return out


def _presence_doc(site: Site, series: PresenceSeries, window_s: float) -> dict[str, Any]:
    truth, calls = {}, {}
    for k, lane in enumerate(site.lanes):
        truth[lane] = detection.intervals(series.times, [row[k] for row in series.truth])
        calls[lane] = detection.intervals(series.times, [row[k] for row in series.device])
    doc = detection.presence_summary(truth, calls, site.begin_s, site.end_s, window_s)
    doc["unread_steps"] = series.unread
    return doc


async def _has_outputs(station: Station) -> bool:
    """Whether the station serves presence outputs for every zone (``maxOutputNumber``)."""
    oid = instance("maxOutputNumber")
    try:
        value = ber.decode_value((await station.get([oid])).get(oid, b""))
    except ManagerError:
        return False
    return isinstance(value, int) and value >= station.zones


async def _period(station: Station, default: int) -> int:
    oid = instance("sensorZoneSamplePeriod", 1)
    value = ber.decode_value((await station.get([oid])).get(oid, b""))
    return value if isinstance(value, int) and value > 0 else default


async def poll_until(poller: Poller, end_s: float, wait_s: float, every_s: float) -> bool:
    """Poll a station on its own clock until it shows a period ending at or after ``end_s``;
    False if it did not within ``wait_s`` (wall s)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        last = await poller.sweep()
        if last is not None and last >= end_s:
            return True
        await asyncio.sleep(every_s)
    return False


async def _protocol(
    station: Station, observed: RunObservations, plan: Plan, wanted: list[str], *, ran: bool,
    polled: bool, power_cycle: Callable[[], None] | None,
) -> list[CaseResult]:  # fmt: skip
    results: list[CaseResult] = []
    if any(c in wanted for c in ("TSS-OBJ-1", "TSS-OBJ-2", "TSS-OBJ-3")):
        results += await objects_cases(station, wanted)
    if "TSS-TBL-1" in wanted:
        results.append(await zone_table_case(station))
    if "TSS-TBL-2" in wanted:
        results.append(await sample_table_case(station, observed.period_s))
    no_run = "needs a run: an emulated station, or a real one with a reference count file"
    if "TSS-TBL-3" in wanted:
        results.append(cadence_case(observed) if polled else not_applicable("TSS-TBL-3", no_run))
    if "TSS-COM-1" in wanted:
        results.append(buffer_case(observed) if ran else not_applicable("TSS-COM-1", no_run))
    if "TSS-STS-1" in wanted:
        results.append(status_case(observed) if polled else not_applicable("TSS-STS-1", no_run))
    results += await set_cases(station, wanted)
    if "TSS-TIM-1" in wanted:
        th = plan.thresholds
        results.append(await timing_case(station, th.timing_requests, th.response_p95_ms))
    if "TSS-PWR-1" in wanted:  # last: it switches the station off and on again
        results.append(await power_case(station, power_cycle))
    return results
