"""A scenario's demand repeated: ``[run] repeat_demand = N`` runs its route files N times over.

The scenario's window (``begin_s`` .. ``end_s``, e.g. the district's one-hour peak) is one period
of demand. Repeating it writes new route files into the run's folder: each file as it is
(period 0), then for every period ``k`` = 1 .. N-1 a copy of each of its vehicles, trips,
persons, containers and flows with its departure times (``depart``; ``begin`` and ``end`` of a
flow; the ``until``/``arrival`` of its stops) moved ``k`` periods later and its id made unique
(``ID.rK``). Types, routes and distributions are declared once, in period 0. Periods follow one
another, so a file sorted by departure stays sorted. SUMO itself is not changed.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from sim.errors import ScenarioError

DEPARTING = ("vehicle", "trip", "person", "container")
"""Elements that depart once, at ``depart``."""
FLOWS = ("flow", "personFlow", "containerFlow")
"""Elements that depart from ``begin`` to ``end``."""
STOP_TIMES = ("until", "arrival", "started", "ended")
"""Absolute times (s) of a stop, moved with its vehicle."""
MAX_REPEAT = 1000


def repeated_id(ident: str, period: int) -> str:
    """The id of period ``period``'s copy of demand element ``ident`` (period 0 keeps it)."""
    return ident if period == 0 else f"{ident}.r{period}"


def repeat_demand(
    route_files: Sequence[Path], period_s: float, times: int, out_dir: Path
) -> tuple[Path, ...]:
    """Write ``route_files`` repeated ``times`` times, ``period_s`` (s) apart, into ``out_dir``;
    return the files written, in the same order. Raises :class:`ScenarioError` naming the file
    and element for demand that cannot be moved (a departure that is not a time, a flow without
    an end) or ids the copies would clash with."""
    if not 1 <= times <= MAX_REPEAT:
        raise ValueError(f"times {times}: expected 1..{MAX_REPEAT}")
    if not (math.isfinite(period_s) and period_s > 0):
        raise ValueError(f"period_s {period_s}: expected a positive number of seconds")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, path in enumerate(route_files):
        target = out_dir / f"{i}-{path.name}"
        _repeat_file(path, period_s, times, target)
        written.append(target)
    return tuple(written)


def _repeat_file(path: Path, period_s: float, times: int, target: Path) -> None:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ScenarioError(path, f"malformed route XML: {exc}") from None
    demand = [el for el in root if el.tag in DEPARTING or el.tag in FLOWS]
    for el in root:
        if el.tag == "interval":
            raise ScenarioError(path, "cannot repeat the flows of an <interval>", field="interval",
                                expected="flows with their own begin and end")  # fmt: skip
    ids: set[tuple[str, str]] = set()
    for el in demand:
        ident = el.get("id")
        if not ident:
            raise ScenarioError(path, f"a <{el.tag}> without an id", field=el.tag,
                                expected="an id on every vehicle, person and flow")  # fmt: skip
        ids.add((_space(el.tag), ident))
    for k in range(1, times):
        shift = k * period_s
        for el in demand:
            copy = _shifted(path, el, shift)
            ident = repeated_id(el.get("id", ""), k)
            if (_space(el.tag), ident) in ids:
                raise ScenarioError(path, f"the copy of <{el.tag}> {el.get('id')!r} in period {k} "
                                    f"would be {ident!r}, which is taken", field=f"{el.tag}.id",
                                    expected="ids that do not end in .r<N>")  # fmt: skip
            ids.add((_space(el.tag), ident))
            copy.set("id", ident)
            root.append(copy)
    root.insert(0, ET.Comment(f" {path.name} repeated {times} times, {period_s:g} s apart (ccsim) "))
    ET.indent(root)
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)


_SPACES = {"trip": "vehicle", "flow": "vehicle", "personFlow": "person", "containerFlow": "container"}


def _space(tag: str) -> str:
    """The id namespace an element's id lives in (SUMO keeps persons apart from vehicles)."""
    return _SPACES.get(tag, tag)


def _shifted(path: Path, el: ET.Element, shift: float) -> ET.Element:
    copy = ET.fromstring(ET.tostring(el))  # a deep copy
    copy.tail = None
    ident = el.get("id")
    if el.tag in DEPARTING:
        _move(path, copy, "depart", shift, ident, required=True)
    else:
        if copy.get("end") is None:
            raise ScenarioError(path, f"<{el.tag}> {ident!r} has no end", field=f"{el.tag}.end",
                                expected="an end time (s) on every flow whose demand is "
                                "repeated")  # fmt: skip
        copy.set("begin", copy.get("begin", "0"))
        _move(path, copy, "begin", shift, ident, required=True)
        _move(path, copy, "end", shift, ident, required=True)
    for stop in copy.iter("stop"):
        for name in STOP_TIMES:
            _move(path, stop, name, shift, ident, required=False)
    return copy


def _move(
    path: Path, el: ET.Element, name: str, shift: float, ident: str | None, *, required: bool
) -> None:
    raw = el.get(name)
    if raw is None:
        if required:
            raise ScenarioError(path, f"<{el.tag}> {ident!r} has no {name}", field=f"{el.tag}.{name}",
                                expected="a time in s")  # fmt: skip
        return
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ScenarioError(path, f"<{el.tag}> {ident!r}: cannot move {name} by whole periods",
                            field=f"{el.tag}.{name}", value=raw,
                            expected="a time in s to repeat the demand")  # fmt: skip
    el.set(name, _seconds(value + shift))


def _seconds(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"
