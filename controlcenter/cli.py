"""The ``ccsim`` command: ``run`` one scenario, ``compare`` controllers over paired seeds,
``serve`` a live run with the control room.

Bad input (unknown scenario or controller, malformed files, bad fields, an unwritable output
folder) ends with exit code 2 and one line on stderr naming what is wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from adapters.lorawan.link import LINK_PROFILES
from controlcenter.config import DEFAULT_DB, MqttOptions, ServeConfig
from controlcenter.rules import DEFAULT_RULES, load_rules
from sim.controllers import controller_names, create_controller
from sim.errors import CcsimError
from sim.live import check_speed
from sim.outputs import prepare_out_dir
from sim.report import write_comparison
from sim.scenario import load_scenario
from sim.study import RunSpec, check_window, default_jobs, parse_seeds, run_many, run_to_folder

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
    console.print(f"wrote {out}/summary.json, timeseries.parquet, events.parquet")
    return 0


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    shown = (
        "vehicles_departed", "vehicles_arrived", "mean_delay_s", "mean_travel_time_s",
        "mean_stops", "throughput_veh_h", "pedestrian_mean_delay_s", "bus_mean_delay_s",
        "co2_kg", "guard_violations", "realtime_factor",
    )  # fmt: skip
    for key in shown:
        value = summary[key]
        text = "n/a" if value is None else (f"{value:.2f}" if isinstance(value, float) else value)
        console.print(f"  {key:<24} {text}")


def _cmd_compare(args: argparse.Namespace, console: Console) -> int:
    controllers = [c.strip() for c in args.controllers.split(",") if c.strip()]
    if not controllers:
        raise CcsimError("--controllers: expected a comma-separated list of controller names")
    for name in controllers:
        create_controller(name)
    seeds = parse_seeds(args.seeds)
    variants: list[str | None] = (
        [v.strip() for v in args.variants.split(",")] if args.variants else [None]
    )
    scenario = load_scenario(args.scenario)
    for variant in variants:
        load_scenario(args.scenario, variant)  # a bad variant fails before any run
    check_window(scenario, args.begin, args.end)
    out = prepare_out_dir(args.out or Path("out") / f"compare-{scenario.name}")

    def label(controller: str, variant: str | None) -> str:
        if variant is None:
            return controller
        return variant if len(controllers) == 1 else f"{controller} {variant}"

    specs = [
        RunSpec(
            args.scenario, c, s, out / "runs" / _folder(label(c, v), s), args.begin, args.end, variant=v
        )
        for c in controllers
        for v in variants
        for s in seeds
    ]
    with _progress(console) as bar:
        task = bar.add_task(f"{scenario.name}: {len(specs)} runs", total=len(specs), unit="runs")
        summaries = run_many(specs, jobs=args.jobs, on_done=lambda _s, _r: bar.advance(task))
    rows = [
        {"group": label(spec.controller, spec.variant), **summary}
        for spec, summary in zip(specs, summaries, strict=True)
    ]
    compared = ", ".join(dict.fromkeys(r["group"] for r in rows))
    title = f"{scenario.name}: {compared} over seeds {args.seeds}"
    console.print(write_comparison(out, rows, title), markup=False, highlight=False)
    console.print(f"wrote {out}/comparison.csv, comparison.md, comparison.png")
    return 0


def _folder(label: str, seed: int) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return f"{safe}-seed{seed}"


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


def _cmd_serve(args: argparse.Namespace, console: Console) -> int:
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
        mqtt=_mqtt_options(args),
    )
    return serve(config)


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
    _mqtt_arguments(srv)
    srv.set_defaults(handler=_cmd_serve)
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
