"""Cut small real-city districts out of public SUMO scenarios (the real-network test set).

Each district becomes ``scenarios/realnets/<name>/`` with its net, one hour of demand, its
additional files and a plain ``scenario.sumocfg`` (``ccsim run scenarios/realnets/<name>``).
The committed folders are the output of this script; rerun it only to rebuild them from the
sources (shallow clones are enough):

    git clone --depth 1 https://github.com/DLR-TS/sumo-scenarios /tmp/sumo-scenarios
    git clone --depth 1 https://github.com/lcodeca/LuSTScenario /tmp/LuSTScenario
    .venv/bin/python scenarios/realnets/build.py \\
        --source DLR-TS/sumo-scenarios=/tmp/sumo-scenarios \\
        --source lcodeca/LuSTScenario=/tmp/LuSTScenario

``--check`` then runs every hour with the bare ``sumo`` binary (the net's own programs) and
prints inserted / waiting vehicles, teleports and mean time loss, to see the demand is
moderate-to-heavy but not gridlocked. Licences and attributions: README.md beside this file.

Every step is deterministic (fixed seeds, netconvert's date stamp removed), so a rebuild from the
same source commits gives the same files.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _gen import SUMO_HOME, binary, run_tool, strip_date  # noqa: E402

HOUR_S = 3600


@dataclass(frozen=True)
class District:
    """One real district: where it comes from and how it is cut."""

    name: str
    source: str  # owner/name of the GitHub repository
    commit: str  # the source commit the committed files were cut from
    licence: str
    build: Callable[[Path, Path], None]  # (source clone, output folder)
    description: str


# --- shared steps ------------------------------------------------------------------------------


def netconvert(folder: Path, out: str, args: Sequence[str]) -> Path:
    """Run netconvert in ``folder`` writing ``out``; drop its date stamp."""
    run_tool([binary("netconvert"), *args, "--no-warnings", "--output-file", out], folder)
    strip_date(folder / out)
    return folder / out


def random_trips(folder: Path, net: str, out: str, *, period_s: float, seed: int) -> None:
    """One hour of randomTrips demand: trips (SUMO routes them on insertion), 10x more often from
    and to the fringe than inside (a district's traffic mostly crosses it), at least 300 m long."""
    run_tool(
        [sys.executable, SUMO_HOME / "tools" / "randomTrips.py", "-n", net, "-o", out,
         "-b", "0", "-e", str(HOUR_S), "-p", f"{period_s:g}", "--seed", str(seed),
         "--fringe-factor", "10", "--min-distance", "300", "--validate",
         "--vehicle-class", "passenger", "--prefix", "t"],
        folder,
    )  # fmt: skip
    for stale in [*folder.glob("*.rou.alt.xml"), folder / "routes.rou.xml"]:
        stale.unlink(missing_ok=True)  # randomTrips' intermediate files
    text = (folder / out).read_text(encoding="utf-8")
    text = re.sub(r"<!-- generated on .*?-->\n", "", text, flags=re.S)
    (folder / out).write_text(text, encoding="utf-8")


def write_sumocfg(folder: Path, net: str, routes: Sequence[str], additional: Sequence[str]) -> None:
    """A plain .sumocfg: one hour at 1 s steps, SUMO's default teleport time stated."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<configuration>",
        "    <input>",
        f'        <net-file value="{net}"/>',
        f'        <route-files value="{",".join(routes)}"/>',
    ]
    if additional:
        lines.append(f'        <additional-files value="{",".join(additional)}"/>')
    lines += [
        "    </input>",
        "    <time>",
        '        <begin value="0"/>',
        f'        <end value="{HOUR_S}"/>',
        '        <step-length value="1"/>',
        "    </time>",
        "    <processing>",
        '        <time-to-teleport value="300"/>',
        "    </processing>",
        "</configuration>",
    ]
    (folder / "scenario.sumocfg").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- Bologna (DLR-TS/sumo-scenarios, EPL-2.0) -------------------------------------------------


def _poisson_flows(routes_file: Path, scale: float, seed: int) -> ET.Element:
    """The scenario's vehicles as Poisson flows: per route and 15-minute slice, the count of the
    original file (x ``scale``) at a random rate, so SUMO's seed draws the arrival times."""
    del seed  # the rate is deterministic; SUMO's --seed draws the arrivals
    root = ET.parse(routes_file).getroot()
    route_ids: dict[tuple[str, str], str] = {}
    counts: Counter[tuple[str, str, int]] = Counter()
    for vehicle in root.iter("vehicle"):
        route = vehicle.find("route")
        assert route is not None, f"{routes_file}: vehicle {vehicle.get('id')} without a route"
        key = (route.get("edges", ""), vehicle.get("type", ""))
        route_ids.setdefault(key, f"r{len(route_ids)}")
        depart = float(vehicle.get("depart", "0"))
        if depart < HOUR_S:
            counts[(*key, int(depart // 900))] += 1
    out = ET.Element("routes")
    for (edges, _vtype), rid in route_ids.items():
        ET.SubElement(out, "route", id=rid, edges=edges)
    for (edges, vtype, slice_), n in sorted(counts.items(), key=lambda kv: (kv[0][2], kv[0][0])):
        rid = route_ids[(edges, vtype)]
        rate = n * scale / 900.0
        ET.SubElement(
            out, "flow", id=f"{rid}_{slice_}", type=vtype, route=rid,
            begin=str(slice_ * 900), end=str((slice_ + 1) * 900), period=f"exp({rate:.6f})",
            departLane="best", departPos="base", departSpeed="max",
        )  # fmt: skip
    return out


def _write_xml(path: Path, root: ET.Element, comment: str) -> None:
    ET.indent(root, space="    ")
    body = ET.tostring(root, encoding="unicode")
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- {comment} -->\n{body}\n', encoding="utf-8"
    )


def _bologna(part: str, scale: float) -> Callable[[Path, Path], None]:
    def build(source: Path, out: Path) -> None:
        src = source / "bologna" / part
        # The net, the real signal programs (a separate "utopia" program that replaces the net's,
        # as in the original), the vehicle types, bus lines and stops; the original's induction
        # loops are left out (they write output files beside the scenario).
        shutil.copy(src / f"{part}_buslanes.net.xml", out / f"{part}.net.xml")
        shutil.copy(src / f"{part}_tls.add.xml", out / f"{part}.tls.add.xml")
        shutil.copy(src / f"{part}_vtypes.add.xml", out / f"{part}.vtypes.add.xml")
        shutil.copy(src / f"{part}_bus_stops.add.xml", out / f"{part}.busstops.add.xml")
        shutil.copy(src / f"{part}_busses.rou.xml", out / f"{part}.buses.rou.xml")
        flows = _poisson_flows(src / f"{part}.rou.xml", scale, seed=0)
        note = (f"from bologna/{part}/{part}.rou.xml: vehicles per route and 15 min x {scale:g}, "
                "as Poisson flows")  # fmt: skip
        _write_xml(out / f"{part}.rou.xml", flows, note)
        write_sumocfg(
            out,
            f"{part}.net.xml",
            [f"{part}.vtypes.add.xml", f"{part}.rou.xml", f"{part}.buses.rou.xml"],
            [f"{part}.busstops.add.xml", f"{part}.tls.add.xml"],
        )

    return build


# --- Hamburg (DLR-TS/sumo-scenarios TAVF-Hamburg, EPL-2.0) ------------------------------------


def _hamburg(source: Path, out: Path) -> None:
    full = out / "_full.net.xml"
    with gzip.open(source / "TAVF-Hamburg" / "network.net.xml.gz", "rb") as zin:
        full.write_bytes(zin.read())
    try:
        netconvert(
            out,
            "hamburg.net.xml",
            ["--sumo-net-file", full.name, "--keep-edges.in-boundary", "1800,1680,2900,2400",
             "--keep-edges.by-vclass", "passenger", "--remove-edges.isolated"],
        )  # fmt: skip
    finally:
        full.unlink()
    random_trips(out, "hamburg.net.xml", "hamburg.rou.xml", period_s=1.6, seed=42)
    write_sumocfg(out, "hamburg.net.xml", ["hamburg.rou.xml"], [])


# --- Luxembourg (lcodeca/LuSTScenario, MIT) ---------------------------------------------------


def _luxembourg(source: Path, out: Path) -> None:
    typemap = SUMO_HOME / "data" / "typemap" / "osmNetconvert.typ.xml"
    full = "_full.net.xml"
    osm = source / "misc" / "lust.legacy.scenario.osm"
    try:
        # LuST's OSM extract with the options of its own net (signals guessed around OSM signal
        # nodes, joined clusters), passenger roads only; then the centre cut out of it.
        netconvert(
            out,
            full,
            ["--osm-files", str(osm), "--type-files", str(typemap),
             "--keep-edges.by-vclass", "passenger", "--remove-edges.isolated",
             "--tls.guess-signals", "--tls.join", "--junctions.join", "--geometry.remove",
             "--ramps.guess", "--roundabouts.guess", "--no-turnarounds.except-deadend",
             "--proj.utm"],
        )  # fmt: skip
        netconvert(
            out,
            "luxembourg.net.xml",
            ["--sumo-net-file", full, "--keep-edges.in-boundary", "6450,6800,7050,7400",
             "--remove-edges.isolated"],
        )  # fmt: skip
    finally:
        (out / full).unlink(missing_ok=True)
    random_trips(out, "luxembourg.net.xml", "luxembourg.rou.xml", period_s=1.3, seed=42)
    write_sumocfg(out, "luxembourg.net.xml", ["luxembourg.rou.xml"], [])


DLR = ("DLR-TS/sumo-scenarios", "629e34cb444db1c7c48c852760af7b4349248837", "EPL-2.0")
LUST = ("lcodeca/LuSTScenario", "5edb7ecb9ad196c39172b6eb95d19ed789f4b1a6", "MIT")

DISTRICTS = [
    District("bologna-acosta", *DLR, _bologna("acosta", scale=0.7),
             "Bologna, Andrea Costa: the iTETRIS/TransAID district with its real signal programs"),
    District("bologna-pasubio", *DLR, _bologna("pasubio", scale=0.7),
             "Bologna, Pasubio: the iTETRIS/TransAID district with its real signal programs"),
    District("hamburg-tavf", *DLR, _hamburg,
             "Hamburg test field (TAVF), a cut of the north of the net: actuated programs"),
    District("luxembourg-centre", *LUST, _luxembourg,
             "Luxembourg city centre from LuST's OSM extract, netconvert-guessed signals"),
]  # fmt: skip


# --- checking ----------------------------------------------------------------------------------


def bare_run(folder: Path, *, seed: int = 1, end_s: float = HOUR_S) -> dict[str, float]:
    """One hour of the folder's scenario.sumocfg with the bare ``sumo`` binary: its statistics."""
    proc = subprocess.run(
        [str(binary("sumo")), "-c", str(folder / "scenario.sumocfg"), "--seed", str(seed),
         "--end", f"{end_s:g}", "--no-step-log", "--duration-log.statistics",
         "--no-warnings", "--tripinfo-output.write-unfinished"],
        capture_output=True, text=True, check=True, cwd=folder,
    )  # fmt: skip
    text = proc.stdout + proc.stderr
    stats: dict[str, float] = {}
    for key, pattern in {
        "inserted": r"Inserted: (\d+)",
        "running": r"Running: (\d+)",
        "waiting": r"Waiting: (\d+)",
        "teleports": r"Teleports: (\d+)",
        "time_loss_s": r"TimeLoss: ([\d.]+)",
        "depart_delay_s": r"DepartDelay: ([\d.]+)",
        "wall_s": r"Duration: ([\d.]+)s",
    }.items():
        match = re.search(pattern, text)
        stats[key] = float(match.group(1)) if match else 0.0
    return stats


def tls_count(net: Path) -> int:
    return sum(1 for _ in ET.parse(net).getroot().iter("tlLogic"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="districts to build (default: all)")
    parser.add_argument("--source", action="append", default=[], metavar="OWNER/NAME=PATH",
                        help="a local clone of a source repository")  # fmt: skip
    parser.add_argument("--check", action="store_true", help="run each hour with bare sumo")
    args = parser.parse_args()
    sources: dict[str, Path] = {}
    for item in args.source:
        repo, _, path = item.partition("=")
        sources[repo] = Path(path).resolve()
    chosen = [d for d in DISTRICTS if not args.names or d.name in args.names]
    for district in chosen:
        out = HERE / district.name
        if district.source in sources:
            if out.exists():
                for old in out.iterdir():
                    if old.name != "README.md":
                        old.unlink()
            out.mkdir(exist_ok=True)
            district.build(sources[district.source], out)
            print(f"built {district.name} from {sources[district.source]}")
        elif not args.check:
            print(f"skipped {district.name}: no --source {district.source}=PATH", file=sys.stderr)
            continue
        if args.check:
            nets = sorted(out.glob("*.net.xml"))
            stats = bare_run(out)
            print(
                f"{district.name}: {tls_count(nets[0])} signals; "
                + ", ".join(f"{k} {v:g}" for k, v in stats.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
