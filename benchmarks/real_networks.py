"""Real networks: every controller on the real districts and the signal-variant matrix.

    python benchmarks/real_networks.py                 # 11 networks x 6 controllers x 3 seeds
    python benchmarks/real_networks.py --networks hamburg-tavf,right-on-red --seeds 1 --end 600

The set is every folder of ``scenarios/realnets/`` (districts cut from public scenarios of real
cities) and ``scenarios/tlsvariants/`` (generated nets, one signalling feature each) holding a
``scenario.sumocfg``. Each run goes through ``sim.study.run_many`` into
``out/bench/real_networks/runs/<network>/<controller>-seed<N>``; a run that fails is reported
as failed, the others go on. The tables (mean delay and its ratios to ``sumo-actuated`` and to
``fixed``, the issue's targets, guard violations and refusals) are printed and written into
benchmarks/RESULTS.md (section ``real-networks``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import statistics
import sys
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The runs must use the ccsim of this checkout, not whichever one the venv's editable install
# points to (the spawned workers inherit sys.path).
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow.parquet as pq  # noqa: E402
from results_md import replace_section  # noqa: E402

from sim.study import RunSpec, default_jobs, parse_seeds, run_many  # noqa: E402

CONTROLLERS = "fixed,webster,sumo-actuated,actuated,maxpressure,adaptive"
OURS = ("webster", "actuated", "maxpressure", "adaptive")  # the controllers ccsim itself runs
SETS = {"real": ROOT / "scenarios" / "realnets", "variant": ROOT / "scenarios" / "tlsvariants"}
TARGET_VS_PEER = 1.0  # adaptive / sumo-actuated on every network
TARGET_GEOMEAN = 0.8  # geometric mean of adaptive / sumo-actuated over the networks
TARGET_VS_FIXED = 1.10  # no ccsim controller worse than this x fixed
WATCHED = ("control", "degraded", "fallback")  # summary keys about signals ccsim cannot drive


@dataclass(frozen=True)
class Network:
    name: str
    kind: str  # "real" or "variant"
    sumocfg: Path
    signals: int


def find_networks() -> list[Network]:
    """Every network of the set, real districts first."""
    found: list[Network] = []
    for kind, folder in SETS.items():
        for cfg in sorted(folder.glob("*/scenario.sumocfg")):
            nets = sorted(cfg.parent.glob("*.net.xml"))
            signals = sum(n.read_text(encoding="utf-8").count("<tlLogic ") for n in nets[:1])
            found.append(Network(cfg.parent.name, kind, cfg, signals))
    return found


def guard_events(run_dir: Path) -> tuple[int, Counter[str]]:
    """Refusals in a run's event stream, and the refusal reasons by kind (the reason up to its
    first colon or number), from ``events.parquet``."""
    path = run_dir / "events.parquet"
    if not path.is_file():
        return 0, Counter()
    table = pq.read_table(path, columns=["kind", "payload"])
    kinds = table.column("kind").to_pylist()
    payloads = table.column("payload").to_pylist()
    reasons: Counter[str] = Counter()
    refusals = 0
    for kind, payload in zip(kinds, payloads, strict=True):
        if kind == "guard.refused":
            refusals += 1
            reason = str(json.loads(payload).get("reason", ""))
            reasons[reason.split(":")[0].split(" phase ")[0].strip()] += 1
    return refusals, reasons


def run_all(specs: list[RunSpec], jobs: int, *, resume: bool) -> list[dict[str, Any] | str]:
    """Each spec through ``run_many`` on its own, ``jobs`` at a time, so one failing run is
    recorded (as its error) and does not stop the others. ``resume``: a run whose folder already
    holds a summary.json (of the same end time) is not run again."""

    def one(spec: RunSpec) -> dict[str, Any] | str:
        done = spec.out / "summary.json"
        if resume and done.is_file():
            summary: dict[str, Any] = json.loads(done.read_text(encoding="utf-8"))
            if summary.get("end_s") == (spec.end_s or summary.get("end_s")):
                return {**summary, "resumed": True}
        try:
            summary = run_many([spec], jobs=1)[0]
        except Exception as exc:  # a run that fails is a finding, reported in the table
            lines = traceback.format_exception_only(type(exc), exc)
            return "".join(lines).strip().splitlines()[-1]
        print(
            f"  {spec.out.parent.name} {spec.controller} seed {spec.seed}: "
            f"{summary['mean_delay_s']:.1f} s",
            flush=True,
        )
        return summary

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, specs))


def as_number(value: Any) -> float | None:
    """A summary figure as a number: itself, or the length of a list (signals degraded...)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple):
        return float(len(value))
    return None


def span(values: list[float]) -> str:
    """``0.93`` or, when the seeds differ, ``0.91-0.97``."""
    low, high = min(values), max(values)
    return f"{low:.3g}" if low == high else f"{low:.3g}-{high:.3g}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def tables(
    networks: list[Network], controllers: list[str], rows: list[dict[str, Any]]
) -> tuple[str, list[str]]:
    """The delay table with the targets, the guard table, and the list of failed runs."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault((row["network"], row["controller"]), []).append(row)

    def delay(net: str, ctrl: str) -> float | None:
        runs = by.get((net, ctrl), [])
        if not runs or any("error" in r for r in runs):
            return None
        return statistics.fmean(float(r["mean_delay_s"]) for r in runs)

    head = [
        "network",
        "kind",
        "signals",
        *controllers,
        "adaptive <= 1.0x sumo-act",
        f"ccsim <= {TARGET_VS_FIXED:.2f}x fixed",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ratios: dict[str, list[float]] = {"real": [], "variant": []}
    met_peer = met_fixed = 0
    for net in networks:
        fixed, peer = delay(net.name, "fixed"), delay(net.name, "sumo-actuated")
        cells = [net.name, net.kind, str(net.signals)]
        for ctrl in controllers:
            d = delay(net.name, ctrl)
            if d is None:
                cells.append("FAILED" if (net.name, ctrl) in by else "-")
                continue
            vs_peer = d / peer if peer else None
            vs_fixed = d / fixed if fixed else None
            cells.append(f"{d:.1f} ({fmt_ratio(vs_peer)} / {fmt_ratio(vs_fixed)})")
        adaptive = delay(net.name, "adaptive")
        if adaptive is not None and peer:
            ratio = adaptive / peer
            ratios[net.kind].append(ratio)
            ok = ratio <= TARGET_VS_PEER
            met_peer += ok
            cells.append(f"{'yes' if ok else 'NO'} ({ratio:.2f})")
        else:
            cells.append("-")
        if fixed:
            worse = [
                c
                for c in OURS
                if c in controllers and (delay(net.name, c) or math.inf) > TARGET_VS_FIXED * fixed
            ]
            met_fixed += not worse
            cells.append("yes" if not worse else "NO: " + ", ".join(worse))
        else:
            cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    everything = ratios["real"] + ratios["variant"]

    def geomean(values: list[float]) -> str:
        if not values:
            return "-"
        g = math.exp(statistics.fmean(math.log(v) for v in values))
        verdict = "meets" if g <= TARGET_GEOMEAN else "misses"
        return f"{g:.2f} ({verdict} <= {TARGET_GEOMEAN})"

    summary = [
        f"- geometric mean of adaptive / sumo-actuated: all {len(everything)} networks "
        f"{geomean(everything)}; real districts {geomean(ratios['real'])}; "
        f"variants {geomean(ratios['variant'])}",
        f"- adaptive <= 1.0x sumo-actuated on {met_peer} of {len(everything)} networks; "
        f"no ccsim controller above {TARGET_VS_FIXED:.2f}x fixed on {met_fixed} of "
        f"{len(networks)}",
    ]
    delay_table = "\n".join([*summary, "", *lines])

    guard_head = ["network", *controllers]
    guard = ["| " + " | ".join(guard_head) + " |", "|" + "---|" * len(guard_head)]
    extra_keys = sorted(
        {k for r in rows for k in r if k.startswith("guard_") or any(w in k for w in WATCHED)}
        - {"guard_violations", "guard_refusals", "controller"}
    )
    failures: list[str] = []
    reasons_by_net: dict[str, Counter[str]] = {}
    for net in networks:
        cells = [net.name]
        for ctrl in controllers:
            runs = by.get((net.name, ctrl), [])
            failures += [
                f"{net.name} {ctrl} seed {r['seed']}: {r['error']}" for r in runs if "error" in r
            ]
            ok = [r for r in runs if "error" not in r]
            if not ok:
                cells.append("FAILED" if runs else "-")
                continue
            violations = sum(int(r["guard_violations"]) for r in ok)
            refusals = sum(int(r["guard_refusals"]) for r in ok)
            extra = "".join(
                f", {k} {span(numbers)}"
                for k in extra_keys
                if (numbers := [n for r in ok if (n := as_number(r.get(k))) is not None])
            )
            cells.append(f"{violations} / {refusals}{extra}")
            for r in ok:
                reasons_by_net.setdefault(net.name, Counter()).update(r["refusal_reasons"])
        guard.append("| " + " | ".join(cells) + " |")
    reasons = [
        f"- {name}: " + "; ".join(f"{reason} ({count})" for reason, count in c.most_common(4))
        for name, c in reasons_by_net.items()
        if c
    ]
    guard_text = "\n".join(guard)
    if reasons:
        guard_text += "\n\nMost frequent refusal reasons, all controllers and seeds:\n\n" + "\n".join(
            reasons
        )
    title = "Guard violations / refusals, summed over the seeds (other guard and control figures of "
    title += "summary.json: their range over the seeds):"
    return delay_table + f"\n\n{title}\n\n" + (guard_text), failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default=None, help="comma list (default: the whole set)")
    parser.add_argument("--controllers", default=CONTROLLERS)
    parser.add_argument("--seeds", default="1-3")
    parser.add_argument("--end", type=float, default=None, help="end of each run, s (default 3600)")
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--out", type=Path, default=Path("out/bench/real_networks"))
    parser.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md alone")
    parser.add_argument(
        "--resume", action="store_true", help="keep the runs already done in --out (same code!)"
    )
    args = parser.parse_args()

    networks = find_networks()
    if args.networks:
        wanted = args.networks.split(",")
        unknown = sorted(set(wanted) - {n.name for n in networks})
        if unknown:
            known = ", ".join(n.name for n in networks)
            parser.error(f"--networks: unknown {', '.join(unknown)}; expected some of: {known}")
        networks = [n for n in networks if n.name in wanted]
    controllers = args.controllers.split(",")
    seeds = parse_seeds(args.seeds)
    specs = [
        RunSpec(str(net.sumocfg), c, s, args.out / "runs" / net.name / f"{c}-seed{s}", end_s=args.end)
        for net in networks
        for c in controllers
        for s in seeds
    ]
    print(
        f"{len(specs)} runs ({len(networks)} networks x {len(controllers)} controllers x "
        f"{len(seeds)} seeds) on {args.jobs} processes",
        flush=True,
    )
    start = time.perf_counter()
    results = run_all(specs, args.jobs, resume=args.resume)
    minutes = (time.perf_counter() - start) / 60
    rows: list[dict[str, Any]] = []
    for spec, result in zip(specs, results, strict=True):
        row: dict[str, Any] = {
            "network": spec.out.parent.name,
            "controller": spec.controller,
            "seed": spec.seed,
        }
        if isinstance(result, str):
            row["error"] = result
        else:
            refusals, reasons = guard_events(spec.out)
            row.update(result)
            row.setdefault("guard_refusals", refusals)
            row["refusal_reasons"] = reasons
        rows.append(row)
    text, failures = tables(networks, controllers, rows)
    walls = [float(r["wall_time_s"]) for r in rows if "wall_time_s" in r]
    resumed = sum(1 for r in rows if r.get("resumed"))
    kept = f" ({resumed} of them kept from an earlier run with --resume)" if resumed else ""
    failed = "\n".join(f"- {f}" for f in failures) if failures else "- none"
    end = f"{args.end:g} s" if args.end else "one hour"
    command = f"python benchmarks/real_networks.py --seeds {args.seeds}"
    if args.networks:
        command += f" --networks {args.networks}"
    if args.controllers != CONTROLLERS:
        command += f" --controllers {args.controllers}"
    if args.end:
        command += f" --end {args.end:g}"
    body = f"""## Real networks

`{command}`, {dt.date.today().isoformat()}, {platform.machine()}: {len(specs)} runs of {end}
in {minutes:.1f} min on {args.jobs} processes{kept} (a run's simulation: median
{statistics.median(walls) if walls else 0:.1f} s, longest {max(walls, default=0):.1f} s).
Networks: `scenarios/realnets/` (real districts) and `scenarios/tlsvariants/` (generated, one
signalling feature each). Cells: mean delay over the seeds, s (ratio to `sumo-actuated` / to
`fixed`). Targets: `adaptive` at most 1.0x `sumo-actuated` on every network and at most
{TARGET_GEOMEAN}x in geometric mean; no ccsim controller ({", ".join(OURS)}) above
{TARGET_VS_FIXED:.2f}x `fixed`.

{text}

Failed runs:

{failed}
"""
    print(body)
    if not args.no_write:
        replace_section("real-networks", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
