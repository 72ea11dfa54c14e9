"""The protocol cases (TSS-*): an NTCIP 1209 station read and written over SNMP v2c through
ccsim's manager (:class:`adapters.ntcip.manager.Manager`), each case judged from what came back.

Types are judged from each value's BER tag as the device sent it, ranges and enumerations from
the compiled MIB's SYNTAX. The SET cases use ``sensorZoneSamplePeriod`` (the one read-write
INTEGER of the zone table) and ``sampleVolumeData`` (read-only); a SET that is accepted writes
the value the station already has, so the test leaves the device as it found it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from adapters.conformance.cases import CaseResult, Outcome, judged, not_applicable
from adapters.ntcip import ber
from adapters.ntcip.manager import Manager, ManagerError, Target
from adapters.ntcip.model import MISSING
from adapters.ntcip.oids import OBJECTS_MIB2, OID, Syntax, mib_1209, objects_1209
from adapters.ntcip.protocol import ErrorStatus

TAGS = {Syntax.INTEGER: ber.INTEGER, Syntax.COUNTER: ber.COUNTER32, Syntax.OCTETS: ber.OCTET_STRING}
TAG_NAMES = {
    ber.INTEGER: "INTEGER", ber.COUNTER32: "Counter32", ber.OCTET_STRING: "OCTET STRING",
    ber.NULL: "NULL", ber.OBJECT_IDENTIFIER: "OBJECT IDENTIFIER", ber.GAUGE32: "Gauge32",
    ber.TIMETICKS: "TimeTicks", ber.NO_SUCH_OBJECT: "noSuchObject",
    ber.NO_SUCH_INSTANCE: "noSuchInstance", ber.END_OF_MIB_VIEW: "endOfMibView",
}  # fmt: skip
ZONE_COLUMNS = ("sensorZoneNumber", "sensorZoneLabel", "sensorZoneStatus", "sensorZoneSamplePeriod",
                "numSampleDataEntries", "numSensorZoneClass")  # fmt: skip
SAMPLE_COLUMNS = ("sampleEndTime", "sampleVolumeData", "samplePercentOccupancy", "sampleSpeedData",
                  "sampleZoneStatus", "sampleSequenceNumber")  # fmt: skip
ZONE_OK = 2


@dataclass
class RunObservations:
    """What the harness saw while it polled the station through a run."""

    period_s: int = 0
    completed: list[tuple[int, int]] = field(default_factory=list)
    """(sampleSequenceNumber, sampleEndTime) of zone 1, each completed period as first read."""
    status_violations: list[str] = field(default_factory=list)
    """Periods with a zone status other than oK that still carried data."""
    periods_read: int = 0
    missed_end: int | None = None
    """End (s) of the period whose poll was missed on purpose (TSS-COM-1)."""
    recovered: bool | None = None
    """Whether that period was found in the station's buffer at the next poll."""
    missed_evidence: str = ""


def allowed(name: str, value: int | bytes) -> bool:
    """Whether ``value`` is within ``name``'s SYNTAX constraints in the NTCIP 1209 MIB."""
    syntax = mib_1209()[name]["syntax"]
    assert isinstance(syntax, dict)
    constraints = syntax.get("constraints")
    if not isinstance(constraints, dict):
        return True
    if isinstance(value, bytes):
        sizes = constraints.get("size")
        return not sizes or any(r["min"] <= len(value) <= r["max"] for r in sizes)
    ranges = constraints.get("range")
    if ranges:
        return any(r["min"] <= value <= r["max"] for r in ranges)
    values = constraints.get("enumeration")
    if isinstance(values, dict):
        return value in values.values()
    return True


def instance(name: str, *index: int) -> OID:
    objects = objects_1209()
    return objects[name].instance(*index) if name in objects else OBJECTS_MIB2[name].instance()


def _tag(tlv: bytes) -> int:
    return tlv[0] if tlv else -1


def _status(exc: ManagerError) -> str:
    if not exc.status:
        return str(exc).split(": ", 1)[-1]
    try:
        return ErrorStatus(exc.status).label
    except ValueError:
        return f"error status {exc.status}"


@dataclass
class Station:
    """The device under test as the cases see it."""

    manager: Manager
    target: Target
    read: bytes
    write: bytes | None
    zones: int
    """How many zones the plan expects."""

    async def get(self, oids: Sequence[OID]) -> dict[OID, bytes]:
        out: dict[OID, bytes] = {}
        for k in range(0, len(oids), 40):  # requests of a modest size, as a manager sends them
            out.update(await self.manager.get_tlvs(self.target, oids[k : k + 40], timeout_s=2.0))
        return out

    async def identity(self) -> dict[str, str]:
        """sysDescr, sysObjectID, sysName as read from the device (raises ManagerError)."""
        names = ("sysDescr", "sysObjectID", "sysName")
        tlvs = await self.get([instance(n) for n in names])
        out = {}
        for n in names:
            value = ber.decode_value(tlvs[instance(n)])
            if isinstance(value, bytes):
                out[n] = value.decode(errors="replace")
            elif isinstance(value, tuple):
                out[n] = ".".join(str(a) for a in value)
            else:
                out[n] = "" if value is None else str(value)
        return out

    def instances(self) -> list[tuple[str, OID]]:
        """Every instance the MIB says a station with :attr:`zones` zones has (entries 1-2)."""
        out = [("maxSensorZones", instance("maxSensorZones"))]
        for zone in range(1, self.zones + 1):
            out += [(c, instance(c, zone)) for c in ZONE_COLUMNS]
            for entry in (1, 2):
                out += [(c, instance(c, zone, entry, 1)) for c in SAMPLE_COLUMNS]
        return out


async def identity_case(station: Station, case_id: str) -> tuple[dict[str, str] | None, CaseResult]:
    """The device's identity as it gives it (None if unreadable), and its case ``case_id``: the
    system group readable and none of it empty."""
    try:
        identity = await station.identity()
    except ManagerError as exc:
        return None, CaseResult(case_id, Outcome.FAIL, [f"system group unreadable: {exc}"])
    missing = [k for k, v in identity.items() if not v]
    if missing:
        return identity, CaseResult(case_id, Outcome.FAIL, [f"empty: {', '.join(missing)}"])
    seen = f"{identity['sysDescr']} ({identity['sysObjectID']}), name {identity['sysName']}"
    return identity, CaseResult(case_id, Outcome.PASS, [seen])


async def objects_cases(station: Station, wanted: Sequence[str]) -> list[CaseResult]:
    """TSS-OBJ-1 (present), TSS-OBJ-2 (types), TSS-OBJ-3 (ranges)."""
    rows = station.instances()
    try:
        tlvs = await station.get([oid for _, oid in rows])
    except ManagerError as exc:
        return [judged(c, [f"GET failed: {_status(exc)}"], "") for c in ("TSS-OBJ-1", "TSS-OBJ-2",
                "TSS-OBJ-3") if c in wanted]  # fmt: skip
    objects = objects_1209()
    absent, mistyped, out_of_range = [], [], []
    for name, oid in rows:
        tlv = tlvs.get(oid, b"")
        tag = _tag(tlv)
        dotted = ".".join(map(str, oid))
        if tag in (ber.NO_SUCH_OBJECT, ber.NO_SUCH_INSTANCE, -1):
            absent.append(f"{name} {dotted}: {TAG_NAMES.get(tag, 'no value')}")
            continue
        expected = TAGS[objects[name].syntax]
        if tag != expected:
            mistyped.append(
                f"{name} {dotted}: {TAG_NAMES.get(tag, hex(tag))} "
                f"{ber.decode_value(tlv)!r}, expected {TAG_NAMES[expected]}"
            )
            continue
        value = ber.decode_value(tlv)
        if isinstance(value, int | bytes) and not allowed(name, value):
            out_of_range.append(f"{name} {dotted} = {value!r}: outside the MIB's SYNTAX")
    n = len(rows)
    results = []
    if "TSS-OBJ-1" in wanted:
        results.append(judged("TSS-OBJ-1", absent, f"{n} instances answered", instances=n))
    if "TSS-OBJ-2" in wanted:
        results.append(judged("TSS-OBJ-2", mistyped, f"{n - len(absent)} values of the MIB's type"))
    if "TSS-OBJ-3" in wanted:
        results.append(judged("TSS-OBJ-3", out_of_range, "every value within its SYNTAX"))
    return results


async def zone_table_case(station: Station) -> CaseResult:
    """TSS-TBL-1: maxSensorZones rows, numbered 1..n, as the walk of sensorZoneNumber shows."""
    try:
        top = ber.decode_value(
            (await station.get([instance("maxSensorZones")]))[instance("maxSensorZones")]
        )
        walked = await station.manager.walk(station.target, objects_1209()["sensorZoneNumber"].oid)
    except ManagerError as exc:
        return judged("TSS-TBL-1", [f"walk failed: {_status(exc)}"], "")
    failures = []
    rows = [(oid[-1], value) for oid, value in walked]
    if rows != [(n, n) for n in range(1, len(rows) + 1)]:
        failures.append(f"sensorZoneNumber rows {rows[:10]} are not 1..n numbered as indexed")
    if top != len(rows):
        failures.append(f"maxSensorZones = {top!r} but the table has {len(rows)} rows")
    if len(rows) < station.zones:
        failures.append(f"{len(rows)} zones, the plan expects {station.zones}")
    return judged("TSS-TBL-1", failures, f"{len(rows)} zones numbered 1..{len(rows)}", zones=len(rows))


async def sample_table_case(station: Station, period_s: int) -> CaseResult:
    """TSS-TBL-2: entry 2 of every zone from the same period; entry 3 the period before."""
    oids = [
        instance(c, z, e, 1)
        for z in range(1, station.zones + 1)
        for e in (2, 3)
        for c in ("sampleEndTime", "sampleSequenceNumber")
    ]
    try:
        values = {oid: ber.decode_value(t) for oid, t in (await station.get(oids)).items()}
    except ManagerError as exc:
        return judged("TSS-TBL-2", [f"GET failed: {_status(exc)}"], "")

    def row(zone: int, entry: int) -> tuple[object, object]:
        return (values.get(instance("sampleEndTime", zone, entry, 1)),
                values.get(instance("sampleSequenceNumber", zone, entry, 1)))  # fmt: skip

    failures = []
    first = row(1, 2)
    if not all(isinstance(x, int) for x in first):
        return not_applicable("TSS-TBL-2", "no completed sample period to compare (entry 2 absent)")
    for zone in range(2, station.zones + 1):
        if row(zone, 2) != first:
            failures.append(f"zone {zone} entry 2 (end, sequence) = {row(zone, 2)}, zone 1 {first}")
    end2, seq2 = first
    assert isinstance(end2, int) and isinstance(seq2, int)
    end3, seq3 = row(1, 3)
    if isinstance(end3, int) and (seq3 != (seq2 - 1) % 65536 or end2 - end3 != period_s):
        failures.append(
            f"zone 1 entry 3 (end {end3}, sequence {seq3}) is not the period before entry 2 "
            f"(end {end2}, sequence {seq2}, period {period_s} s)"
        )
    before = "entry 3 the period before" if isinstance(end3, int) else "no entry 3 (optional)"
    return judged("TSS-TBL-2", failures, f"entry 2 of {station.zones} zones: end {end2} s, "
                  f"sequence {seq2}; {before}")  # fmt: skip


def cadence_case(observed: RunObservations) -> CaseResult:
    """TSS-TBL-3, from the periods read while the run went on."""
    seen = observed.completed
    if len(seen) < 2:
        return not_applicable("TSS-TBL-3", "fewer than two completed periods were read")
    failures = []
    for (s0, e0), (s1, e1) in itertools.pairwise(seen):
        # a period missed and never recovered leaves a known gap of one
        gap = 2 if observed.missed_end is not None and e0 < observed.missed_end < e1 else 1
        if s1 != (s0 + gap) % 65536 or e1 - e0 != gap * observed.period_s:
            failures.append(
                f"after sequence {s0} (end {e0} s) came {s1} (end {e1} s); expected {(s0 + 1) % 65536} "
                f"(end {e0 + observed.period_s} s)"
            )
    return judged("TSS-TBL-3", failures, f"{len(seen)} periods in order, {observed.period_s} s apart",
                  periods=len(seen))  # fmt: skip


def buffer_case(observed: RunObservations) -> CaseResult:
    """TSS-COM-1, from the poll missed on purpose during the run."""
    if observed.missed_end is None or observed.recovered is None:
        return not_applicable("TSS-COM-1", "the run was too short to miss a poll (4 periods needed)")
    if observed.recovered:
        return judged("TSS-COM-1", [], f"the period ending {observed.missed_end} s, whose poll was "
                      "missed, read from entry 3 at the next poll")  # fmt: skip
    return judged("TSS-COM-1", [observed.missed_evidence], "")


def status_case(observed: RunObservations) -> CaseResult:
    """TSS-STS-1, from every period read during the run."""
    if not observed.periods_read:
        return not_applicable("TSS-STS-1", "no completed sample period was read")
    return judged("TSS-STS-1", observed.status_violations,
                  f"{observed.periods_read} periods: data only with status oK",
                  periods=observed.periods_read)  # fmt: skip


async def set_cases(station: Station, wanted: Sequence[str]) -> list[CaseResult]:
    """TSS-SET-1 .. TSS-SET-6."""
    period_oid = instance("sensorZoneSamplePeriod", 1)
    try:
        current = ber.decode_value((await station.get([period_oid]))[period_oid])
    except ManagerError as exc:
        current = None
        error = _status(exc)
    else:
        error = "not an INTEGER"
    results: list[CaseResult] = []
    if not isinstance(current, int):
        for case in ("TSS-SET-1", "TSS-SET-2", "TSS-SET-3", "TSS-SET-4", "TSS-SET-5", "TSS-SET-6"):
            if case in wanted:
                results.append(judged(case, [f"sensorZoneSamplePeriod.1 unreadable: {error}"], ""))
        return results
    same = ber.encode_integer(current)
    attempts: list[tuple[str, OID, bytes, bytes | None, ErrorStatus, str]] = [
        ("TSS-SET-1", instance("sampleVolumeData", 1, 2, 1), ber.encode_integer(0), station.write,
         ErrorStatus.NOT_WRITABLE, "sampleVolumeData.1.2.1 = 0 (write community)"),
        ("TSS-SET-2", period_oid, same, station.read, ErrorStatus.NO_ACCESS,
         f"sensorZoneSamplePeriod.1 = {current} (read community)"),
        ("TSS-SET-3", period_oid, ber.tlv(ber.OCTET_STRING, str(current).encode()), station.write,
         ErrorStatus.WRONG_TYPE, f"sensorZoneSamplePeriod.1 = OCTET STRING '{current}'"),
        ("TSS-SET-4", period_oid, ber.encode_integer(70000), station.write, ErrorStatus.WRONG_VALUE,
         "sensorZoneSamplePeriod.1 = 70000 (range 0..65535)"),
        ("TSS-SET-5", instance("sensorZoneSamplePeriod", station.zones + 1), same, station.write,
         ErrorStatus.NO_CREATION, f"sensorZoneSamplePeriod.{station.zones + 1} (no such zone)"),
    ]  # fmt: skip
    for case, oid, value, community, expected, what in attempts:
        if case not in wanted:
            continue
        if community is None:
            results.append(not_applicable(case, "the plan gives no write community"))
            continue
        try:
            answer = await station.manager.set_tlv(station.target, oid, value, community=community)
        except ManagerError as exc:
            got = _status(exc)
            problem = [] if exc.status == expected else [f"SET {what}: {got}, expected {expected.label}"]
            results.append(judged(case, problem, f"SET {what}: {got}"))
        else:
            results.append(judged(case, [f"SET {what} accepted ({ber.decode_value(answer)!r}), "
                                         f"expected {expected.label}"], ""))  # fmt: skip
    if "TSS-SET-6" in wanted:
        if station.write is None:
            results.append(not_applicable("TSS-SET-6", "the plan gives no write community"))
        else:
            try:
                answer = await station.manager.set_tlv(
                    station.target, period_oid, same, community=station.write
                )
                back = ber.decode_value((await station.get([period_oid]))[period_oid])
            except ManagerError as exc:
                results.append(judged("TSS-SET-6", [f"SET sensorZoneSamplePeriod.1 = {current}: "
                                                    f"{_status(exc)}"], ""))  # fmt: skip
            else:
                echoed = ber.decode_value(answer)
                problems = [] if echoed == current == back else [
                    f"SET {current}: echoed {echoed!r}, read back {back!r}"
                ]  # fmt: skip
                what = f"SET sensorZoneSamplePeriod.1 = {current}: noError, read back"
                results.append(judged("TSS-SET-6", problems, what))
    return results


async def timing_case(
    station: Station, requests: int, p95_limit_ms: float, *, case_id: str = "TSS-TIM-1",
    oids: Sequence[OID] | None = None,
) -> CaseResult:  # fmt: skip
    """TSS-TIM-1 (or ``case_id``): ``requests`` GETs of ``oids`` (zone 1's last sample row),
    one after the other."""
    if oids is None:
        oids = [instance(c, 1, 2, 1) for c in SAMPLE_COLUMNS]
    times_ms: list[float] = []
    lost = 0
    for _ in range(requests):
        start = time.perf_counter()
        try:
            await station.manager.get_tlvs(station.target, oids, timeout_s=2.0)
        except ManagerError:
            lost += 1
            continue
        times_ms.append(1000 * (time.perf_counter() - start))
    times_ms.sort()
    p95 = times_ms[min(len(times_ms) - 1, int(0.95 * len(times_ms)))] if times_ms else None
    failures = []
    if lost:
        failures.append(f"{lost} of {requests} GETs unanswered within 2 s")
    if p95 is not None and p95 > p95_limit_ms:
        failures.append(f"p95 {p95:.1f} ms over {requests} GETs, limit {p95_limit_ms:g} ms")
    metrics = {"requests": requests, "lost": lost, "p95_ms": None if p95 is None else round(p95, 2),
               "max_ms": round(times_ms[-1], 2) if times_ms else None}  # fmt: skip
    return judged(case_id, failures, f"p95 {p95 or 0:.1f} ms over {requests} GETs "
                  f"(limit {p95_limit_ms:g} ms)", **metrics)  # fmt: skip


POWER_BACK_S = 15.0
"""How long a station may take to answer again after a power cycle."""


async def power_case(station: Station, power_cycle: Callable[[], None] | None) -> CaseResult:
    """TSS-PWR-1: set the sample period to another value, power-cycle the station, wait for it,
    check sysUpTime restarted and the period kept; then set the period back."""
    if power_cycle is None:
        return not_applicable("TSS-PWR-1", "power-cycling a real station needs a lab operator")
    if station.write is None:
        return not_applicable("TSS-PWR-1", "the plan gives no write community")
    period_oid, uptime_oid = instance("sensorZoneSamplePeriod", 1), instance("sysUpTime")
    try:
        values = await station.get([period_oid, uptime_oid])
        before, uptime = (ber.decode_value(values[o]) for o in (period_oid, uptime_oid))
        if not isinstance(before, int) or not isinstance(uptime, int):
            return judged("TSS-PWR-1", [f"period {before!r} / sysUpTime {uptime!r} unreadable"], "")
        wanted = before + 30
        await station.manager.set_tlv(station.target, period_oid, ber.encode_integer(wanted),
                                      community=station.write)  # fmt: skip
    except ManagerError as exc:
        return judged("TSS-PWR-1", [f"before the power cycle: {_status(exc)}"], "")
    power_cycle()
    start = time.monotonic()
    # First the station goes silent (an answer now may predate the switch-off), then it is back.
    while time.monotonic() - start < POWER_BACK_S:
        try:
            await station.manager.get_tlvs(station.target, [uptime_oid], timeout_s=0.2)
        except ManagerError:
            break
        await asyncio.sleep(0.05)
    else:
        return judged("TSS-PWR-1", [f"still answering {POWER_BACK_S:g} s after the power cycle"], "")
    after: dict[OID, bytes] | None = None
    while after is None and time.monotonic() - start < POWER_BACK_S:
        try:
            after = await station.manager.get_tlvs(station.target, [period_oid, uptime_oid],
                                                   timeout_s=0.5)  # fmt: skip
        except ManagerError:
            await asyncio.sleep(0.2)
    back_s = time.monotonic() - start
    if after is None:
        return judged("TSS-PWR-1", [f"no answer within {POWER_BACK_S:g} s of the power cycle"], "")
    period, uptime_after = (ber.decode_value(after[o]) for o in (period_oid, uptime_oid))
    failures = []
    # restarted: up for no longer than since the power cycle (sysUpTime is in 1/100 s)
    if not isinstance(uptime_after, int) or uptime_after / 100 > back_s + 0.5:
        failures.append(f"sysUpTime {uptime_after!r} (1/100 s) {back_s:.1f} s after the power "
                        f"cycle ({uptime} before it): not restarted")  # fmt: skip
    if period != wanted:
        failures.append(f"sensorZoneSamplePeriod.1 set to {wanted} before the power cycle, "
                        f"{period!r} after it")  # fmt: skip
    try:
        await station.manager.set_tlv(station.target, period_oid, ber.encode_integer(before),
                                      community=station.write)  # fmt: skip
    except ManagerError as exc:
        failures.append(f"setting the period back to {before}: {_status(exc)}")
    seen = f"answering {back_s:.1f} s after the power cycle, sysUpTime restarted, period {wanted} kept"
    return judged("TSS-PWR-1", failures, seen, back_s=round(back_s, 2))


def sample_status_violations(
    end_s: int, zone: int, status: object, volume: object, occupancy: object
) -> str | None:
    """A completed period of ``zone`` whose status is not oK but which carries data."""
    if status == ZONE_OK:
        return None
    data = [v for v in (volume, occupancy) if not (isinstance(v, int) and v == MISSING)]
    if data:
        return f"period ending {end_s} s, zone {zone}: sampleZoneStatus {status!r} with data {data!r}"
    return None
