"""Generate the signal-variant matrix: small nets, each with one signalling feature real cities use.

Every variant is a small grid or arterial built by netgenerate / netconvert with one feature of
the programs switched on, and one hour of randomTrips demand:

* ``right-on-red``  - junction type ``traffic_light_right_on_red``: right turns show ``s`` (stop,
  then go) while their approach is red;
* ``joined``        - a staggered crossing of two junctions 30 m apart run by one joined signal
  (``--tls.join``), plus two plain signals on the same arterial;
* ``red-amber``     - red-amber (``u``, 2 s) before every green, as in Germany or the UK;
* ``protected-left``- a left-turn lane on every approach and a protected left phase after each
  through phase (``--turn-lanes 1 --tls.left-green.time 6``): 4 green phases;
* ``incoming``      - one approach at a time (``--tls.layout incoming``): 4 green phases;
* ``t-junctions``   - an arterial with side streets on alternating sides, one approach at a time:
  3 green phases;
* ``actuated``      - SUMO's gap-actuated programs (``--tls.default-type actuated``).

Run from anywhere: ``.venv/bin/python scenarios/tlsvariants/generate.py [--check]``; rerunning
rewrites the folders byte for byte (fixed seeds, date stamps removed). ``--check`` runs each hour
with the bare ``sumo`` binary and prints its figures.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _gen import binary, run_tool, strip_date  # noqa: E402
from realnets.build import bare_run, random_trips, write_sumocfg  # noqa: E402

GRID = [
    "--grid", "--grid.x-number", "3", "--grid.y-number", "2", "--grid.length", "250",
    "--grid.attach-length", "200", "--default.lanenumber", "2", "--no-turnarounds",
    "--tls.yellow.time", "3",
]  # fmt: skip
RED_AMBER_S = 2

Builder = Callable[[Path, str], None]  # (folder, net file name): writes the net


def netgenerate(folder: Path, out: str, options: list[str]) -> None:
    run_tool([binary("netgenerate"), *GRID, *options, "--no-warnings", "-o", out], folder)
    strip_date(folder / out)


def red_amber(folder: Path, net: str) -> None:
    """Put a red-amber phase (``u`` on the links about to turn green, the ending yellow turned
    red) between every yellow and the next green, and rebuild the net with those programs."""
    root = ET.parse(folder / net).getroot()
    programs = ET.Element("tlLogics")
    for logic in root.iter("tlLogic"):
        phases = [(p.get("duration", "0"), p.get("state", "")) for p in logic.iter("phase")]
        new = ET.SubElement(programs, "tlLogic", {k: logic.get(k, "") for k in
                            ("id", "type", "programID", "offset")})  # fmt: skip
        for i, (duration, state) in enumerate(phases):
            ET.SubElement(new, "phase", duration=duration, state=state)
            following = phases[(i + 1) % len(phases)][1]
            if "y" not in state:
                continue
            prepare = "".join(
                "u" if nxt in "Gg" and cur not in "Gg" else "r" if cur == "y" else cur
                for cur, nxt in zip(state, following, strict=True)
            )
            ET.SubElement(new, "phase", duration=str(RED_AMBER_S), state=prepare)
    ET.indent(programs, space="    ")
    tll = folder / "red-amber.tll.xml"
    tll.write_text(ET.tostring(programs, encoding="unicode") + "\n", encoding="utf-8")
    run_tool(
        [binary("netconvert"), "--sumo-net-file", net, "--tllogic-files", tll.name,
         "--no-warnings", "-o", net],
        folder,
    )  # fmt: skip
    strip_date(folder / net)
    tll.unlink()


def arterial(folder: Path, out: str, *, joined: bool, options: list[str]) -> None:
    """An east-west arterial (2 lanes each way, 50 km/h) with side streets (1 lane, 40 km/h).

    ``joined``: four cross streets, two of them 30 m apart (a staggered crossing) that one joined
    signal runs. Otherwise: four T-junctions with the side street on alternating sides.
    """
    xs = [0, 300, 330, 630] if joined else [0, 300, 600, 900]
    nodes = [ET.Element("node", id="W", x="-250", y="0"), ET.Element("node", id="E",
             x=str(xs[-1] + 250), y="0")]  # fmt: skip
    edges: list[ET.Element] = []
    chain = ["W"]
    for i, x in enumerate(xs):
        jid = f"J{i}"
        nodes.append(ET.Element("node", id=jid, x=str(x), y="0", type="traffic_light"))
        chain.append(jid)
        sides = ("N", "S") if joined else (("N",) if i % 2 == 0 else ("S",))
        for side in sides:
            sid = f"{side}{i}"
            nodes.append(ET.Element("node", id=sid, x=str(x), y="200" if side == "N" else "-200"))
            for a, b in ((sid, jid), (jid, sid)):
                edges.append(ET.Element("edge", {"id": f"{a}_{b}", "from": a, "to": b,
                             "numLanes": "1", "speed": "11.11", "priority": "1"}))  # fmt: skip
    chain.append("E")
    for a, b in pairwise(chain):
        for u, v in ((a, b), (b, a)):
            edges.append(ET.Element("edge", {"id": f"{u}_{v}", "from": u, "to": v,
                         "numLanes": "2", "speed": "13.89", "priority": "2"}))  # fmt: skip
    for name, items in (("nod", nodes), ("edg", edges)):
        root = ET.Element("nodes" if name == "nod" else "edges")
        root.extend(items)
        ET.indent(root, space="    ")
        (folder / f"_{name}.xml").write_text(ET.tostring(root, encoding="unicode") + "\n")
    try:
        run_tool(
            [binary("netconvert"), "-n", "_nod.xml", "-e", "_edg.xml", "--no-turnarounds",
             "--tls.yellow.time", "3", *options, "--no-warnings", "-o", out],
            folder,
        )  # fmt: skip
    finally:
        for name in ("nod", "edg"):
            (folder / f"_{name}.xml").unlink()
    strip_date(folder / out)


def grid(options: list[str], post: Callable[[Path, str], None] | None = None) -> Builder:
    if "--default-junction-type" not in options:
        options = ["--default-junction-type", "traffic_light", *options]

    def build(folder: Path, net: str) -> None:
        netgenerate(folder, net, options)
        if post is not None:
            post(folder, net)

    return build


def joined_arterial(folder: Path, net: str) -> None:
    arterial(folder, net, joined=True, options=["--tls.join", "--tls.join-dist", "40"])


def t_arterial(folder: Path, net: str) -> None:
    arterial(folder, net, joined=False, options=["--tls.layout", "incoming"])


@dataclass(frozen=True)
class Variant:
    build: Builder
    period_s: float  # randomTrips period: one vehicle every period_s seconds


VARIANTS = {
    "right-on-red": Variant(grid(["--default-junction-type", "traffic_light_right_on_red"]), 1.0),
    "joined": Variant(joined_arterial, 1.5),
    "red-amber": Variant(grid([], red_amber), 1.0),
    "protected-left": Variant(grid(["--turn-lanes", "1", "--tls.left-green.time", "6"]), 1.0),
    "incoming": Variant(grid(["--tls.layout", "incoming"]), 1.6),
    "t-junctions": Variant(t_arterial, 1.5),
    "actuated": Variant(grid(["--tls.default-type", "actuated"]), 1.0),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="variants to build (default: all)")
    parser.add_argument("--check", action="store_true", help="run each hour with bare sumo")
    args = parser.parse_args()
    for name, variant in VARIANTS.items():
        if args.names and name not in args.names:
            continue
        folder = HERE / name
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        net, routes = f"{name}.net.xml", f"{name}.rou.xml"
        variant.build(folder, net)
        random_trips(folder, net, routes, period_s=variant.period_s, seed=42)
        write_sumocfg(folder, net, [routes], [])
        line = f"built {name}"
        if args.check:
            line += ": " + ", ".join(f"{k} {v:g}" for k, v in bare_run(folder).items())
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
