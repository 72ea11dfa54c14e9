"""The ``ccsim`` command: ``run`` one scenario, ``compare`` controllers over paired seeds,
``serve`` a live run with the control room, ``replay`` a finished one.

Bad input (unknown scenario or controller, malformed files, bad fields, an unwritable output
folder) ends with exit code 2 and one line on stderr naming what is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from adapters.lorawan.link import LINK_PROFILES
from controlcenter.config import DEFAULT_DB, MqttOptions, ServeConfig
from controlcenter.conformance_cmd import add_conformance_parser
from controlcenter.geo import parse_origin
from controlcenter.rules import DEFAULT_RULES, load_rules
from controlcenter.study_cmd import StudyBar, add_study_parser
from sim.check import check_network
from sim.controllers import controller_names, create_controller
from sim.errors import CcsimError
from sim.live import check_speed
from sim.network import read_network
from sim.outputs import prepare_out_dir
from sim.programs import add_programs
from sim.report import write_comparison
from sim.retime import CYCLES, plans_xml, read_demand, retime
from sim.retime import PROGRAM_ID as RETIME_PROGRAM
from sim.scenario import load_scenario
from sim.study import RunSpec, default_jobs, parse_seeds, run_to_folder
from sim.study_file import Study, plan_runs
from sim.study_runner import LocalPool, run_study

EXIT_BAD_INPUT = 2


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} {task.fields[unit]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    create_controller(args.controller)  # unknown names fail before any work
    scenario = load_scenario(args.scenario, args.variant)
    out = args.out or Path("out") / f"{scenario.name}-{args.controller}-seed{args.seed}"
    spec = RunSpec(
        scenario=args.scenario,
        controller=args.controller,
        seed=args.seed,
        out=out,
        begin_s=args.begin,
        end_s=args.end,
        gui=args.gui,
        variant=args.variant,
    )
    with _progress(console) as bar:
        begin = scenario.begin_s if args.begin is None else args.begin
        end = scenario.end_s if args.end is None else args.end
        task = bar.add_task(f"{scenario.name} / {args.controller}", total=end - begin, unit="sim s")

        def advance(done: float, total: float) -> None:
            bar.update(task, completed=done, total=total)

        summary = run_to_folder(spec, advance)
    _print_summary(console, summary)
    _warn_degraded(console, summary)
    console.print(f"wrote {out}/summary.json, timeseries.parquet, events.parquet")
    return 0


def _warn_degraded(console: Console, summary: dict[str, Any]) -> None:
    """A run in which ccsim's controller did not drive every signal says so, loudly."""
    shares = summary.get("control_share_by_tls") or {}
    degraded = {tls: share for tls, share in shares.items() if share < 0.95}
    if degraded:
        worst = ", ".join(f"{tls} {100 * share:.0f}%" for tls, share in sorted(degraded.items())[:8])
        console.print(
            f"[bold yellow]warning:[/] {len(degraded)} of {len(shares)} signals were under "
            f"{summary['controller']} control for less than 95% of the run ({worst}); "
            f"{summary['guard_refusals']} requests refused - see 'ccsim check' and the "
            "signal.fallback / guard.refused messages in events.parquet"
        )


def _cmd_check(args: argparse.Namespace, console: Console) -> int:
    scenario = load_scenario(args.scenario)
    network = read_network(scenario.net_file)
    add_programs(network, scenario.additional_files)
    reports = check_network(network, scenario.detectors, scenario.step_length_s, scenario.clearance)
    for r in reports:
        verdict = "[red]not supported[/]: " + r.unsupported if r.unsupported else "[green]ok[/]"
        console.print(f"[bold]{r.tls}[/]  {verdict}")
        console.print(f"  programs: {'; '.join(r.programs) or 'none'}")
        console.print(f"  green phases: {r.green_phases}  states: {r.states}")
        for line in (*r.features, *r.detectors):
            console.print(f"  {line}", highlight=False)
        for note in r.notes:
            console.print(f"  note: {note}", highlight=False)
    bad = [r.tls for r in reports if r.unsupported]
    console.print(
        f"{len(reports)} signals, {len(reports) - len(bad)} under ccsim control"
        + (f"; keep their own program: {', '.join(bad)}" if bad else "")
    )
    return 1 if args.strict and bad else 0


def _cmd_retime(args: argparse.Namespace, console: Console) -> int:
    scenario = load_scenario(args.scenario, args.variant)
    network = read_network(scenario.net_file)
    # Time the net's (or the city's) own programs, not an earlier retiming of them.
    base_files = [p for p in scenario.additional_files if p != scenario.signal_plans]
    add_programs(network, base_files)
    begin = scenario.begin_s if args.begin is None else args.begin
    end = scenario.end_s if args.end is None else args.end
    if end <= begin:
        raise CcsimError(f"--end {end:g} is not after --begin {begin:g}: no demand window")
    out: Path = args.out
    if out.is_dir() or not (out.parent.is_dir() or not out.parent.exists()):
        raise CcsimError(f"--out {out}: expected a file path (its folder is made if missing)")
    demand = read_demand(network, scenario.route_files, begin, end)
    if demand.vehicles <= 0:
        raise CcsimError(
            f"{scenario.name}: no routed demand between {begin:g} and {end:g} s "
            f"({demand.unrouted:.0f} trips without routes); retime needs routes with edges "
            "(run duarouter on the trips first)"
        )
    timings = retime(network, demand, scenario.step_length_s, scenario.clearance, args.cycle)
    for t in timings:
        if t.program.id != RETIME_PROGRAM:
            console.print(f"  {t.tls:<12} {t.note}", highlight=False)
            continue
        before = network.traffic_lights[t.tls].programs[0].cycle_s
        greens = " ".join(f"{g:.0f}" for g in t.greens_s)
        ratios = " ".join(f"{y:.2f}" for y in t.flow_ratios)
        console.print(
            f"  {t.tls:<12} cycle {before:g} -> {t.cycle_s:g} s  greens {greens}  y {ratios}"
            + (f"  ({t.note})" if t.note else ""),
            highlight=False,
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(plans_xml(timings, f"{scenario.name}, {begin:g}-{end:g} s")).write(
            out, encoding="utf-8", xml_declaration=True
        )
    except OSError as exc:
        raise CcsimError(f"--out {out}: cannot write it ({exc.strerror})") from None
    timed = sum(t.program.id == RETIME_PROGRAM for t in timings)
    console.print(
        f"{timed} of {len(timings)} signals timed from {demand.vehicles:.0f} vehicles"
        + (f" ({demand.unrouted:.0f} without routes not counted)" if demand.unrouted else "")
        + f"; written to {out}"
    )
    console.print(
        f'use it with [signals] plans = "{out}" in the scenario.toml', highlight=False, markup=False
    )
    return 0


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    shown = (
        "vehicles_departed", "vehicles_arrived", "mean_delay_s", "mean_travel_time_s",
        "mean_stops", "throughput_veh_h", "pedestrian_mean_delay_s", "bus_mean_delay_s",
        "co2_kg", "guard_violations", "guard_refusals", "control_share_min", "realtime_factor",
    )  # fmt: skip
    for key in shown:
        value = summary[key]
        text = "n/a" if value is None else (f"{value:.2f}" if isinstance(value, float) else value)
        console.print(f"  {key:<24} {text}")


def _cmd_compare(args: argparse.Namespace, console: Console) -> int:
    """A small study: one scenario, its controllers x variants x seeds, run folders by label."""
    controllers = [c.strip() for c in args.controllers.split(",") if c.strip()]
    if not controllers:
        raise CcsimError("--controllers: expected a comma-separated list of controller names")
    seeds = parse_seeds(args.seeds)
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    scenario = load_scenario(args.scenario)
    out = prepare_out_dir(args.out or Path("out") / f"compare-{scenario.name}")
    runs = plan_runs([args.scenario], controllers, variants, [1.0], seeds, begin_s=args.begin,
                     end_s=args.end, runs_dir=out / "runs", keyed_folders=False)  # fmt: skip
    study = Study(name=f"{scenario.name}: {len(runs)} runs", runs=tuple(runs), kpis=None,
                  comparisons=())  # fmt: skip
    with LocalPool(args.jobs) as pool, StudyBar(console, study.name) as bar:
        outcome = run_study(study, out, pool, bar)
    if outcome.failed:
        run, error = outcome.failed[0]
        raise CcsimError(f"{len(outcome.failed)} of {len(runs)} runs failed, the first: {error} "
                         f"(details in {run.folder}/failed.json)")  # fmt: skip
    rows = [
        {"group": run.group, **json.loads((run.folder / "summary.json").read_text(encoding="utf-8"))}
        for run in runs
    ]
    compared = ", ".join(dict.fromkeys(r["group"] for r in rows))
    title = f"{scenario.name}: {compared} over seeds {args.seeds}"
    console.print(write_comparison(out, rows, title), markup=False, highlight=False)
    console.print(f"wrote {out}/comparison.csv, comparison.md, comparison.png")
    return 0


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected a number or max") from None
    try:
        check_speed(speed)
    except CcsimError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return speed


def _geo_origin(text: str) -> tuple[float, float]:
    try:
        return parse_origin(text)
    except CcsimError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_serve(args: argparse.Namespace, console: Console) -> int:
    from controlcenter.ngsild.push import check_broker_url
    from controlcenter.ntcip import parse_address
    from controlcenter.ntcip_hil import parse_controller
    from controlcenter.ntcip_stations import parse_station
    from controlcenter.server import serve  # the web stack loads only for this command

    create_controller(args.controller)
    config = ServeConfig(
        scenario=args.scenario,
        controller=args.controller,
        variant=args.variant,
        seed=args.seed,
        speed=args.speed,
        begin_s=args.begin,
        end_s=args.end,
        host=args.host,
        port=args.port,
        db_url=args.db,
        out=args.out,
        feed_rate_hz=args.rate,
        send_timeout_s=args.send_timeout,
        rules=load_rules(args.alarms) if args.alarms else DEFAULT_RULES,
        ntcip=parse_address(args.ntcip) if args.ntcip else None,
        ntcip_stations=tuple(parse_station(text) for text in args.ntcip_station),
        ntcip_controllers=tuple(parse_controller(text) for text in args.ntcip_controller),
        mqtt=_mqtt_options(args),
        ngsi_ld=check_broker_url(args.ngsi_ld) if args.ngsi_ld else None,
        ngsi_ld_period_s=args.ngsi_ld_period,
        geo_origin=args.geo_origin,
        sta_mqtt_select=_sta_mqtt_select(args),
    )
    return serve(config)


def _sta_mqtt_select(args: argparse.Namespace) -> tuple[str, ...]:
    """``--sta-mqtt-select TOPIC``s, checked before anything starts."""
    from controlcenter.sensorthings.receive import parse_select_topic
    from controlcenter.sensorthings.store import SensorThingsStore

    topics = tuple(args.sta_mqtt_select)
    if topics and args.mqtt is None:
        raise CcsimError(f"--sta-mqtt-select {topics[0]}: needs --mqtt (a broker to publish to)")
    for topic in topics:
        try:
            parse_select_topic(topic, SensorThingsStore())
        except ValueError as exc:
            raise CcsimError(f"--sta-mqtt-select: {exc}") from None
    return topics


def _cmd_replay(args: argparse.Namespace, console: Console) -> int:
    from controlcenter.replay import load_run, replay_config
    from controlcenter.server import log_line, replay  # the web stack loads only for this command

    run = load_run(args.run_dir)
    config = replay_config(
        run,
        scenario=args.scenario,
        variant=args.variant,
        say=log_line,
        speed=args.speed,
        host=args.host,
        port=args.port,
        db_url=args.db,
        feed_rate_hz=args.rate,
        send_timeout_s=args.send_timeout,
    )
    return replay(run, config)


def _mqtt_options(args: argparse.Namespace) -> MqttOptions | None:
    if args.mqtt is None:
        return None
    return MqttOptions(
        url=None if args.mqtt == _MQTT_CHILD else args.mqtt,
        ca_file=args.mqtt_ca,
        fmt=args.lorawan_format,
        link=args.lorawan_link,
        heartbeat_s=args.lorawan_heartbeat,
        registry=args.lorawan_registry,
    )


_MQTT_CHILD = "child"


def _mqtt_arguments(srv: argparse.ArgumentParser) -> None:
    """``--mqtt [URL]``: the bay sensors as LoRaWAN devices through an MQTT broker."""
    group = srv.add_argument_group("LoRaWAN bay sensors over MQTT")
    group.add_argument("--mqtt", nargs="?", const=_MQTT_CHILD, default=None, metavar="URL",
                       help="publish the bay sensors' uplinks and ingest them through a broker: "
                       "alone, a Mosquitto child on a free loopback port; or "
                       "mqtt[s]://[user:password@]host[:port] of an existing one")  # fmt: skip
    group.add_argument("--mqtt-ca", type=Path, default=None, help="CA file for mqtts:// (TLS)")
    group.add_argument("--lorawan-format", choices=("tts", "chirpstack"), default="tts",
                       help="network server JSON: The Things Stack v3 or ChirpStack v4")  # fmt: skip
    group.add_argument(
        "--lorawan-link",
        choices=tuple(LINK_PROFILES),
        default="ideal",
        help="radio link faults: lost, duplicate, late uplinks, dead batteries",
    )
    group.add_argument(
        "--lorawan-heartbeat",
        type=_positive,
        default=None,
        help="heartbeat of every simulated sensor, s (default: the vendor's)",
    )
    group.add_argument("--lorawan-registry", type=Path, default=None,
                       help="real sensors: their registry CSV (device_id,dev_eui,model,zone,bay); "
                       "nothing simulated is published")  # fmt: skip
    group.add_argument("--sta-mqtt-select", action="append", default=[], metavar="TOPIC",
                       help="also serve this SensorThings $select topic over MQTT, e.g. "
                       "'v1.1/Datastreams(1)/Observations?$select=result,phenomenonTime' "
                       "(repeatable; subscribe to exactly this string)")  # fmt: skip


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}': expected a number above 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccsim", description="Smart traffic and safety control-center simulator on SUMO."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    controllers = ", ".join(controller_names())

    run = sub.add_parser("run", help="run one scenario with one controller")
    run.add_argument("scenario", help="bundled name, scenario folder or .sumocfg file")
    run.add_argument("--controller", default="fixed", help=f"one of: {controllers}")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--begin", type=float, default=None, help="simulation begin (s)")
    run.add_argument("--end", type=float, default=None, help="simulation end (s)")
    run.add_argument("--out", type=Path, default=None, help="output folder")
    run.add_argument("--gui", action="store_true", help="watch it in sumo-gui (through TraCI)")
    run.add_argument("--variant", default=None, help="a scenario variant (name or key=value)")
    run.set_defaults(handler=_cmd_run)

    cmp = sub.add_parser("compare", help="compare controllers over paired seeds")
    cmp.add_argument("scenario", help="bundled name, scenario folder or .sumocfg file")
    cmp.add_argument("--controllers", required=True, help=f"comma-separated: {controllers}")
    cmp.add_argument("--seeds", default="1-5", help="e.g. 1-5 or 1,3,7")
    cmp.add_argument(
        "--variants",
        default=None,
        help="comma-separated scenario variants: [variants.<name>] of scenario.toml, or key=value",
    )
    cmp.add_argument("--begin", type=float, default=None)
    cmp.add_argument("--end", type=float, default=None)
    cmp.add_argument("--out", type=Path, default=None)
    cmp.add_argument("--jobs", type=int, default=default_jobs(), help="parallel runs")
    cmp.set_defaults(handler=_cmd_compare)

    chk = sub.add_parser("check", help="what the controllers can and cannot do on a scenario's net")
    chk.add_argument("scenario", help="bundled name, folder with scenario.toml, or a .sumocfg")
    chk.add_argument("--strict", action="store_true", help="exit 1 if any signal is not supported")
    chk.set_defaults(handler=_cmd_check)

    ret = sub.add_parser(
        "retime", help="Webster-time the signals' fixed programs from the scenario's demand"
    )
    ret.add_argument("scenario", help="bundled name, folder with scenario.toml, or a .sumocfg")
    ret.add_argument("--out", type=Path, required=True, help="the additional file to write")
    ret.add_argument("--cycle", choices=CYCLES, default="own",
                     help="own: each signal its Webster cycle; keep: each program's cycle and "
                     "offset (coordinated arterials), greens re-split")  # fmt: skip
    ret.add_argument("--variant", default=None, help="a scenario variant (name or key=value)")
    ret.add_argument("--begin", type=float, default=None, help="demand window begin (s)")
    ret.add_argument("--end", type=float, default=None, help="demand window end (s)")
    ret.set_defaults(handler=_cmd_retime)

    srv = sub.add_parser("serve", help="run a scenario live, with the control room (REST + websocket)")
    srv.add_argument("scenario", help="bundled name, scenario folder or .sumocfg file")
    srv.add_argument("--controller", default="adaptive", help=f"one of: {controllers}")
    srv.add_argument("--variant", default=None, help="a scenario variant (name or key=value)")
    srv.add_argument("--seed", type=int, default=1)
    srv.add_argument("--speed", type=_speed, default=1.0,
                     help="simulated seconds per wall second, or max (default 1)")  # fmt: skip
    srv.add_argument("--begin", type=float, default=None, help="simulation begin (s)")
    srv.add_argument("--end", type=float, default=None, help="simulation end (s)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000, help="0: any free port")
    srv.add_argument("--db", default=DEFAULT_DB, help=f"store URL (default {DEFAULT_DB})")
    srv.add_argument("--out", type=Path, default=None, help="run outputs (default out/serve-<scenario>)")
    srv.add_argument("--rate", type=_positive, default=2.0, help="feed frames per second (default 2)")
    srv.add_argument("--send-timeout", type=_positive, default=2.0,
                     help="drop a feed client that cannot take a frame for this long, s")  # fmt: skip
    srv.add_argument(
        "--alarms", type=Path, default=None, help="alarm rules (TOML) instead of the defaults"
    )
    srv.add_argument(
        "--ntcip", default=None, metavar="HOST:PORT",
        help="every signal an NTCIP 1202/1209 SNMP agent, one UDP port each from PORT",
    )  # fmt: skip
    srv.add_argument(
        "--ntcip-station", action="append", default=[], metavar="TLS=HOST:PORT",
        help="an external NTCIP 1209 detector station on signal TLS's approaches (repeatable)",
    )  # fmt: skip
    srv.add_argument(
        "--ntcip-controller", action="append", default=[], metavar="TLS=HOST:PORT",
        help="an external NTCIP 1202 signal controller drives signal TLS: hardware in the loop "
        "(repeatable)",
    )  # fmt: skip
    srv.add_argument(
        "--geo-origin", type=_geo_origin, default=None, metavar="LON,LAT",
        help="for nets without a geo-projection: where net point (0, 0) lies, in degrees "
        "(NGSI-LD and SensorThings locations), e.g. --geo-origin=-77.03,-12.12; default: the "
        "scenario's [geo] origin",
    )  # fmt: skip
    _mqtt_arguments(srv)
    ngsi = srv.add_argument_group("NGSI-LD (the entities are always at /ngsi-ld/v1/entities)")
    ngsi.add_argument("--ngsi-ld", default=None, metavar="URL",
                      help="also push the entities to this NGSI-LD broker (http://HOST:PORT): "
                      "batched upserts of what changed")  # fmt: skip
    ngsi.add_argument("--ngsi-ld-period", type=_positive, default=5.0,
                      help="push every this many seconds (default 5)")  # fmt: skip
    srv.set_defaults(handler=_cmd_serve)
    rep = sub.add_parser(
        "replay", help="the control room of a finished run, from its events.parquet (seek, pause, speed)"
    )
    rep.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                     help="a run's output folder (ccsim run --out; serve's --out)")  # fmt: skip
    rep.add_argument("--scenario", default=None,
                     help="where the run's scenario is (bundled name, folder or .sumocfg) if its "
                     "name in the events is not a bundled one")  # fmt: skip
    rep.add_argument("--variant", default=None,
                     help="the scenario variant to show instead of the one the run recorded "
                     "(name or key=value; '' for none)")  # fmt: skip
    rep.add_argument("--speed", type=_speed, default=1.0,
                     help="simulated seconds per wall second, or max (default 1)")  # fmt: skip
    rep.add_argument("--host", default="127.0.0.1")
    rep.add_argument("--port", type=int, default=8000, help="0: any free port")
    rep.add_argument("--db", default=DEFAULT_DB, help=f"store URL (default {DEFAULT_DB})")
    rep.add_argument("--rate", type=_positive, default=2.0, help="feed frames per second (default 2)")
    rep.add_argument("--send-timeout", type=_positive, default=2.0,
                     help="drop a feed client that cannot take a frame for this long, s")  # fmt: skip
    rep.set_defaults(handler=_cmd_replay)
    add_study_parser(sub)
    add_conformance_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    try:
        code: int = args.handler(args, console)
    except CcsimError as exc:
        print(f"ccsim: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return code


if __name__ == "__main__":
    sys.exit(main())
