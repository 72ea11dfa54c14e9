"""A reference count file from the field (hand or video counts) as the ground truth for a real
detector station in a lab, pure: the CSV read and checked, and its intervals aligned with the
station's sample periods.

The file has a header and one row per lane and interval::

    site,lane,interval_start,interval_end,count,speed_kmh
    lab-1,N_C_1,0,300,41,38.5
    lab-1,N_C_1,300,600,37,

``site`` names the count site (one per file); ``lane`` is one of the plan's ``scenario.lanes``
(zone n of the station is ``lanes[n-1]``); ``interval_start`` / ``interval_end`` are in the
station's clock (``sampleEndTime``): either seconds since the station started (numbers), or
local date-times (ISO 8601, e.g. ``2026-03-02T07:15:00``) when its clock is set - NTCIP 1209
then gives local time; ``count`` is the vehicles counted; ``speed_kmh`` (optional, may be
empty) their mean speed. A reference interval is compared with the sum of the station's periods
that tile it exactly; an interval the periods do not tile, or with a period missing, counts as
missing, never as zero. Problems are :class:`ReferenceError` naming the file, the line and the
field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adapters.conformance.accuracy import LaneInterval
from sim.errors import FileFieldError

REQUIRED = ("site", "lane", "interval_start", "interval_end", "count")
OPTIONAL = ("speed_kmh",)
EPOCH = datetime(1970, 1, 1)


class ReferenceError(FileFieldError):
    """A reference count file is missing or malformed."""


@dataclass(frozen=True)
class ReferenceRow:
    lane: str
    start_s: float
    end_s: float
    count: int
    speed_kmh: float | None
    line: int


@dataclass(frozen=True)
class Reference:
    path: Path
    site: str
    clock: str
    """``uptime`` (seconds since the station started) or ``local`` (local date-times)."""
    rows: tuple[ReferenceRow, ...]

    @property
    def end_s(self) -> float:
        return max(r.end_s for r in self.rows)

    @property
    def begin_s(self) -> float:
        return min(r.start_s for r in self.rows)


def _time(text: str) -> tuple[float, str] | None:
    """Seconds in the station's clock, and which clock; None if neither form."""
    try:
        return float(text), "uptime"
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    # NTCIP local time: the wall clock's reading as seconds since 1970, whatever its offset.
    return (moment.replace(tzinfo=None) - EPOCH).total_seconds(), "local"


def read_reference(path: Path, lanes: Sequence[str]) -> Reference:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ReferenceError(path, f"cannot read the reference count file ({exc.strerror})") from None
    return parse_reference(text, path, lanes)


def parse_reference(text: str, path: Path, lanes: Sequence[str]) -> Reference:
    """Read and check a reference count file (see the module docstring)."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing or unknown:
        problem = f"missing column {missing[0]!r}" if missing else f"unknown column {unknown[0]!r}"
        raise ReferenceError(f"{path}:1", problem, field="header", value=",".join(header),
                             expected=",".join(REQUIRED) + "[,speed_kmh]")  # fmt: skip
    rows: list[ReferenceRow] = []
    sites: set[str] = set()
    clocks: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"{path}:{line}"

        def bad(
            field: str, expected: str, where: str = where, row: dict[str, str] = row
        ) -> ReferenceError:
            return ReferenceError(where, "bad value", field=field, value=row.get(field, ""),
                                  expected=expected)  # fmt: skip

        if not row.get("site"):
            raise bad("site", "a site name")
        sites.add(row["site"])
        if len(sites) > 1:
            raise ReferenceError(where, "a second site", field="site", value=row["site"],
                                 expected=f"one site per file ({sorted(sites)[0]!r})")  # fmt: skip
        if row.get("lane") not in lanes:
            raise bad("lane", "one of the plan's scenario.lanes: " + ", ".join(lanes))
        times = []
        for field in ("interval_start", "interval_end"):
            parsed = _time(row.get(field, ""))
            if parsed is None:
                raise bad(field, "seconds (e.g. 300) or a local date-time (e.g. 2026-03-02T07:15:00)")
            times.append(parsed[0])
            clocks.add(parsed[1])
        if len(clocks) > 1:
            raise bad("interval_start", "the same clock on every row (all seconds or all date-times)")
        start, end = times
        if end <= start:
            raise bad("interval_end", f"after interval_start ({row['interval_start']})")
        count = row.get("count", "")
        if not count.isdigit():
            raise bad("count", "a whole number of vehicles, 0 or more")
        speed_text = row.get("speed_kmh", "")
        speed = None
        if speed_text:
            try:
                speed = float(speed_text)
            except ValueError:
                raise bad("speed_kmh", "km/h, a number 0-250, or empty") from None
            if not 0 <= speed <= 250:
                raise bad("speed_kmh", "km/h, a number 0-250, or empty")
        for other in rows:
            if other.lane == row["lane"] and start < other.end_s and other.start_s < end:
                raise bad("interval_start", f"no overlap with line {other.line} of the same lane")
        rows.append(ReferenceRow(row["lane"], start, end, int(count), speed, line))
    if not rows:
        raise ReferenceError(path, "no counts", expected="a header and at least one row")
    return Reference(path, sites.pop(), clocks.pop(), tuple(rows))


def align_reference(
    reference: Reference,
    lanes: Sequence[str],
    device: Mapping[float, tuple[Sequence[int | None], Sequence[float | None]]],
    period_s: float,
) -> tuple[dict[str, list[LaneInterval]], list[str]]:
    """Per lane, each reference interval beside the sum of the station's periods that tile it
    (end s -> volumes, occupancy 0..1 per zone); and the intervals that could not be tiled."""
    out: dict[str, list[LaneInterval]] = {lane: [] for lane in lanes}
    untiled: list[str] = []
    for row in sorted(reference.rows, key=lambda r: (r.lane, r.start_s)):
        k = lanes.index(row.lane)
        n = (row.end_s - row.start_s) / period_s
        ends = [row.start_s + period_s * (i + 1) for i in range(round(n))]
        volume: int | None = None
        occupancy: float | None = None
        if abs(n - round(n)) > 1e-6 or round(n) < 1:
            untiled.append(f"line {row.line}: {row.end_s - row.start_s:g} s is not a whole number "
                           f"of the station's {period_s:g} s periods")  # fmt: skip
        elif all(e in device and device[e][0][k] is not None for e in ends):
            volume = sum(int(device[e][0][k] or 0) for e in ends)
            occ = [device[e][1][k] for e in ends]
            if all(o is not None for o in occ):
                occupancy = 100.0 * sum(o or 0.0 for o in occ) / len(occ)
        out[row.lane].append(LaneInterval(row.end_s, row.count, None, volume, occupancy))
    return out, untiled


def interval_s(reference: Reference) -> float:
    """The most common reference interval length (s), for the accuracy blocks."""
    lengths = sorted(r.end_s - r.start_s for r in reference.rows)
    return lengths[len(lengths) // 2]
