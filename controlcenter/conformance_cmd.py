"""``ccsim conformance PLAN.toml | NAME`` and ``ccsim conformance --list``: exit 0 when every case
passes (or is not applicable), 1 when any fails, 2 for a bad plan (the CLI's bad-input code)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.conformance.plan import bundled_plans, find_plan, load_plan
from sim.errors import CcsimError

STYLE = {"pass": "green", "fail": "bold red", "not-applicable": "dim"}


def _cmd_conformance(args: argparse.Namespace, console: Console) -> int:
    # Loaded here, not with the CLI: statistics, plots and emulators cost every other command
    # (``ccsim run`` included) over a second of start-up and ~100 MB.
    from adapters.conformance.report import write_all
    from controlcenter.conformance import run_plan
    from controlcenter.conformance_controller import run_controller_plan
    from controlcenter.conformance_impact import price
    from controlcenter.conformance_parking import run_parking_plan
    from controlcenter.conformance_parking_impact import price_parking

    if args.list:
        for name, path in bundled_plans().items():
            plan = load_plan(path)
            console.print(f"[bold]{name}[/]  {plan.doc.description}", highlight=False)
        return 0
    if args.plan is None:
        raise CcsimError("ccsim conformance: name a PLAN.toml or a bundled plan (see --list)")
    plan = load_plan(find_plan(args.plan))
    out = args.out or Path("out") / f"conformance-{plan.name}"
    runners = {"ntcip1209": run_plan, "lorawan": run_parking_plan, "ntcip1202": run_controller_plan}
    run = runners[plan.kind]
    results = asyncio.run(
        run(plan, out, end_s=args.end, say=lambda s: console.print(s, highlight=False))
    )
    _print(console, results)
    if args.impact:
        pricer = price_parking if plan.kind == "lorawan" else price
        results["impact"] = pricer(
            plan, results, out, jobs=args.jobs, say=lambda s: console.print(s, highlight=False)
        )
        write_all(results, out)
        _print_impact(console, results["impact"])
    console.print(f"wrote {out}/results.json, report.md, report.html", highlight=False)
    return 1 if results["verdict"] == "fail" else 0


def _print(console: Console, results: dict[str, Any]) -> None:
    table = Table(title=f"{results['plan']['name']}: {results['verdict'].upper()}")
    for column in ("case", "outcome", "evidence"):
        table.add_column(column, overflow="fold")
    for case in results["cases"]:
        outcome = case["outcome"]
        table.add_row(
            case["id"],
            f"[{STYLE[outcome]}]{outcome}[/]",
            case["evidence"][0] if case["evidence"] else "",
        )
    console.print(table)
    c = results["counts"]
    console.print(
        f"{c['pass']} pass, {c['fail']} fail, {c['not-applicable']} not applicable "
        f"in {results['wall_time_s']:g} s",
        highlight=False,
    )


def _print_impact(console: Console, impact: dict[str, Any]) -> None:
    if impact.get("kind") == "parking":
        e, s = impact["public_space_efficiency"], impact["parking_search_time_mean_s"]
        y = impact["cruising_vehicle_hours_per_year"]
        console.print(
            f"impact ({impact['controller']}, {impact['variant']}, {len(impact['seeds'])} paired "
            f"seeds): public-space efficiency {e['ideal']:.3f} with ideal bay sensors, "
            f"{e['difference']['mean']:+.4f} ({_interval(e['difference'], '.4f')}) with the "
            f"measured ones; parking search {s['difference']['mean']:+.1f} s per parker "
            f"({_interval(s['difference'], '.1f')}), {y['mean']:+.0f} vehicle-hours of cruising "
            f"a year ({_interval(y, '.0f')}) at {impact['hours_per_year']:g} h/year",
            highlight=False,
        )
        return
    d = impact["mean_delay_s"]["difference"]
    y = impact["vehicle_hours_per_year"]
    console.print(
        f"impact ({impact['controller']}, {len(impact['seeds'])} paired seeds): mean delay "
        f"{impact['mean_delay_s']['ideal']:.2f} s with ideal detectors, {d['mean']:+.2f} s "
        f"({_interval(d, '.2f')}) with the measured ones; {y['mean']:+.0f} vehicle-hours a year "
        f"({_interval(y, '.0f')}) at {impact['hours_per_year']:g} h/year",
        highlight=False,
    )


def _interval(e: dict[str, Any], spec: str) -> str:
    if e["low"] is None:
        return "one seed: no interval"
    return f"95 % CI {e['low']:{spec}} .. {e['high']:{spec}}"


def add_conformance_parser(sub: Any) -> None:
    con = sub.add_parser(
        "conformance",
        help="score a device under test (NTCIP 1209 station, NTCIP 1202 controller, LoRaWAN "
        "parking sensors) against its standard and the ground truth",
    )
    con.add_argument("plan", nargs="?", default=None, help="PLAN.toml, or a bundled plan's name")
    con.add_argument("--list", action="store_true", help="list the bundled plans")
    con.add_argument(
        "--out", type=Path, default=None, help="output folder (default out/conformance-<plan>)"
    )
    con.add_argument(
        "--end", type=float, default=None, help="end the run here (s) instead of the plan's end"
    )
    con.add_argument(
        "--impact", action="store_true",
        help="then price the measured accuracy (detectors: delay; parking sensors: public-space "
        "efficiency and cruising): the plan's [impact] runs, paired seeds",
    )  # fmt: skip
    con.add_argument("--jobs", type=int, default=2, help="parallel runs for --impact (default 2)")
    con.set_defaults(handler=_cmd_conformance)
